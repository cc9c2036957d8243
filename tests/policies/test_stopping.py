"""Stopping policies: each rule's decisions on hand-made answer sequences, statelessness, the
per-problem maximum, the offline simulator, and real runs over replay files agreeing with it.

The contract every policy keeps (limits, resume, budgets) is in ``test_policies.py``.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import importlib.util
import json
import random
from pathlib import Path

import numpy as np
import pytest

from budgetlab.analysis._stopping import simulate_stopping, stopping_orders
from budgetlab.backends import ReplayBackend, read_recorded
from budgetlab.core import Budget, Problem, Sample, SampleState, SamplingConfig
from budgetlab.core.run import RunSpec
from budgetlab.core.view import RunView
from budgetlab.errors import InputError
from budgetlab.policies import (
    AdaptiveConsistency,
    BayesStopping,
    ConfidenceStopping,
    EarlyStoppingSC,
    fit_bayes_stopping,
    make_policy,
)
from budgetlab.policies._adaptive import beta_leader_probability, dirichlet_leader_probability
from budgetlab.runner import execute, run
from budgetlab.selectors import BestOfN
from budgetlab.stores import SQLiteStore, open_store
from budgetlab.verifiers import make_verifier

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / ".." / "shared" / "data"


def draws(policy, answers, confidences=None) -> int:
    """Samples the policy draws on a problem whose samples come in this order."""
    n = 0
    while True:
        k = policy.next_count(answers[:n], None if confidences is None else confidences[:n])
        if k == 0 or n + k > len(answers):
            return n
        n += k


# ---- ESC ----------------------------------------------------------------------------------------
def test_esc_draws_windows_and_stops_on_a_unanimous_window() -> None:
    esc = EarlyStoppingSC(window=3, max_samples=10)
    assert esc.next_count([]) == 3
    assert esc.next_count(["a"]) == 2  # complete the window first
    assert esc.next_count(["a", "a", "a"]) == 0
    assert esc.next_count(["a", "b", "a"]) == 3
    assert esc.next_count(["a", "b", "a", "b", "b", "b"]) == 0  # only the latest window counts
    assert esc.next_count(["a", "a", "a", "a", "b", "a"]) == 3  # earlier agreement does not
    assert esc.next_count([None, None, None]) == 3  # unparsed answers never agree
    assert esc.next_count(["a", "b", "c"] * 3) == 1  # the last window is cut at max_samples
    assert esc.next_count(["a", "b", "c"] * 3 + ["d"]) == 0


# ---- Adaptive-Consistency ---------------------------------------------------------------------------
def test_beta_criterion_values() -> None:
    assert beta_leader_probability(3, 0) == 0.9375  # 1 - 0.5**4
    assert beta_leader_probability(4, 0) == 0.96875
    assert beta_leader_probability(5, 2) == pytest.approx(0.85546875)
    for a, b in [(1, 1), (3, 2), (7, 4)]:
        assert beta_leader_probability(a, b) + beta_leader_probability(b, a) == pytest.approx(1.0)
    # Real (weighted) counts go through the incomplete beta function and agree at whole numbers.
    assert beta_leader_probability(5.0 + 1e-12, 2.0) == pytest.approx(0.85546875, abs=1e-9)
    assert beta_leader_probability(2.5, 1.2) == pytest.approx(0.72231207, abs=1e-7)


def test_adaptive_beta_decisions() -> None:
    ac = AdaptiveConsistency(criterion="beta", threshold=0.95, max_samples=40)
    assert [ac.next_count(["a"] * n) for n in range(6)] == [1, 1, 1, 1, 0, 0]
    assert ac.next_count(["a", "a", "a", "b"]) == 1
    assert ac.next_count(["a", None, "a", "a", "a"]) == 0  # None casts no vote
    batched = AdaptiveConsistency(threshold=0.95, batch=2, max_samples=40)
    assert batched.next_count([]) == 2 and batched.next_count(["a"]) == 1
    assert batched.next_count(["a"] * 4) == 0


def test_dirichlet_criterion() -> None:
    # two answers: exactly the Beta criterion; one: an empty rival class is added
    assert dirichlet_leader_probability([5, 2]) == beta_leader_probability(5, 2)
    assert dirichlet_leader_probability([4]) == beta_leader_probability(4, 0)
    rng = np.random.default_rng(0)
    for counts in [(5, 3, 2), (3, 1, 1, 1), (10, 9, 8)]:
        draws_ = rng.dirichlet(np.array(counts) + 1.0, size=200_000)
        assert dirichlet_leader_probability(counts) == pytest.approx((draws_.argmax(1) == 0).mean(), abs=0.004)
    # Three-way splits are less certain than the two-way split of the same leader and runner-up.
    assert dirichlet_leader_probability([6, 3, 3]) < dirichlet_leader_probability([6, 3])
    assert dirichlet_leader_probability([6, 3, 3], top_k=2) == dirichlet_leader_probability([6, 3])
    ac = AdaptiveConsistency(criterion="dirichlet", threshold=0.9, max_samples=40)
    assert ac.next_count(["a", "b", "c", "a", "a", "a", "a"]) == 1
    assert ac.next_count(["a", "b", "c"] + ["a"] * 8) == 0


# ---- Bayes-optimal stopping ------------------------------------------------------------------------
def synthetic_pools(n_problems: int, seed: int, size: int = 40) -> list[tuple[list[str], list[bool]]]:
    """Mostly near-unanimous problems, some 60/40 races, and some scattered ones with no right
    answer (as on BIG-Bench Date); answer "a" is the right one."""
    rng = random.Random(seed)
    out = []
    for _ in range(n_problems):
        kind = rng.random()
        if kind < 0.6:
            probs = {"a": 0.97, "b": 0.03}
        elif kind < 0.8:
            probs = {"a": 0.6, "b": 0.4}
        else:
            probs = {"b": 0.3, "c": 0.25, "d": 0.25, "e": 0.2}
        answers = rng.choices(list(probs), weights=list(probs.values()), k=size)
        out.append((answers, [a == "a" for a in answers]))
    return out


@pytest.fixture(scope="module")
def fitted() -> BayesStopping:
    pools = synthetic_pools(200, seed=1)
    return fit_bayes_stopping([a for a, _ in pools], [c for _, c in pools], cost=0.002)


def test_bayes_fit_learns_the_prior_and_the_share_calibration(fitted: BayesStopping) -> None:
    assert fitted.max_samples == 40 and all(len(atom) == 5 for atom in fitted.prior)
    mass_near_unanimous = sum(w for s1, _, w, _, _ in fitted.prior if s1 >= 0.9)
    assert 0.45 < mass_near_unanimous < 0.75
    # The top answer of near-unanimous problems is right, and so, more often than not, is that of a race.
    for s1, s2, w, c1, c2 in fitted.prior:
        if w > 0.02 and s1 >= 0.9:
            assert c1 > 0.9
        if w > 0.02 and 0.55 <= s1 <= 0.7 and s2 >= 0.3:
            assert c1 > c2 + 0.2
    # The arguments are JSON and rebuild the same policy (a run is rebuilt from its record).
    record = json.loads(json.dumps(fitted.args()))
    again = make_policy("bayes", record)
    assert np.array_equal(again.table(), fitted.table())


def test_bayes_prior_saved_to_a_file_is_read_back_by_its_path(fitted: BayesStopping, tmp_path) -> None:
    path = tmp_path / "prior.json"
    fitted.save_prior(path)
    again = make_policy(f"bayes:prior={path},cost=0.002,max_samples=40")  # what --policy hands over
    assert np.array_equal(again.table(), fitted.table())
    with pytest.raises(InputError, match=r"cannot read the prior file '.*nope.json' .*save_prior"):
        make_policy(f"bayes:prior={tmp_path / 'nope.json'}")
    with pytest.raises(InputError, match="no fitted prior to save"):
        BayesStopping().save_prior(tmp_path / "x.json")


def test_bayes_decisions(fitted: BayesStopping) -> None:
    unanimous = draws(fitted, ["a"] * 40)
    assert 2 <= unanimous <= 5
    race = ["a", "b"] * 20
    assert draws(fitted, race) > 3 * unanimous  # a close race between plausible answers is worth sampling
    assert fitted.next_count(["a"] * 40) == 0
    # A larger cost per sample never draws more.
    cheap = BayesStopping(**{**fitted.args(), "cost": 0.0001})
    pools = synthetic_pools(60, seed=2)
    dear = simulate_stopping(fitted, pools, orderings=20)
    assert simulate_stopping(cheap, pools, orderings=20).mean_samples >= dear.mean_samples


def test_bayes_beats_beta_on_held_out_synthetic_problems(fitted: BayesStopping) -> None:
    """Same held-out problems and orders: far fewer samples than Adaptive-Consistency at no lower
    accuracy. (Not so where scattered problems have a right plurality answer: the fitted prior
    puts them on symmetric atoms, which see no value in resolving them; see the policy's notes.)"""
    test = synthetic_pools(150, seed=3)
    bayes = simulate_stopping(BayesStopping(**{**fitted.args(), "cost": 0.0005}), test, orderings=30, seed=5)
    beta = simulate_stopping(AdaptiveConsistency(threshold=0.95), test, orderings=30, seed=5)
    assert bayes.mean_samples < 0.75 * beta.mean_samples
    assert bayes.accuracy >= beta.accuracy - 0.005


def test_bayes_uniform_default_is_sane() -> None:
    policy = BayesStopping(cost=0.001, max_samples=20)
    assert draws(policy, ["a"] * 20) < 10
    assert draws(policy, ["a", "b"] * 10) >= 15


# ---- confidence-based stopping ------------------------------------------------------------------
def test_confidence_best_of_n_stops_at_a_confident_sample() -> None:
    policy = ConfidenceStopping(mode="best_of_n", threshold=0.8, max_samples=8)
    assert draws(policy, list("abcdefgh"), [0.1, 0.5, 0.85, 0.2, 0.9, 0, 0, 0]) == 3
    assert draws(policy, list("abcdefgh"), [0.1] * 8) == 8
    assert draws(policy, list("abcdefgh"), [None] * 8) == 8  # no confidence: nothing triggers
    # Calibration moves the stopping point: this Platt map says raw 0.85 is only ~0.6 likely correct.
    calibrated = ConfidenceStopping(mode="best_of_n", threshold=0.8, max_samples=8, calibrator={"kind": "platt", "a": 10.0, "b": -8.0})
    assert draws(calibrated, list("abcdefgh"), [0.1, 0.5, 0.85, 0.2, 0.96, 0, 0, 0]) == 5


def test_confidence_weighted_adaptive_consistency() -> None:
    policy = ConfidenceStopping(mode="adaptive", threshold=0.95, max_samples=20)
    agreeing = ["a"] * 20
    assert draws(policy, agreeing, [1.0] * 20) == 4  # full-weight votes: plain Adaptive-Consistency
    assert draws(policy, agreeing, [0.5] * 20) == 7  # 3.5 votes: 1 - 0.5**4.5 >= 0.95
    assert draws(policy, agreeing, [None] * 20) == 4  # no confidence: weight 1


def test_a_nan_confidence_votes_like_none_in_the_confidence_policy() -> None:
    # NaN weights reached beta_leader_probability, whose int(nan) crashed the run.
    policy = ConfidenceStopping(mode="adaptive", threshold=0.95, max_samples=20)
    assert draws(policy, ["a"] * 20, [float("nan")] * 20) == 4  # weight 1, as without a confidence
    best = ConfidenceStopping(mode="best_of_n", threshold=0.8, max_samples=8)
    assert draws(best, list("abcdefgh"), [float("nan"), 0.9, 0, 0, 0, 0, 0, 0]) == 2


def test_the_confidence_policy_reads_its_calibrator_from_a_file(tmp_path) -> None:
    import json

    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"kind": "platt", "a": 10.0, "b": -8.0}))
    policy = make_policy(f"confidence:mode=best_of_n,threshold=0.8,max_samples=8,calibrator={path}")
    assert policy.calibrator == {"kind": "platt", "a": 10.0, "b": -8.0, "logit": False}  # read once, not per decision
    assert draws(policy, list("abcdefgh"), [0.1, 0.5, 0.85, 0.2, 0.96, 0, 0, 0]) == 5


def test_confidence_policy_reads_scores_from_the_view() -> None:
    problems, configs = [Problem("q0"), Problem("q1")], [SamplingConfig("m")]
    c = configs[0].id

    def done(p: str, i: int, score: float) -> Sample:
        return Sample("r", p, c, i, 0, state=SampleState.DONE, answer="x", score=score)

    view = RunView(problems, configs, [done("q0", 0, 0.95), done("q1", 0, 0.2)])
    props = ConfidenceStopping(threshold=0.9, max_samples=4).propose(view, 10)
    assert [(p.problem, p.count) for p in props] == [("q1", 1)]


# ---- statelessness and the per-problem maximum -------------------------------------------------------
STOPPERS = [
    pytest.param(EarlyStoppingSC(window=2, max_samples=6), id="esc"),
    pytest.param(AdaptiveConsistency(threshold=0.9, max_samples=6), id="adaptive"),
    pytest.param(BayesStopping(cost=0.002, max_samples=6), id="bayes"),
]


def _view(per_problem: dict[str, list[tuple[SampleState, str | None]]]) -> tuple[RunView, list[Sample]]:
    configs = [SamplingConfig("m")]
    c = configs[0].id
    samples = [Sample("r", p, c, i, 0, state=st, answer=ans) for p, seq in per_problem.items() for i, (st, ans) in enumerate(seq)]
    return RunView([Problem(p) for p in per_problem], configs, samples), samples


@pytest.mark.parametrize("policy", STOPPERS)
def test_same_decisions_from_a_fresh_view_and_waits_for_samples_in_flight(policy) -> None:
    D, P, F = SampleState.DONE, SampleState.PENDING, SampleState.FAILED
    layout = {
        "settled": [(D, "a")] * 6,
        "waiting": [(D, "a"), (P, None)],
        "open": [(D, "a"), (D, "b")],
        "failed": [(F, None), (D, "a"), (D, "b")],
        "empty": [],
    }
    view, samples = _view(layout)
    first = [(p.problem, p.count) for p in policy.propose(view, 100)]
    again = [(p.problem, p.count) for p in policy.propose(view, 100)]  # memo in play
    fresh = [(p.problem, p.count) for p in type(policy)(**_fields(policy)).propose(_view(layout)[0], 100)]
    assert first == again == fresh
    proposed = {p for p, _ in first}
    assert "settled" not in proposed and "waiting" not in proposed
    assert {"open", "empty"} <= proposed
    assert all(count + len(layout[p]) <= policy.max_samples for p, count in first)


def _fields(policy) -> dict:
    return {f.name: getattr(policy, f.name) for f in dataclasses.fields(policy)}


@pytest.mark.parametrize("policy", STOPPERS)
def test_per_problem_maximum_holds_in_simulation_and_live(tmp_path: Path, policy) -> None:
    never = ["a", "b", "c"] * 20  # never unanimous, never a clear leader
    assert draws(policy, never) == policy.max_samples
    sim = simulate_stopping(policy, [(never, [True] * 60)], orderings=5)
    assert sim.drawn.max() <= policy.max_samples
    path = write_replay(tmp_path / "r.jsonl", n_problems=5, per_pair=12, seed=4)
    counts = live_counts(tmp_path, path, policy, seed=None)
    assert counts and max(counts.values()) <= policy.max_samples


# ---- the simulator ----------------------------------------------------------------------------
def test_simulator_matches_a_plain_walk_and_scores_the_majority() -> None:
    rng = random.Random(0)
    problems = []
    for _ in range(30):
        answers = rng.choices("abc", weights=[5, 3, 1], k=12)
        problems.append((answers, [a == "a" for a in answers]))
    policy = AdaptiveConsistency(threshold=0.9, max_samples=12)
    orders = stopping_orders([12] * 30, orderings=7, seed=3)
    sim = simulate_stopping(policy, problems, orders=orders)
    for i, (answers, correct) in enumerate(problems):
        for r in range(7):
            seq = [answers[j] for j in orders[i][r]]
            n = draws(policy, seq)
            assert sim.drawn[r, i] == n
            votes = collections.Counter(seq[:n])
            top = max(votes.values())
            winner = next(a for a in _first_to_reach(seq[:n], top))
            assert sim.correct[r, i] == float(winner == "a")
    assert sim.exhausted == 0 and sim.orderings == 7
    mean, lo, hi = sim.accuracy_ci()
    assert mean == pytest.approx(sim.accuracy) and lo <= mean <= hi
    assert sim.subset([0, 1]).drawn.shape == (7, 2)
    delta = sim.difference_ci(np.ones(30))
    assert delta[0] == pytest.approx(sim.accuracy - 1.0)


def _first_to_reach(seq: list[str], top: int):
    counts: collections.Counter = collections.Counter()
    for a in seq:
        counts[a] += 1
        if counts[a] == top:
            yield a


def test_simulator_counts_exhausted_pools_and_uses_a_selector() -> None:
    problems = [(["a", "b", "c"], [True, False, False])]
    sim = simulate_stopping(EarlyStoppingSC(window=2, max_samples=8), problems, orderings=4)
    assert sim.exhausted == 4 and sim.drawn.max() == 3
    chosen = simulate_stopping(ConfidenceStopping(threshold=0.99, max_samples=3), problems, orders=[np.array([[1, 0, 2]])],
                               confidences=[[0.9, 0.2, 0.1]], selector=BestOfN())  # fmt: skip
    assert chosen.correct[0, 0] == 1.0  # the best-scored sample (index 0) is correct, though drawn second
    with pytest.raises(ValueError, match="needs a stopping policy"):
        simulate_stopping(make_policy("fixed"), problems)


# ---- real runs over replay files agree with the simulator -------------------------------------------
def write_replay(path: Path, n_problems: int, per_pair: int = 40, seed: int = 0) -> Path:
    rng = random.Random(seed)
    lines = []
    for i in range(n_problems):
        weights = rng.choice([[1, 0, 0], [8, 1, 1], [5, 4, 1], [3, 3, 3]])
        for _ in range(per_pair):
            answer = rng.choices(["7", "8", None], weights=weights)[0]
            lines.append(json.dumps({"problem": f"p{i}", "config": "m", "answer": answer, "correct": answer == "7"}))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def live_counts(tmp_path: Path, replay: Path, policy, seed: int | None, name: str = "run") -> dict[str, int]:
    backend = ReplayBackend(replay, seed=seed)
    store = SQLiteStore(tmp_path / f"{name}.db")
    try:
        store.create_run(RunSpec(name=name, backend=f"replay:{replay}"), backend.problems(), backend.configs())
        asyncio.run(execute(store, name, backend, policy, make_verifier("auto"), Budget(), concurrency=16))
        return collections.Counter(s.problem for s in store.samples(name))
    finally:
        store.close()


def sequences_in_draw_order(tmp_path: Path, replay: Path, seed: int, per_pair: int) -> tuple[list[str], list]:
    """Each problem's recordings in the order a run with this replay seed draws them (a fixed-k run)."""
    store_path = tmp_path / "all.db"
    run("all", f"replay:{replay}", store=str(store_path), policy="fixed", policy_args={"k": per_pair}, backend_options={"seed": seed})
    with open_store(str(store_path)) as st:
        by_problem = collections.defaultdict(list)
        for s in st.samples("all"):
            by_problem[s.problem].append(s)
    ids = list(by_problem)
    return ids, [([s.answer for s in by_problem[p]], [s.correct for s in by_problem[p]]) for p in ids]


E2E = [
    pytest.param("esc", {"window": 3, "max_samples": 40}, id="esc"),
    pytest.param("adaptive", {"criterion": "beta", "threshold": 0.95, "max_samples": 40}, id="adaptive-beta"),
    pytest.param("adaptive", {"criterion": "dirichlet", "threshold": 0.9, "max_samples": 40, "batch": 2}, id="adaptive-dirichlet"),
    pytest.param("bayes", {"cost": 0.001, "max_samples": 40}, id="bayes"),
]


@pytest.mark.parametrize("name,args", E2E)
def test_a_real_run_draws_what_the_simulator_predicts(tmp_path: Path, name: str, args: dict) -> None:
    replay = write_replay(tmp_path / "rec.jsonl", n_problems=12)
    ids, ordered = sequences_in_draw_order(tmp_path, replay, seed=11, per_pair=40)
    predicted = simulate_stopping(make_policy(name, args), ordered, orders=[np.arange(40)] * len(ids)).drawn[0]
    counts = live_counts(tmp_path, replay, make_policy(name, args), seed=11)
    assert [counts[p] for p in ids] == predicted.tolist()
    assert len(set(predicted.tolist())) > 1  # the problems really stop at different points


def _converter(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


needs_shared_data = pytest.mark.skipif(
    not (SHARED / "esc" / "GPT3.5__last_letters__T0.7.jsonl.gz").is_file()
    or not (SHARED / "mot_cascade" / "GPT3_result__date_cot1_40.json.gz").is_file(),
    reason=f"the shared recorded data is not at {SHARED.resolve()} (see scripts/convert_esc.py and convert_mot.py)",
)


@needs_shared_data
def test_converters_reproduce_the_documented_counts(tmp_path: Path) -> None:
    esc = _converter("convert_esc").convert(SHARED, tmp_path / "esc.jsonl.gz")
    assert (esc["problems"], esc["samples"], esc["unparsed"]) == (500, 20000, 77)
    assert esc["per_sample_accuracy"] == pytest.approx(0.787, abs=0.001)
    mot = _converter("convert_mot").convert(SHARED, tmp_path / "date.jsonl.gz")
    assert (mot["problems"], mot["samples"]) == (369, 14760)
    records, _ = read_recorded(tmp_path / "date.jsonl.gz")
    assert all(len(v) == 40 for v in records.values())


@needs_shared_data
def test_a_real_run_over_converted_esc_data_matches_the_simulator(tmp_path: Path) -> None:
    module = _converter("convert_esc")
    keep = {f"ll-{i:04d}" for i in range(0, 500, 10)}  # 50 problems keep the test fast
    module.write([r for r in module.records(SHARED) if r["problem"] in keep], tmp_path / "ll.jsonl.gz")
    replay = tmp_path / "ll.jsonl.gz"
    ids, ordered = sequences_in_draw_order(tmp_path, replay, seed=5, per_pair=40)
    for name, args in [("esc", {"window": 5}), ("adaptive", {"threshold": 0.95})]:
        predicted = simulate_stopping(make_policy(name, args), ordered, orders=[np.arange(40)] * len(ids)).drawn[0]
        counts = live_counts(tmp_path, replay, make_policy(name, args), seed=5, name=f"ll-{name}")
        assert [counts[p] for p in ids] == predicted.tolist()


# ---- bad arguments say what to fix ------------------------------------------------------------------
@pytest.mark.parametrize(
    "name,args,message",
    [
        ("esc", {"window": 0}, r"policy esc needs window >= 1 .*got window=0; write e.g. esc:window=5"),
        ("adaptive", {"criterion": "entropy"}, r"criterion must be one of beta, dirichlet, got criterion='entropy'"),
        ("adaptive", {"threshold": 1.5}, r"needs 0 < threshold < 1, got threshold=1.5"),
        ("adaptive", {"top_k": 1}, r"top_k >= 2"),
        ("bayes", {"cost": -1}, r"needs 0 <= cost < 1 .*got cost=-1"),
        ("bayes", {"prior": [[0.2, 0.9, 1.0]]}, r"share2 <= share1"),
        ("bayes", {"prior": "uniform"}, r"cannot read the prior file .uniform. .*save_prior"),
        ("bayes", {"calibrator": {"kind": "platt"}}, r"bad calibrator: calibrator 'platt' needs 'a'"),
        ("confidence", {"mode": "vote"}, r"mode must be one of best_of_n, adaptive, got mode='vote'"),
        ("confidence", {"source": "x"}, r"source must be one of auto, score, logprob"),
    ],
)
def test_bad_arguments(name: str, args: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        make_policy(name, args)
