"""The online budget planner (policy ``planner``): what it draws, what it stops, and a real run."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

import budgetlab
from budgetlab.allocation import (
    HillClimbAllocator,
    SuccessCounts,
    fit_online_prior,
    fit_planner_prior,
    mix_pass_at_k,
    simulate_coverage,
)
from budgetlab.core import (
    Budget,
    Problem,
    Sample,
    SampleState,
    SamplingConfig,
    derive_seed,
)
from budgetlab.core.view import RunView
from budgetlab.errors import InputError
from budgetlab.policies import CoveragePlanner, make_policy
from budgetlab.stores import open_store

GOOD, BAD = SamplingConfig(model="good"), SamplingConfig(model="bad")
PROBLEMS = tuple(Problem(f"q{i}") for i in range(4))
PRIOR = {"configs": ["good", "bad"], "atoms": [[0.5, 0.05], [0.3, 0.02], [0.0, 0.0]], "weights": [1, 1, 1]}


def _sample(problem: str, config: SamplingConfig, index: int, correct: bool | None, state: SampleState = SampleState.DONE,
            tokens: int = 10, seconds: float = 0.0) -> Sample:  # fmt: skip
    return Sample("r", problem, config.id, index, derive_seed(0, problem, config.id, index), state=state,
                  answer=None if correct is None else str(int(correct)), correct=correct if state is SampleState.DONE else None,
                  completion_tokens=tokens if state.finished else 0, verify_seconds=seconds)  # fmt: skip


def _pairs(props) -> list[tuple[str, str, int]]:
    return [(p.problem, p.config, p.count) for p in props]


def test_solved_problems_get_nothing_more_and_failures_move_the_budget() -> None:
    samples = [_sample("q0", GOOD, 0, True)] + [_sample("q1", GOOD, i, False) for i in range(6)]
    view = RunView(PROBLEMS, (GOOD, BAD), samples)
    policy = CoveragePlanner(batch=6, prior=PRIOR)
    props = policy.propose(view, 100)
    assert sum(p.count for p in props) == 6
    assert "q0" not in {p.problem for p in props}
    # fresh problems first: q1 has failed six times, which makes it look hopeless
    assert {p.problem for p in props} == {"q2", "q3"}


def test_prefers_the_configuration_the_prior_says_is_better() -> None:
    view = RunView(PROBLEMS, (BAD, GOOD))
    props = CoveragePlanner(batch=4, prior=PRIOR).propose(view, 100)
    assert _pairs(props) == [(p.id, GOOD.id, 1) for p in PROBLEMS]


def test_learns_the_better_configuration_online() -> None:
    # on eight problems already settled, "good" solved most of them at once and "bad" none
    problems = tuple(Problem(f"old{i}") for i in range(8)) + PROBLEMS
    samples = []
    for i in range(8):
        samples += [_sample(f"old{i}", BAD, t, False) for t in range(3)]
        samples += [_sample(f"old{i}", GOOD, 0, i < 6)]
    view = RunView(problems, (BAD, GOOD), samples)
    online = fit_online_prior(*_counts(view))
    assert online.alpha[1] / (online.alpha[1] + online.beta[1]) > online.alpha[0] / (online.alpha[0] + online.beta[0])
    props = CoveragePlanner(batch=4).propose(view, 100)
    assert {p.problem for p in props} == {p.id for p in PROBLEMS}
    assert {p.config for p in props} == {GOOD.id}


def _counts(view: RunView) -> tuple[np.ndarray, np.ndarray]:
    wins = np.array([[sum(s.correct is True for s in view.done(p.id, c.id)) for c in view.configs] for p in view.problems], float)
    fails = np.array([[sum(s.correct is not True for s in view.done(p.id, c.id)) for c in view.configs] for p in view.problems], float)
    return wins, fails


def test_samples_in_flight_count_as_failures_in_waiting() -> None:
    # q0 already has two samples of "good" in flight: one more of it is worth less than a first
    # sample of a fresh problem, so the next sample goes elsewhere
    view = RunView(PROBLEMS[:2], (GOOD, BAD), [_sample("q0", GOOD, i, None, SampleState.RUNNING) for i in range(2)])
    props = CoveragePlanner(batch=1, prior=PRIOR).propose(view, 100)
    assert _pairs(props) == [("q1", GOOD.id, 1)]
    # with a larger batch it spreads its choices the same way, and never exceeds the limit
    props = CoveragePlanner(batch=5, prior=PRIOR).propose(view, 3)
    assert sum(p.count for p in props) == 3 and props[0].problem == "q1"


def test_caps_min_gain_and_the_limit_are_respected() -> None:
    samples = [_sample("q0", GOOD, i, False) for i in range(3)] + [_sample("q1", GOOD, i, False) for i in range(2)]
    view = RunView(PROBLEMS[:2], (GOOD, BAD), samples)
    props = CoveragePlanner(batch=50, max_per_problem=4, prior=PRIOR).propose(view, 100)
    per_problem = {p: sum(x.count for x in props if x.problem == p) for p in ("q0", "q1")}
    assert per_problem == {"q0": 1, "q1": 2}
    props = CoveragePlanner(batch=50, max_per_problem=40, max_per_pair=3, prior=PRIOR).propose(view, 100)
    assert all(x.count + view.count(x.problem, x.config) <= 3 for x in props)
    assert {(x.problem, x.config) for x in props} == {("q0", BAD.id), ("q1", GOOD.id), ("q1", BAD.id)}
    # nothing is worth a 60% chance of a first success: nothing is proposed
    assert CoveragePlanner(min_gain=0.6, prior=PRIOR).propose(view, 100) == []
    assert CoveragePlanner(prior=PRIOR).propose(view, 0) == []


def test_cheaper_configurations_win_ties() -> None:
    prior = {"configs": ["good", "bad"], "atoms": [[0.3, 0.3]]}
    seen = [_sample("q0", GOOD, 0, True, tokens=300), _sample("q1", BAD, 0, True, tokens=100)]
    view = RunView(PROBLEMS, (GOOD, BAD), seen)
    props = CoveragePlanner(batch=2, cost="tokens", prior=prior).propose(view, 100)
    assert {p.config for p in props} == {BAD.id}
    # measured verification time counts under "auto" once it is material
    slow = [_sample("q0", GOOD, 0, True, tokens=100, seconds=0.0), _sample("q1", BAD, 0, True, tokens=100, seconds=2.0)]
    props = CoveragePlanner(batch=2, prior=prior).propose(RunView(PROBLEMS, (GOOD, BAD), slow), 100)
    assert {p.config for p in props} == {GOOD.id}
    # sample counts alone: a tie, which goes round the configurations
    props = CoveragePlanner(batch=2, cost="samples", prior=prior).propose(view, 100)
    assert {p.config for p in props} == {GOOD.id, BAD.id}


def test_decides_the_same_from_a_rebuilt_view() -> None:
    rng = np.random.default_rng(0)
    samples = []
    for p in PROBLEMS:
        for c in (GOOD, BAD):
            n = int(rng.integers(0, 4))
            states = [SampleState.DONE] * n + [SampleState.RUNNING] * int(rng.integers(0, 2))
            samples += [_sample(p.id, c, i, bool(rng.random() < 0.1), state=s) for i, s in enumerate(states)]
    for args in ({"batch": 7}, {"batch": 7, "prior": PRIOR}, {"batch": 3, "prior": PRIOR, "prior_weight": 0.5}):
        live = RunView(PROBLEMS, (GOOD, BAD), samples)
        first = _pairs(make_policy("planner", args).propose(live, 100))
        # settle the running samples as failures, then compare the live view and a rebuilt one
        live.update([replace(s, state=SampleState.DONE, correct=False, answer="0") for s in samples if s.state is SampleState.RUNNING])
        rebuilt = RunView(PROBLEMS, (GOOD, BAD), [s for p in PROBLEMS for c in (GOOD, BAD) for s in live.samples(p.id, c.id)])
        policy = make_policy("planner", args)
        assert _pairs(policy.propose(live, 100)) == _pairs(policy.propose(rebuilt, 100))
        assert first  # it had something to propose


@pytest.mark.parametrize(
    "args, message",
    [
        ({"batch": 0}, r"policy planner needs batch >= 1"),
        ({"max_per_problem": 2.5}, r"policy planner needs max_per_problem >= 1"),
        ({"max_per_pair": 0}, r"policy planner needs max_per_pair >= 1"),
        ({"min_gain": 1}, r"0 <= min_gain < 1.*min_gain=1"),
        ({"cost": "time"}, r"cost must be one of auto, samples, tokens, dollars, got cost='time'"),
        ({"prior_weight": 0}, r"0 < prior_weight <= 1"),
        ({"prior": {"atoms": [[0.5]]}}, r"bad prior: a prior must be a mapping"),
        ({"prior": {"configs": ["a"], "atoms": [[1.5]]}}, r"bad prior: prior atoms must be chances between 0 and 1"),
        ({"prior": {"configs": ["a", "b"], "atoms": [[0.5]]}}, r"bad prior: prior atoms must be .* of 2 chances"),
        ({"prior": "/no/such/prior.json"}, r"cannot read the prior file '/no/such/prior.json'"),
        ({"tries": 3}, r"policy planner does not take 'tries'"),
    ],
)
def test_bad_arguments_say_what_to_write(args: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_policy("planner", args)


def test_a_prior_for_other_configurations_is_refused_when_used(tmp_path: Path) -> None:
    path = tmp_path / "prior.json"
    path.write_text(json.dumps({"configs": ["good", "other"], "atoms": [[0.5, 0.5]]}))
    policy = make_policy("planner", {"prior": str(path)})
    with pytest.raises(InputError, match=r"the prior has no configuration named 'bad'"):
        policy.propose(RunView(PROBLEMS, (GOOD, BAD)), 10)


# ---- inside the real run loop ------------------------------------------------------------------
def _synthetic(seed: int, problems: int, n: int = 60) -> SuccessCounts:
    """Four configurations (two models x two temperatures); problems easy for one model only,
    hard for both, or hopeless, as in real code benchmarks."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(4, size=problems, p=[0.35, 0.35, 0.15, 0.15])
    base = {0: (0.5, 0.02), 1: (0.02, 0.35), 2: (0.04, 0.04), 3: (0.0, 0.0)}
    rates = np.array([[a * 1.2, a * 0.8, b * 0.7, b * 1.3] for a, b in (base[k] for k in kinds)]).clip(0, 1)
    rates *= rng.uniform(0.5, 1.5, size=rates.shape)
    correct = rng.binomial(n, rates.clip(0, 1))
    return SuccessCounts(tuple(f"{seed}-p{i}" for i in range(problems)), ("A-cold", "A-hot", "B-cold", "B-hot"),
                         np.full(correct.shape, n), correct)  # fmt: skip


def test_the_planner_runs_in_the_real_loop_and_beats_the_mix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    train, test = _synthetic(1, 60), _synthetic(2, 30)
    path = tmp_path / "counts.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in test.rows()))
    k = 6
    budget = k * len(test.problems)
    args = {"batch": 4, "max_per_problem": 200, "prior": fit_planner_prior(train)}
    # watch every decision the loop asks for: a problem with a correct sample is never proposed
    proposed_solved = []
    propose = CoveragePlanner.propose

    def watched(self: CoveragePlanner, view: RunView, limit: int) -> list:
        props = propose(self, view, limit)
        solved = {p.id for p in view.problems for c in view.configs if any(s.correct for s in view.done(p.id, c.id))}
        proposed_solved.extend(p for p in props if p.problem in solved)
        return props

    monkeypatch.setattr(CoveragePlanner, "propose", watched)
    outcome = budgetlab.run("plan", f"replay:{path}", store=str(tmp_path / "s.db"), policy="planner", policy_args=args,
                            budget=Budget(samples=budget), concurrency=4)  # fmt: skip
    assert outcome.stopped_because.startswith("budget: samples limit")
    assert proposed_solved == []
    store = open_store(str(tmp_path / "s.db"))
    try:
        done = [s for s in store.samples("plan") if s.state is SampleState.DONE]
    finally:
        store.close()
    assert len(done) == budget
    covered = len({s.problem for s in done if s.correct}) / len(test.problems)
    mix = mix_pass_at_k(test, HillClimbAllocator().fit(train, k))
    monkeypatch.undo()
    simulated = np.mean([simulate_coverage(make_policy("planner", args), test, budget, seed=s)[budget] for s in range(3)])
    print(f'coverage {covered:.3f} mix {mix:.3f} simulated {simulated:.3f}')
    assert covered > mix + 0.05
    assert abs(covered - simulated) < 0.15
