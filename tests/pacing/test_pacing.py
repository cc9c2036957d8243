"""Pacing one budget over a stream: the pacer's price and guarantees, its saved state, the
replayed stream over recorded samples, the starting price, and live requests through the replay
backend (the real backend over recorded samples)."""

from __future__ import annotations

import asyncio
import json
import random
from pathlib import Path

import numpy as np
import pytest

from budgetlab.analysis._majority import majority_answer
from budgetlab.backends import DrawRequest, ReplayBackend
from budgetlab.core import Problem, Sample, SamplingConfig, Spend, Verdict
from budgetlab.errors import InputError
from budgetlab.pacing import BudgetPacer, PacedSolver, calibrate_price, priced, sample_bound, simulate_paced_stream
from budgetlab.policies import AdaptiveConsistency, BayesStopping, fit_bayes_stopping
from budgetlab.verifiers import make_verifier


def _problems(n: int, seed: int = 0, size: int = 40) -> list[tuple[list, list]]:
    """Half easy (one answer, right), half hard (two answers near 50/50, the leader right)."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        if i % 2 == 0:
            answers = ["a"] * size
        else:
            answers = ["a" if rng.random() < 0.55 else "b" for _ in range(size)]
        out.append((answers, [a == "a" for a in answers]))
    return out


@pytest.fixture(scope="module")
def rule() -> BayesStopping:
    cal = _problems(60, seed=1)
    return fit_bayes_stopping([a for a, _ in cal], [c for _, c in cal], max_samples=40)


# ---- the pacer -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"budget": -1, "requests": 10}, "budget must be a number > 0, got budget=-1"),
        ({"budget": 10, "requests": 0}, "requests must be a whole number >= 1"),
        ({"budget": 10, "requests": 20}, "cannot give each of 20 requests its minimum of 1; raise the budget to at least 20"),
        ({"budget": 10, "requests": 5, "price": float("nan")}, "price must be a number > 0"),
        ({"budget": 10, "requests": 5, "min_price": 0.5, "max_price": 0.1}, "min_price <= max_price"),
    ],
)
def test_bad_pacer_arguments_name_the_value_and_the_fix(kwargs, message) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        BudgetPacer(**kwargs)


def test_the_price_rises_on_overspend_falls_on_underspend_and_stays_bounded() -> None:
    pacer = BudgetPacer(100, 10, price=0.01)
    pacer.record(30)  # target 10: overspent
    assert pacer.price > 0.01
    high = pacer.price
    pacer.record(0)  # target now 70/9: underspent
    assert pacer.price < high
    for _ in range(200):
        pacer.record(0)
    assert pacer.price == pytest.approx(pacer.min_price)
    fixed = BudgetPacer(100, 10, price=0.01, step=0)
    fixed.record(50)
    assert fixed.price == pytest.approx(0.01)


def test_spending_the_allowance_never_overspends_and_never_starves_a_later_request() -> None:
    rng = random.Random(3)
    for _ in range(50):
        requests = rng.randint(1, 30)
        pacer = BudgetPacer(requests * rng.uniform(1, 5), requests, min_spend=1)
        for _ in range(requests):
            allowance = pacer.allowance()
            assert allowance >= 1 - 1e-9  # its minimum is always there
            pacer.record(rng.uniform(1, allowance))
        assert pacer.spent <= pacer.budget + 1e-9


def test_state_is_saved_atomically_and_loads_back(tmp_path: Path) -> None:
    pacer = BudgetPacer(50, 10, price=0.02)
    pacer.record(12)
    path = tmp_path / "state" / "pacer.json"
    pacer.save(path)
    again = BudgetPacer.load(path)
    assert again.to_dict() == pacer.to_dict() and again.price == pytest.approx(pacer.price)
    assert [p.name for p in path.parent.iterdir()] == ["pacer.json"]  # no temporary file left
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON .* delete it to start over"):
        BudgetPacer.load(path)
    path.write_text(json.dumps({"version": 1, "budget": 5, "requests": 2, "colour": "red"}))
    with pytest.raises(InputError, match="unknown or missing fields"):
        BudgetPacer.load(path)
    with pytest.raises(InputError, match="does not exist"):
        BudgetPacer.load(tmp_path / "none.json")


def test_a_rule_without_a_price_is_refused() -> None:
    with pytest.raises(InputError, match="use budgetlab.policies.BayesStopping"):
        priced(AdaptiveConsistency(), 0.01)
    assert priced(BayesStopping(), 0.0123).cost == pytest.approx(0.0123, rel=0.03)  # on a log grid


# ---- streams of recorded problems ------------------------------------------------------------
def test_a_paced_stream_spends_on_hard_requests_and_keeps_to_the_budget(rule) -> None:
    stream = _problems(200, seed=2)
    budget = 4 * len(stream)
    result = simulate_paced_stream(rule, BudgetPacer(budget, len(stream), price=1e-3), stream, seed=0)
    assert result.spent <= budget
    assert result.spent >= 0.9 * budget  # the hard requests use what the easy ones leave
    easy, hard = result.samples[0::2], result.samples[1::2]
    assert hard.mean() > 2 * easy.mean()
    # the same spend as 4 samples each, but where it pays: better than 4 samples for every request
    rng = np.random.default_rng(0)
    fixed = [majority_answer([answers[j] for j in rng.permutation(40)[:4]]) == "a" for answers, _ in stream for _ in range(20)]
    assert result.accuracy > np.mean(fixed)


def test_a_stream_harder_than_the_calibration_is_paced_not_cut_off(rule) -> None:
    """The price is calibrated on a half-hard mix, then every request is hard: at that fixed
    price the budget runs out early and the last requests get only their minimum; the pacer
    moves the price with the spend, and the budget lasts."""
    stream = _problems(600, seed=4)[1::2]  # the hard half: 300 requests
    budget = 3 * len(stream)
    price = calibrate_price(rule, _problems(100, seed=5), 3)
    static = simulate_paced_stream(rule, BudgetPacer(budget, len(stream), price=price, step=0), stream, seed=1)
    paced = simulate_paced_stream(rule, BudgetPacer(budget, len(stream), price=price), stream, seed=1)
    assert static.spent <= budget and paced.spent <= budget
    assert static.capped.sum() > 30
    assert paced.capped.sum() < static.capped.sum() / 3


def test_the_starting_price_spends_the_asked_amount_on_the_calibration_problems(rule) -> None:
    problems = _problems(100, seed=6)
    from budgetlab.analysis._stopping import simulate_stopping

    prices = [calibrate_price(rule, problems, b) for b in (2, 4, 8)]
    assert prices[0] > prices[1] > prices[2]  # more spend, lower price
    spend = simulate_stopping(priced(rule, prices[1]), problems, orderings=20, seed=0).mean_samples
    assert spend == pytest.approx(4, rel=0.15)
    with pytest.raises(InputError, match="per_request > 0"):
        calibrate_price(rule, problems, -1)


# ---- live requests -------------------------------------------------------------------------
def _replay_file(tmp_path: Path, problems: list[tuple[list, list]]) -> Path:
    lines = []
    for i, (answers, correct) in enumerate(problems):
        for a, c in zip(answers, correct):
            lines.append(json.dumps({"problem": f"p{i}", "config": "m", "answer": a, "correct": c,
                                     "prompt_tokens": 20, "completion_tokens": 30 if i % 2 else 10}))  # fmt: skip
    path = tmp_path / "recorded.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("unit", ["samples", "tokens"])
def test_live_requests_are_answered_within_the_budget(tmp_path: Path, rule, unit: str) -> None:
    problems = _problems(40, seed=7)
    backend = ReplayBackend(_replay_file(tmp_path, problems), seed=0)
    config = SamplingConfig(model="m", backend="replay")
    per_sample = 1 if unit == "samples" else 40  # tokens: 30 on average, bounded by the largest sample (50)
    budget = 4 * per_sample * len(problems)
    pacer = BudgetPacer(budget, len(problems), price=1e-3 / per_sample, min_spend=per_sample)
    solver = PacedSolver(backend, config, make_verifier("recorded"), rule, pacer, unit=unit)

    async def serve():
        return [await solver.solve(Problem(f"p{i}")) for i in range(len(problems))]

    answers = asyncio.run(serve())
    assert pacer.spent <= budget and pacer.served == len(problems)
    assert sum(a.spent for a in answers) == pytest.approx(pacer.spent)
    assert all(a.answer == "a" and a.correct for a in answers[0::2])  # the easy ones, always right
    assert np.mean([len(a.samples) for a in answers[1::2]]) > np.mean([len(a.samples) for a in answers[0::2]])
    assert len({s.seed for a in answers for s in a.samples}) == sum(len(a.samples) for a in answers)


def test_the_solver_refuses_a_bad_unit_and_an_unpriced_rule(tmp_path: Path, rule) -> None:
    backend = ReplayBackend(_replay_file(tmp_path, _problems(2)), seed=0)
    config = SamplingConfig(model="m", backend="replay")
    with pytest.raises(InputError, match="unit must be one of samples, tokens, dollars, got unit='euros'"):
        PacedSolver(backend, config, make_verifier("recorded"), rule, BudgetPacer(10, 2), unit="euros")
    with pytest.raises(InputError, match="BayesStopping"):
        PacedSolver(backend, config, make_verifier("recorded"), AdaptiveConsistency(), BudgetPacer(10, 2))


def test_no_answer_to_a_known_reference_is_wrong_and_all_failed_samples_say_why(tmp_path: Path, rule) -> None:
    """p0's samples all finished without an answer, and the verifier judged them wrong: that is
    a wrong answer, not an unchecked one. "unrecorded" has no samples at all: its failed samples
    carry the backend's reason, so the caller can show it instead of an answer."""
    backend = ReplayBackend(_replay_file(tmp_path, [([None] * 40, [False] * 40)]), seed=0)
    config = SamplingConfig(model="m", backend="replay")
    solver = PacedSolver(backend, config, make_verifier("recorded"), rule, BudgetPacer(80, 2), unit="samples")

    async def serve():
        return [await solver.solve(Problem(pid)) for pid in ("p0", "unrecorded")]

    silent, unknown = asyncio.run(serve())
    assert silent.answer is None and silent.correct is False and silent.error is None
    assert unknown.answer is None and unknown.correct is None and unknown.spent == 0
    assert unknown.error is not None and "holds only 0 samples of problem 'unrecorded'" in unknown.error


class _PayingJudge:
    """A verifier that spends tokens of its own on every grading (as a judge model does) and
    says so in advance."""

    name = "paying-judge"
    max_seconds = 1.0

    def verify(self, problem, completion):
        return Verdict(answer=completion.answer, correct=completion.correct, prompt_tokens=60, completion_tokens=40)

    def estimate(self, problem, draw):
        return Spend(tokens=100)


def test_a_judges_own_spend_is_bounded_and_counted(tmp_path: Path, rule) -> None:
    problems = _problems(20, seed=8)
    backend = ReplayBackend(_replay_file(tmp_path, problems), seed=0)
    config = SamplingConfig(model="m", backend="replay")
    bound = sample_bound(backend, _PayingJudge(), config, Problem("p0"), "tokens")
    (drawn,) = backend.estimate(DrawRequest(Problem("p0"), config, (Sample("r", "p0", config.id, 0, 0),)))
    assert bound == drawn.tokens + 100
    budget = 3 * 150 * len(problems)
    pacer = BudgetPacer(budget, len(problems), price=1e-5, min_spend=bound)
    solver = PacedSolver(backend, config, _PayingJudge(), rule, pacer, unit="tokens")

    async def serve():
        return [await solver.solve(Problem(f"p{i}")) for i in range(len(problems))]

    answers = asyncio.run(serve())
    assert pacer.spent <= budget
    for a in answers:  # every sample's spend holds the judge's 100 tokens
        assert a.spent == sum(s.prompt_tokens + s.completion_tokens for s in a.samples)
        assert all(s.prompt_tokens + s.completion_tokens >= 100 + 30 for s in a.samples)


def test_requests_in_flight_together_keep_the_budget_and_every_minimum() -> None:
    rng = random.Random(5)
    for _ in range(30):
        n = rng.randint(2, 25)
        pacer = BudgetPacer(n * rng.uniform(1, 4), n, min_spend=1)
        pending = [pacer.begin() for _ in range(n)]
        firsts = set()
        while pending:
            ticket = rng.choice(pending)
            if ticket.drawing and rng.random() < 0.3:
                pacer.end(ticket)
                pending.remove(ticket)
                continue
            amount = 1.0 if not ticket.drawing else rng.uniform(0.5, 3)
            if pacer.reserve(ticket, amount):
                firsts.add(id(ticket))
                pacer.settle(ticket, amount, amount * rng.uniform(0.2, 1.0))
            elif ticket.drawing:
                pacer.end(ticket)
                pending.remove(ticket)
            else:
                raise AssertionError("a request's first sample did not fit")
            assert pacer.spent + pacer._reserved <= pacer.budget + 1e-9
        assert len(firsts) == n and pacer.served == n


class _SlowReplay:
    """The replay backend, with each draw taking a random moment, so that requests interleave."""

    def __init__(self, backend: ReplayBackend, seed: int) -> None:
        self.backend, self.rng, self.name = backend, random.Random(seed), "slow-replay"

    def estimate(self, request):
        return self.backend.estimate(request)

    async def draw(self, request):
        await asyncio.sleep(self.rng.random() / 500)
        return await self.backend.draw(request)

    async def aclose(self) -> None:
        await self.backend.aclose()


def test_overlapping_live_requests_stay_within_the_budget(tmp_path: Path, rule) -> None:
    problems = _problems(40, seed=9)
    backend = _SlowReplay(ReplayBackend(_replay_file(tmp_path, problems), seed=0), seed=1)
    config = SamplingConfig(model="m", backend="replay")
    budget = 2 * len(problems)
    pacer = BudgetPacer(budget, len(problems), price=1e-4)  # a low price: every request wants many samples
    solver = PacedSolver(backend, config, make_verifier("recorded"), rule, pacer)

    async def serve():
        return await asyncio.gather(*(solver.solve(Problem(f"p{i}")) for i in range(len(problems))))

    answers = asyncio.run(serve())
    assert pacer.spent <= budget and pacer.served == len(problems) and pacer._reserved == pytest.approx(0)
    assert all(len(a.samples) >= 1 for a in answers)  # every request got its minimum
    assert any(a.capped for a in answers)


def test_the_expected_number_of_requests_can_be_revised() -> None:
    pacer = BudgetPacer(100, 10)
    pacer.record(10)
    pacer.expect(20)  # traffic doubled: the rest is spread over 19 requests
    assert pacer.target() == pytest.approx(90 / 19)
    with pytest.raises(InputError, match="cannot give each of 99 more requests its minimum of 1; expect at most 91"):
        pacer.expect(100)
    with pytest.raises(InputError, match="whole number >= 1"):
        pacer.expect(0)


def test_arrival_forecast_moves_from_the_guess_to_the_observed_rate() -> None:
    from budgetlab.pacing import ArrivalForecast

    day = ArrivalForecast(window=86_400.0, guess=1_000)
    assert day.total(0, 0.0) == 1_000  # nothing seen yet: the guess
    assert day.total(3, 60.0) == pytest.approx(1_000, rel=0.05)  # a burst in the first minute barely moves it
    # Half the day gone at twice the guessed rate: most of the way to 2,000.
    assert 1_800 < day.total(1_000, 43_200.0) < 2_000
    assert day.total(1_234, 90_000.0) == 1_234  # the window is over: what came is all
    with pytest.raises(InputError, match="whole number >= 1"):
        ArrivalForecast(window=60.0, guess=0)


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90.0), ("30m", 1_800.0), ("24h", 86_400.0), ("7d", 604_800.0), ("45", 45.0)])
def test_durations(text: str, seconds: float) -> None:
    from budgetlab.pacing import parse_duration

    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "h", "-5m", "0s", "soon", "infd"])
def test_bad_durations_say_what_a_duration_looks_like(text: str) -> None:
    from budgetlab.pacing import parse_duration

    with pytest.raises(InputError, match="positive duration such as 90s, 30m, 24h or 7d"):
        parse_duration(text)


def test_expecting_within_the_budget_caps_at_what_is_left() -> None:
    pacer = BudgetPacer(10.0, 5, min_spend=1.0)
    for spent in (3.0, 3.0):
        pacer.record(spent)  # 2 served, 4 left
    with pytest.raises(InputError, match="expect at most 6 requests"):
        pacer.expect(50)
    pacer.expect(50, within_budget=True)
    assert pacer.requests == 6
    pacer.expect(1, within_budget=True)  # never below one more than served
    assert pacer.requests == 3
