"""Expected pass@k of mixed allocations, and the allocators that choose them."""

from __future__ import annotations

import itertools
import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest

from budgetlab.allocation import (
    Allocation,
    Allocator,
    BestSingleAllocator,
    HillClimbAllocator,
    SuccessCounts,
    UniformAllocator,
    log_fail_table,
    mix_pass_at_k,
    single_pass_at_k,
)

OSCA = Path(__file__).resolve().parents[3] / "shared" / "data" / "osca" / "bcb_results.json"


def _random_counts(rng: np.random.Generator, problems: int, configs: int, n: int | tuple[int, int]) -> SuccessCounts:
    lo, hi = (n, n) if isinstance(n, int) else n
    samples = rng.integers(lo, hi + 1, size=(problems, configs))
    # skewed rates, as real data: many pairs near 0 or near 1
    rates = rng.beta(0.4, 0.6, size=(problems, configs))
    correct = rng.binomial(samples, rates)
    return SuccessCounts(tuple(f"p{i}" for i in range(problems)), tuple(f"c{j}" for j in range(configs)), samples, correct)


def _brute_force(counts: SuccessCounts, allocation: list[int]) -> list[float]:
    """Each problem's chance that some sample is correct, by listing every draw without replacement."""
    out = []
    for i in range(len(counts.problems)):
        all_fail = 1.0
        for j, a in enumerate(allocation):
            n, c = int(counts.samples[i, j]), int(counts.correct[i, j])
            outcomes = [True] * c + [False] * (n - c)
            draws = list(itertools.combinations(range(n), a))
            all_fail *= sum(not any(outcomes[t] for t in d) for d in draws) / len(draws)
        out.append(1 - all_fail)
    return out


@pytest.mark.parametrize("seed", range(6))
def test_mix_pass_at_k_equals_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    counts = _random_counts(rng, problems=5, configs=3, n=(4, 7))
    for allocation in ([1, 0, 0], [2, 1, 1], [0, 3, 2], [4, 4, 4], [0, 0, 0]):
        exact = _brute_force(counts, allocation)
        got = mix_pass_at_k(counts, allocation, per_problem=True)
        assert np.allclose(got, exact, atol=1e-12)
        assert mix_pass_at_k(counts, allocation) == pytest.approx(float(np.mean(exact)), abs=1e-12)
        plugin = [1 - math.prod((1 - counts.correct[i, j] / counts.samples[i, j]) ** a for j, a in enumerate(allocation))
                  for i in range(len(counts.problems))]  # fmt: skip
        assert np.allclose(mix_pass_at_k(counts, allocation, estimator="plugin", per_problem=True), plugin, atol=1e-12)


def test_one_configuration_is_the_usual_pass_at_k() -> None:
    from budgetlab.analysis import pass_at_k

    counts = SuccessCounts(("a", "b", "c"), ("x", "y"), [[10, 10], [10, 10], [10, 10]], [[0, 3], [10, 1], [4, 9]])
    for k in (1, 3, 7, 10):
        expected = np.mean([pass_at_k(10, c, k) for c in (3, 1, 9)])
        assert single_pass_at_k(counts, "y", [k])[0] == pytest.approx(expected, abs=1e-12)
        assert mix_pass_at_k(counts, {"y": k}) == pytest.approx(expected, abs=1e-12)


def test_allocations_in_every_form_agree_and_bad_ones_are_refused() -> None:
    counts = _random_counts(np.random.default_rng(1), 4, 3, 8)
    as_list = mix_pass_at_k(counts, [1, 0, 2])
    assert mix_pass_at_k(counts, {"c0": 1, "c2": 2}) == as_list
    assert mix_pass_at_k(counts, Allocation(("c2", "c0"), (2, 1))) == as_list
    with pytest.raises(ValueError, match="unbiased estimate needs at most the recorded samples"):
        mix_pass_at_k(counts, [9, 0, 0])
    assert 0 <= mix_pass_at_k(counts, [9, 0, 0], estimator="plugin") <= 1
    with pytest.raises(ValueError, match="configurations the counts do not have"):
        mix_pass_at_k(counts, {"nope": 1})
    with pytest.raises(ValueError, match="one count >= 0 per configuration"):
        mix_pass_at_k(counts, [1, 2])
    with pytest.raises(ValueError, match="estimator must be one of"):
        mix_pass_at_k(counts, [1, 0, 0], estimator="exact")


def test_fractional_counts_unknown_names_and_empty_tables_are_refused() -> None:
    counts = SuccessCounts(("p",), ("a", "b"), [[5, 5]], [[5, 0]])
    # 0.5 of a sample used to be truncated to 0 (pass@k 0.0) without a word
    for bad in ([0.5, 0], [True, 0], {"a": 1.7}):
        with pytest.raises(ValueError, match="whole sample counts"):
            mix_pass_at_k(counts, bad)
    assert mix_pass_at_k(counts, np.array([1, 0])) == 1.0
    with pytest.raises(ValueError, match="estimator must be one of"):
        single_pass_at_k(counts, "a", [1], estimator="exact")
    with pytest.raises(ValueError, match="no configuration 'zz'"):
        single_pass_at_k(counts, "zz", [1])
    empty = SuccessCounts((), ("a",), np.zeros((0, 1), dtype=int), np.zeros((0, 1), dtype=int))
    with pytest.raises(ValueError, match="at least one problem"):
        mix_pass_at_k(empty, [1])
    with pytest.raises(ValueError, match="at least one training problem"):
        HillClimbAllocator().fit(empty, 2)


def test_unbiased_allocators_refuse_a_k_the_recordings_cannot_serve() -> None:
    # "a" has 3 samples on p and "b" 2 on q: under the unbiased estimate at most 3 + 2 = 5 per problem.
    # k = 6 used to come back as (4, 2), which mix_pass_at_k then refuses; k = 7 on a configuration
    # with no samples came back as all 7 to it (best-single) or 2 to it (hill climbing).
    counts = SuccessCounts(("p", "q"), ("a", "b"), [[3, 10], [10, 2]], [[1, 1], [1, 1]])
    for allocator in (HillClimbAllocator(), BestSingleAllocator()):
        with pytest.raises(ValueError, match="exceed the recorded ones.*at most 5"):
            allocator.fit(counts, 6)
    with pytest.raises(ValueError, match="no configuration has k=4 recorded samples on every problem"):
        BestSingleAllocator().fit(counts, 4)
    assert mix_pass_at_k(counts, HillClimbAllocator().fit(counts, 5)) == 1.0
    assert HillClimbAllocator(estimator="plugin").fit(counts, 6).k == 6
    unsampled = SuccessCounts(("p", "q"), ("a", "b"), [[0, 5], [0, 5]], [[0, 2], [0, 0]])
    with pytest.raises(ValueError, match="at most 5"):
        HillClimbAllocator().fit(unsampled, 7)
    assert HillClimbAllocator().fit(unsampled, 3).counts == (0, 3)


def test_hill_climbing_on_ragged_recordings_warns_nothing() -> None:
    counts = SuccessCounts(("p", "q"), ("a", "b"), [[3, 10], [10, 2]], [[1, 1], [1, 1]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow in moves that are masked out used to warn
        assert HillClimbAllocator().fit(counts, 3).k == 3


def _exhaustive_best(counts: SuccessCounts, k: int, estimator: str) -> float:
    n_configs = len(counts.configs)
    best = -1.0
    # every way to write k as an ordered sum of n_configs counts (stars and bars)
    for bars in itertools.combinations(range(k + n_configs - 1), n_configs - 1):
        edges = (-1, *bars, k + n_configs - 1)
        vector = [edges[t + 1] - edges[t] - 1 for t in range(n_configs)]
        if estimator == "unbiased" and (np.array(vector)[None, :] > counts.samples).any():
            continue
        best = max(best, mix_pass_at_k(counts, vector, estimator=estimator))
    return best


@pytest.mark.parametrize("estimator", ["unbiased", "plugin"])
@pytest.mark.parametrize("seed", range(12))
def test_hill_climbing_finds_the_exhaustive_optimum(seed: int, estimator: str) -> None:
    rng = np.random.default_rng(100 + seed)
    counts = _random_counts(rng, problems=int(rng.integers(3, 9)), configs=int(rng.integers(2, 5)), n=12)
    for k in (1, 2, 3, 5, 8):
        allocation = HillClimbAllocator(estimator=estimator).fit(counts, k)
        assert allocation.k == k and allocation.configs == counts.configs
        found = mix_pass_at_k(counts, allocation, estimator=estimator)
        assert found == pytest.approx(_exhaustive_best(counts, k, estimator), abs=1e-12)


def test_allocators_follow_the_contract_and_the_obvious_cases() -> None:
    # c0 solves half the problems for sure, c1 the other half, c2 nothing: the mix takes both
    counts = SuccessCounts(("a", "b", "c", "d"), ("c0", "c1", "c2"),
                           np.full((4, 3), 20), [[20, 0, 0], [20, 0, 0], [0, 20, 0], [0, 20, 0]])  # fmt: skip
    for allocator in (UniformAllocator(), BestSingleAllocator(), HillClimbAllocator()):
        assert isinstance(allocator, Allocator)
    mix = HillClimbAllocator().fit(counts, 2)
    assert mix.as_dict() == {"c0": 1, "c1": 1} and mix_pass_at_k(counts, mix) == 1.0
    single = BestSingleAllocator().fit(counts, 2)
    assert single.as_dict() == {"c0": 2} and mix_pass_at_k(counts, single) == 0.5
    assert UniformAllocator().fit(counts, 7).counts in ((3, 2, 2), (2, 3, 2))
    assert UniformAllocator().fit(counts, 6).counts == (2, 2, 2)
    with pytest.raises(ValueError, match="k >= 1"):
        HillClimbAllocator().fit(counts, 0)


def test_success_counts_check_their_input_and_round_trip_rows() -> None:
    counts = _random_counts(np.random.default_rng(3), 3, 2, 5)
    again = SuccessCounts.from_rows(counts.rows())
    assert again.problems == counts.problems and again.configs == counts.configs
    assert (again.samples == counts.samples).all() and (again.correct == counts.correct).all()
    assert counts.take(["p2", "p0"]).problems == ("p2", "p0")
    with pytest.raises(ValueError, match="0 <= correct <= samples"):
        SuccessCounts(("a",), ("x",), [[3]], [[4]])
    with pytest.raises(ValueError, match="pairs have no row"):
        SuccessCounts.from_rows([{"problem": "a", "config": "x", "n": 2, "correct": 1}, {"problem": "b", "config": "y", "n": 2, "correct": 1}])
    table = log_fail_table(counts, 7)
    assert np.isnan(table[:, :, 6:]).all() and not np.isnan(table[:, :, :6]).any()


def osca_counts() -> tuple[SuccessCounts, SuccessCounts]:
    data = json.loads(OSCA.read_text())
    names = tuple(s["name"] for s in data["settings"])
    runs = np.array([s["runs"] for s in data["settings"]])

    def split(part: str, ids: list[str]) -> SuccessCounts:
        correct = np.array([data[part][str(j)] for j in range(len(names))]).T
        return SuccessCounts(tuple(ids), names, np.broadcast_to(runs, correct.shape), correct)

    return split("train", data["training_instances"]), split("test", data["testing_instances"])


@pytest.mark.skipif(not OSCA.exists(), reason=f"OSCA data not found at {OSCA}")
@pytest.mark.parametrize("estimator", ["plugin", "unbiased"])
def test_osca_mix_reproduces_the_reference(estimator: str) -> None:
    train, test = osca_counts()
    reference = {8: (57.1, 60.6), 32: (69.0, 75.6), 86: (76.0, 81.7)}  # best single, mix (OSCA's protocol)
    for k, (single, mix) in reference.items():
        assert 100 * mix_pass_at_k(test, BestSingleAllocator().fit(train, k)) == pytest.approx(single, abs=0.05)
        assert 100 * mix_pass_at_k(test, HillClimbAllocator(estimator=estimator).fit(train, k)) == pytest.approx(mix, abs=0.2)
