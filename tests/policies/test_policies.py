"""The policy contract, checked for every policy, plus what is specific to each.

To add a policy to the suite, add one entry to ``POLICIES``: its name and arguments as
``make_policy`` takes them (``--policy NAME:key=value``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from budgetlab.backends import ReplayBackend
from budgetlab.core import Budget, Problem, Sample, SampleState, SamplingConfig, Spend, derive_seed
from budgetlab.core.run import RunSpec, RunState
from budgetlab.core.view import RunView
from budgetlab.errors import InputError
from budgetlab.policies import POLICIES as REGISTRY
from budgetlab.policies import FixedK, Policy, Proposal, make_policy
from budgetlab.runner import execute
from budgetlab.stores import SQLiteStore
from budgetlab.verifiers import make_verifier

# ---- the policies under test: one entry per policy (and per interesting argument set) ----------
POLICIES = [
    pytest.param("fixed", {"k": 3}, id="fixed-k3"),
    pytest.param("fixed", {"k": 1}, id="fixed-k1"),
    pytest.param("esc", {"window": 2, "max_samples": 7}, id="esc-w2"),
    pytest.param("adaptive", {"criterion": "beta", "threshold": 0.8, "max_samples": 8}, id="adaptive-beta"),
    pytest.param("adaptive", {"criterion": "dirichlet", "threshold": 0.8, "max_samples": 8, "batch": 2}, id="adaptive-dirichlet-b2"),
    pytest.param("bayes", {"cost": 0.01, "max_samples": 8}, id="bayes"),
    pytest.param("confidence", {"mode": "best_of_n", "threshold": 0.9, "max_samples": 4}, id="confidence-bon"),
    pytest.param("confidence", {"mode": "adaptive", "threshold": 0.8, "max_samples": 5}, id="confidence-adaptive"),
    pytest.param("select-uniform", {}, id="select-uniform"),
    pytest.param("select-halving", {}, id="select-halving"),
    pytest.param("ucbe", {"a": 1.0}, id="ucbe"),
    pytest.param("ucbe-lrf", {}, id="ucbe-lrf"),
    pytest.param("planner", {"batch": 3, "max_per_problem": 10}, id="planner"),
    pytest.param("planner", {"batch": 5, "max_per_problem": 12, "cost": "tokens", "prior_weight": 0.8,
                             "prior": {"configs": ["m1", "m2"], "atoms": [[0.6, 0.1], [0.05, 0.5], [0.0, 0.0]]}}, id="planner-prior"),  # fmt: skip
]

PROBLEMS = tuple(Problem(f"q{i}") for i in range(6))
CONFIGS = tuple(SamplingConfig(model=m, backend="replay") for m in ("m1", "m2"))
PAIRS = [(p.id, c.id) for p in PROBLEMS for c in CONFIGS]


def _policy(name: str, args: dict) -> Policy:
    return make_policy(name, args)


def test_every_registered_policy_is_in_the_suite() -> None:
    assert set(REGISTRY) == {p.values[0] for p in POLICIES}


def _sample(problem: str, config: str, index: int, state: SampleState, correct: bool | None = None) -> Sample:
    return Sample("r", problem, config, index, derive_seed(0, problem, config, index), state=state,
                  answer=None if correct is None else ("1" if correct else "2"), correct=correct)  # fmt: skip


_STATES = st.sampled_from([SampleState.PENDING, SampleState.RUNNING, SampleState.DONE, SampleState.FAILED])
# Per pair: the states of its samples (indexes 0..n-1) and their verdicts.
_PAIR = st.lists(st.tuples(_STATES, st.sampled_from([True, False, None])), max_size=6)
_VIEWS = st.lists(_PAIR, min_size=len(PAIRS), max_size=len(PAIRS))


def _view(pairs_states) -> RunView:
    samples = []
    for (problem, config), states in zip(PAIRS, pairs_states):
        for i, (state, correct) in enumerate(states):
            samples.append(_sample(problem, config, i, state, correct if state is SampleState.DONE else None))
    return RunView(PROBLEMS, CONFIGS, samples, Budget())


def _normal(props: list[Proposal]) -> list[tuple[str, str, int]]:
    return [(p.problem, p.config, p.count) for p in props]


# ---- the contract, for every policy -------------------------------------------------------------
@pytest.mark.parametrize("name,args", POLICIES)
def test_is_a_policy(name: str, args: dict) -> None:
    policy = _policy(name, args)
    assert isinstance(policy, Policy)
    assert isinstance(policy.name, str) and policy.name
    planned = policy.planned(RunView(PROBLEMS, CONFIGS))
    assert planned is None or (isinstance(planned, int) and planned >= 0)


@pytest.mark.parametrize("name,args", POLICIES)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(states=_VIEWS, limit=st.integers(min_value=1, max_value=40))
def test_proposals_respect_limit_and_known_pairs_and_are_deterministic(name: str, args: dict, states, limit: int) -> None:
    policy = _policy(name, args)
    view = _view(states)
    props = policy.propose(view, limit)
    assert isinstance(props, list) and all(isinstance(p, Proposal) for p in props)
    assert sum(p.count for p in props) <= limit
    assert all(p.count >= 1 for p in props)
    assert {(p.problem, p.config) for p in props} <= set(PAIRS)  # never an unknown pair
    # Deterministic and stateless: the same view (or an equal one) gives the same proposals.
    assert _normal(policy.propose(view, limit)) == _normal(props)
    assert _normal(_policy(name, args).propose(_view(states), limit)) == _normal(props)
    # A larger limit never gives fewer samples.
    bigger = policy.propose(view, limit + 10)
    assert sum(p.count for p in bigger) >= sum(p.count for p in props)


@pytest.mark.parametrize("name,args", POLICIES)
@settings(max_examples=40, deadline=None)
@given(states=_VIEWS, limits=st.lists(st.integers(min_value=1, max_value=12), min_size=1, max_size=6))
def test_a_view_kept_current_decides_like_a_fresh_one(name: str, args: dict, states, limits: list[int]) -> None:
    """The loop keeps one view and updates it as samples are added and settled; a policy that
    memoises on the view must decide exactly as it would from a view rebuilt from the store."""
    policy = _policy(name, args)
    live = _view(states)
    for step, limit in enumerate(limits):
        props = policy.propose(live, limit)
        fresh = _policy(name, args).propose(RunView(PROBLEMS, CONFIGS, _all(live)), limit)
        assert _normal(props) == _normal(fresh)
        new = []
        for prop in props:
            start = live.count(prop.problem, prop.config)
            new += [_sample(prop.problem, prop.config, start + i, SampleState.PENDING) for i in range(prop.count)]
        live.update(new)
        # settle every other new sample, as the loop does when results come back
        live.update([replace(smp, state=SampleState.DONE, correct=step % 2 == 0, answer="1") for smp in new[::2]])


def _all(view: RunView) -> list[Sample]:
    return [smp for p in view.problems for c in view.configs for smp in view.samples(p.id, c.id)]


@pytest.mark.parametrize("name,args", POLICIES)
def test_unknown_pairs_in_the_view_are_never_proposed(name: str, args: dict) -> None:
    # Samples of a problem the run does not have (e.g. a problem file changed) are ignored.
    stray = [_sample("not-a-problem", CONFIGS[0].id, i, SampleState.DONE, True) for i in range(3)]
    stray += [_sample(PROBLEMS[0].id, "not-a-config", i, SampleState.DONE, True) for i in range(3)]
    props = _policy(name, args).propose(RunView(PROBLEMS, CONFIGS, stray), 1000)
    assert {(p.problem, p.config) for p in props} <= set(PAIRS)


def _replay_file(path: Path, per_pair: int = 40) -> Path:
    rng = random.Random(4)
    lines = []
    for p in PROBLEMS:
        skill = rng.random()
        for c in CONFIGS:
            for _ in range(per_pair):
                ok = rng.random() < skill
                lines.append(json.dumps({
                    "problem": p.id, "config": c.model, "answer": "1" if ok else rng.choice("234"), "correct": ok,
                    "prompt_tokens": rng.randint(5, 20), "completion_tokens": rng.randint(10, 90),
                    "cost": rng.randint(1, 16) / 512,
                }))  # fmt: skip
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _run(tmp_path: Path, policy: Policy, budget: Budget, store_name: str = "store.db", concurrency: int = 8):
    path = tmp_path / "recorded.jsonl"
    if not path.exists():
        _replay_file(path)
    backend = ReplayBackend(path)
    store = SQLiteStore(tmp_path / store_name)
    if store.find_run("r") is None:
        store.create_run(RunSpec(name="r", backend=f"replay:{path}"), PROBLEMS, CONFIGS)
    try:
        outcome = asyncio.run(
            asyncio.wait_for(
                execute(store, "r", backend, policy, make_verifier("auto"), budget, concurrency=concurrency),
                timeout=30,
            )
        )
        return outcome, store.samples("r"), store.get_run("r")
    finally:
        store.close()


@pytest.mark.parametrize("name,args", POLICIES)
def test_unlimited_run_terminates_done(tmp_path: Path, name: str, args: dict) -> None:
    policy = _policy(name, args)
    outcome, samples, info = _run(tmp_path, policy, Budget())
    assert outcome.state is RunState.DONE and info.state is RunState.DONE
    assert outcome.stopped_because == f"complete: policy {policy.name} has nothing more to draw"
    assert samples and all(s.state.finished for s in samples)
    assert {(s.problem, s.config) for s in samples} <= set(PAIRS)
    planned = policy.planned(RunView(PROBLEMS, CONFIGS, samples))
    if planned is not None:
        assert len(samples) == planned
    # Nothing more to propose once done.
    assert policy.propose(RunView(PROBLEMS, CONFIGS, samples), 1000) == []


@pytest.mark.parametrize("limit", [Budget(samples=5), Budget(tokens=400), Budget(dollars=0.2)], ids=["samples", "tokens", "dollars"])
@pytest.mark.parametrize("name,args", POLICIES)
def test_budgeted_run_terminates_within_budget(tmp_path: Path, name: str, args: dict, limit: Budget) -> None:
    outcome, samples, info = _run(tmp_path, _policy(name, args), limit)
    assert outcome.state in (RunState.DONE, RunState.STOPPED)
    assert limit.first_exceeded(info.spent) is None
    assert info.reserved == Spend()
    if outcome.state is RunState.STOPPED:
        assert outcome.stopped_because.startswith(f"budget: {next(iter(limit.limits()))} limit")


@pytest.mark.parametrize("name,args", POLICIES)
def test_resumed_runs_reach_the_same_allocation(tmp_path: Path, name: str, args: dict) -> None:
    """A policy decides from the view alone, so a run stopped and resumed several times (budget
    raised step by step) ends with the same samples per pair as one uninterrupted run."""
    straight, samples_a, _ = _run(tmp_path, _policy(name, args), Budget(), store_name="a.db", concurrency=1)
    for step in (3, 7, 12):
        _run(tmp_path, _policy(name, args), Budget(samples=step), store_name="b.db", concurrency=1)
    resumed, samples_b, _ = _run(tmp_path, _policy(name, args), Budget(), store_name="b.db", concurrency=1)
    assert straight.state is resumed.state is RunState.DONE

    def per_pair(samples):
        return collections.Counter((s.problem, s.config) for s in samples)

    assert per_pair(samples_a) == per_pair(samples_b)
    assert [(s.key, s.seed, s.answer) for s in samples_a] == [(s.key, s.seed, s.answer) for s in samples_b]


# ---- FixedK ------------------------------------------------------------------------------------
def test_fixed_k_fills_each_pair_to_k_in_order() -> None:
    policy = FixedK(k=3)
    view = RunView(PROBLEMS[:2], CONFIGS)
    p0, p1 = PROBLEMS[0].id, PROBLEMS[1].id
    c0, c1 = CONFIGS[0].id, CONFIGS[1].id
    assert _normal(policy.propose(view, 100)) == [(p0, c0, 3), (p0, c1, 3), (p1, c0, 3), (p1, c1, 3)]
    assert _normal(policy.propose(view, 7)) == [(p0, c0, 3), (p0, c1, 3), (p1, c0, 1)]
    assert _normal(policy.propose(view, 3)) == [(p0, c0, 3)]
    assert policy.planned(view) == 12
    assert policy.name == "fixed"


def test_fixed_k_counts_failed_pending_and_running_samples_as_drawn() -> None:
    policy = FixedK(k=3)
    (p0, c0), (p0b, c1) = PAIRS[0], PAIRS[1]
    samples = [
        _sample(p0, c0, 0, SampleState.FAILED),
        _sample(p0, c0, 1, SampleState.FAILED),
        _sample(p0, c0, 2, SampleState.FAILED),  # k failed: the pair is complete, not retried
        _sample(p0b, c1, 0, SampleState.DONE, True),
        _sample(p0b, c1, 1, SampleState.PENDING),
    ]
    view = RunView(PROBLEMS[:1], CONFIGS, samples)
    assert _normal(policy.propose(view, 100)) == [(p0b, c1, 1)]
    view.update([_sample(p0b, c1, 2, SampleState.RUNNING)])
    assert policy.propose(view, 100) == []


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "8", None])
def test_fixed_k_rejects_bad_k(k) -> None:
    with pytest.raises(InputError, match=r"policy fixed needs k, a whole number >= 1 of samples per problem, got k=.*fixed:k=8"):
        FixedK(k=k)
    with pytest.raises(InputError, match="policy fixed needs k, a whole number >= 1"):
        make_policy("fixed", {"k": k})


def test_make_policy_errors_and_defaults() -> None:
    assert make_policy("fixed") == FixedK(k=8)
    assert make_policy("fixed", {"k": 2}) == FixedK(k=2)
    with pytest.raises(InputError, match=r"unknown policy 'bandit'; use one of: .*fixed"):
        make_policy("bandit")
    with pytest.raises(InputError, match=r"fixed.* does not take.*\bn\b"):
        make_policy("fixed", {"n": 3})
