"""Pacing found wanting in use (UAT): a draw's reservation must bound what the draw spends, and
a dollar (or token) budget must be paced by a price that can reach what a sample costs."""

from __future__ import annotations

import asyncio
import io
import json
import random
from pathlib import Path

import pytest
from rich.console import Console

from budgetlab.backends import ReplayBackend
from budgetlab.cli._main import main
from budgetlab.core import Problem, SamplingConfig
from budgetlab.pacing import BudgetPacer, PacedSolver, calibrate_price, prior_problems
from budgetlab.policies import BayesStopping
from budgetlab.verifiers import make_verifier


def _skewed(tmp_path: Path, problems: int = 3) -> Path:
    """Each problem's first recorded sample is cheap (10 tokens, $0.00001), the others dear
    (1,000 tokens, $0.001), and the answers disagree so the rule asks for more than one."""
    lines = []
    for p in range(problems):
        for i in range(20):
            answer = str(i % 3)
            lines.append(json.dumps({"problem": f"s{p}", "config": "m", "answer": answer, "correct": answer == "0",
                                     "prompt_tokens": 5, "completion_tokens": 5 if i == 0 else 995,
                                     "cost": 1e-5 if i == 0 else 1e-3}))  # fmt: skip
    path = tmp_path / "skewed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(("unit", "budget"), [("tokens", 100.0), ("dollars", 1e-4)])
def test_a_draw_reserves_what_its_own_samples_may_spend_not_the_first_samples(tmp_path: Path, unit: str, budget: float) -> None:
    """The reservation was ``count x`` the bound of sample 0; replayed samples 1.. cost 100x
    more, so a request spent 1,010 tokens of a 100-token budget."""
    backend = ReplayBackend(_skewed(tmp_path))
    config = SamplingConfig(model="m", backend="replay")
    per_sample = 10.0 if unit == "tokens" else 1e-5
    pacer = BudgetPacer(budget, 3, price=1e-9, min_spend=per_sample)
    solver = PacedSolver(backend, config, make_verifier("recorded"), BayesStopping(max_samples=20), pacer, unit=unit)

    async def serve():
        return [await solver.solve(Problem(f"s{i}")) for i in range(3)]

    answers = asyncio.run(serve())
    assert pacer.spent <= budget + 1e-12
    assert all(a.samples for a in answers)  # every request still got its first sample


def _pace(recorded: Path, output: Path, *extra: str) -> tuple[int, str]:
    console = Console(file=io.StringIO(), width=200)
    code = main(["pace", "--backend", f"replay:{recorded}", "--verifier", "recorded", "--output", str(output), *extra],
                console=console)  # fmt: skip
    return code, console.file.getvalue()  # type: ignore[attr-defined]


def test_pace_keeps_a_token_budget_whatever_later_samples_cost(tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    code, text = _pace(_skewed(tmp_path), out, "--budget", "tokens=100")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(r["spent"] for r in rows) <= 100, text
    assert len(rows) == 3 and code == 0, text


def _mixed(tmp_path: Path, cost: float) -> Path:
    """40 problems x 40 samples, each costing ``cost`` dollars: even ones unanimous, odd ones a
    55/45 split."""
    rng = random.Random(0)
    lines = []
    for i in range(40):
        for _ in range(40):
            answer = "a" if i % 2 == 0 or rng.random() < 0.55 else "b"
            lines.append(json.dumps({"problem": f"p{i:02d}", "config": "m", "answer": answer, "correct": answer == "a",
                                     "prompt_tokens": 20, "completion_tokens": 10, "cost": cost}))  # fmt: skip
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_a_dollar_budget_is_paced_like_the_same_budget_in_samples(tmp_path: Path) -> None:
    """At $0.00001 a sample, a price of accuracy per dollar must reach ~1,000s for a sample to
    cost anything; it was capped at 1, every request drew until the allowance cut it, and the
    first few requests took most of the budget."""
    cost, per_request = 1e-5, 4
    path = _mixed(tmp_path, cost)
    by_samples, by_dollars = tmp_path / "samples.jsonl", tmp_path / "dollars.jsonl"
    assert _pace(path, by_samples, "--budget", f"samples={40 * per_request}")[0] == 0
    assert _pace(path, by_dollars, "--budget", f"dollars={40 * per_request * cost:.10f}")[0] == 0
    samples = [json.loads(line) for line in by_samples.read_text().splitlines()]
    dollars = [json.loads(line) for line in by_dollars.read_text().splitlines()]
    assert len(dollars) == 40 and sum(r["spent"] for r in dollars) <= 40 * per_request * cost + 1e-12
    cut = sum(r["cut"] for r in dollars)
    assert cut <= sum(r["cut"] for r in samples) + 4, [r["samples"] for r in dollars]
    easy, hard = [r["samples"] for r in dollars[0::2]], [r["samples"] for r in dollars[1::2]]
    assert sum(hard) > sum(easy)


def test_the_price_range_follows_the_unit_of_spend() -> None:
    """A price given in accuracy per dollar is kept, not clamped to 1; calibration finds one
    above 1 when a sample costs a tiny fraction of a dollar."""
    pacer = BudgetPacer(0.002, 60, price=2_000.0, min_spend=2.4e-5)
    assert pacer.price == pytest.approx(2_000.0)
    samples = BudgetPacer(100, 10, price=5.0)  # in samples the range stays [1e-6, 1]
    assert samples.price == pytest.approx(1.0)
    rule = BayesStopping(max_samples=40)
    pools = prior_problems(rule, 100, seed=0)
    per_sample = 1e-5
    in_samples = calibrate_price(rule, pools, 4)
    in_dollars = calibrate_price(rule, pools, 4 * per_sample, per_sample=per_sample)
    assert in_dollars == pytest.approx(in_samples / per_sample, rel=0.05)


def test_every_listed_request_keeps_its_first_sample(tmp_path: Path, capsys) -> None:
    """The reserve per later request was the first problem's first sample; a listed problem whose
    first sample costs more could then get no sample at all (answered with nothing, not retried).
    Now the reserve is the dearest listed first sample, and a budget that cannot pay it is refused."""
    lines = []
    for p, first in enumerate((10, 50, 10, 10)):
        for i in range(10):
            lines.append(json.dumps({"problem": f"q{p}", "config": "m", "answer": str(i % 2), "correct": i % 2 == 0,
                                     "prompt_tokens": 0, "completion_tokens": first if i == 0 else 10}))  # fmt: skip
    path = tmp_path / "uneven.jsonl"
    path.write_text("\n".join(lines) + "\n")
    out = tmp_path / "answers.jsonl"
    code, _ = _pace(path, out, "--budget", "tokens=120")
    assert code == 2 and "minimum of 50; raise the budget to at least 200" in capsys.readouterr().err
    code, text = _pace(path, out, "--budget", "tokens=200")
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert code == 0 and len(rows) == 4 and all(r["samples"] >= 1 for r in rows), text
    assert sum(r["spent"] for r in rows) <= 200


def test_samples_a_crashed_request_paid_for_are_counted_even_if_the_price_moved(tmp_path: Path) -> None:
    """With --concurrency N a resumed stream prices a request differently from the run that
    crashed: the request stopped after 1 sample although the journal held 10 it had paid for,
    and their spend vanished from the ledger (the budget was exceeded in fact, not on paper)."""
    from budgetlab.pacing import SampleJournal

    path = _mixed(tmp_path, 1e-5)
    backend = ReplayBackend(path)
    config = SamplingConfig(model="m", backend="replay")
    journal_file = tmp_path / "answers.samples.jsonl"
    rule = BayesStopping(max_samples=40)
    cheap = BudgetPacer(400, 1, price=1e-6, max_price=1.0, min_price=1e-9)  # before the crash: every sample pays
    before = SampleJournal(journal_file)
    asyncio.run(PacedSolver(backend, config, make_verifier("recorded"), rule, cheap, journal=before).solve(Problem("p01")))
    before.close()
    paid = [json.loads(line) for line in journal_file.read_text().splitlines()]
    assert len(paid) > 5

    dear = BudgetPacer(400, 1, price=0.9, max_price=1.0)  # after it: one sample is all it would buy
    after = SampleJournal(journal_file)
    answer = asyncio.run(PacedSolver(backend, config, make_verifier("recorded"), rule, dear, journal=after).solve(Problem("p01")))
    after.close()
    assert len(answer.samples) == len(paid) and answer.spent == dear.spent == len(paid)
    assert len(journal_file.read_text().splitlines()) == len(paid)  # nothing drawn again


@pytest.mark.parametrize(("stdin", "message"), [
    ("", "--problems -: standard input ended before any problem came; send one JSON problem per line"),
    ('{"id": "p00", "metadata": "x"}\n', "stdin:1: field 'metadata' must be an object"),
])
def test_a_bad_or_empty_stream_is_one_line_that_says_what_to_send(tmp_path: Path, monkeypatch, capsys, stdin: str, message: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code, _ = _pace(_mixed(tmp_path, 1e-5), tmp_path / "a.jsonl", "--budget", "samples=20", "--problems", "-", "--requests", "5")
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


@pytest.mark.parametrize(("budget", "message"), [
    ("0", "--budget for pace must be exactly one of samples=N, tokens=N or dollars=X, got '0'; e.g. --budget samples=1000"),
    ("samples=0", "--budget samples=0 must be positive; e.g. --budget samples=1000"),
    ("dollars=-1", "--budget dollars=-1 must be positive; e.g. --budget dollars=1000"),
])
def test_a_bad_pace_budget_suggests_a_budget_pace_takes(tmp_path: Path, capsys, budget: str, message: str) -> None:
    """Budget.parse's own advice (two limits at once, or leaving a limit out) is not for pace."""
    code, _ = _pace(_mixed(tmp_path, 1e-5), tmp_path / "a.jsonl", "--budget", budget)
    err = capsys.readouterr().err
    assert code == 2 and message in err and "leave" not in err and "dollars=2.5" not in err, err


@pytest.mark.parametrize(("option", "message"), [
    (["--max-samples", "0"], "--max-samples must be at least 1, got 0; e.g. --max-samples 40"),
    (["--price", "0"], "--price must be a number above 0 (accuracy per unit of spend), got 0; leave it out"),
    (["--price", "nan"], "--price must be a number above 0"),
])
def test_pace_options_are_named_in_their_errors(tmp_path: Path, capsys, option: list[str], message: str) -> None:
    """They named the pacer's or the bayes policy's own argument (bayes:max_samples=40), which pace does not take."""
    code, _ = _pace(_mixed(tmp_path, 1e-5), tmp_path / "a.jsonl", "--budget", "samples=100", *option)
    err = capsys.readouterr().err
    assert code == 2 and message in err, err


def test_samples_paid_for_before_a_verifier_broke_are_journaled(tmp_path: Path) -> None:
    """A verifier of the user's that raises stops the stream; the samples of that request were
    drawn and paid for, so the journal keeps them and a resumed stream does not draw them again."""
    from budgetlab.errors import BudgetlabError
    from budgetlab.pacing import SampleJournal

    class Broken:
        name, max_seconds = "broken", 1.0

        def verify(self, problem, completion):
            raise ValueError("no reference parser")

    path = _mixed(tmp_path, 1e-5)
    config = SamplingConfig(model="m", backend="replay")
    journal_file = tmp_path / "answers.samples.jsonl"
    pacer = BudgetPacer(400, 1, price=1e-6, max_price=1.0, min_price=1e-9)
    with SampleJournal(journal_file) as journal, pytest.raises(BudgetlabError, match="verifier 'broken' failed"):
        asyncio.run(PacedSolver(ReplayBackend(path), config, Broken(), BayesStopping(max_samples=40), pacer,
                                journal=journal).solve(Problem("p01")))  # fmt: skip
    kept = [json.loads(line) for line in journal_file.read_text().splitlines()]
    assert kept and all(row["correct"] is None and "unjudged" in row["details"] for row in kept)
