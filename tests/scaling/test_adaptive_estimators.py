"""The adaptive estimators are unbiased under stopping rules where the naive ones are not.

Each test simulates many problems with known success probabilities (or answer distributions),
draws their samples under a stopping rule, and compares the estimators' means with the exact
truth. Monte-Carlo error is measured from the simulation itself (standard error of the mean of
per-problem estimates), and the verdicts use multiples of it, so the tests are exact in spirit
and stable for the fixed seeds.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from budgetlab.analysis import (
    adaptive_maj_at_k,
    adaptive_pass_at_k,
    maj_at_k,
    pass_at_k,
)

N_PROBLEMS = 20_000


def _stop_once_solved(p: np.ndarray, cap: int, rng: np.random.Generator, prefix: int = 0) -> list[list[bool]]:
    """Draw until the first correct sample (after a fixed prefix), at most ``cap`` samples."""
    streams = rng.random((p.size, cap)) < p[:, None]
    out = []
    for row in streams:
        hits = np.flatnonzero(row[prefix:])
        n = cap if hits.size == 0 else prefix + int(hits[0]) + 1
        out.append([bool(x) for x in row[:n]])
    return out


def _sem(values: list[float]) -> float:
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.std(ddof=1) / math.sqrt(arr.size))


@pytest.mark.parametrize("k", [1, 2, 4])
def test_pass_at_k_under_stop_once_solved_is_unbiased_and_naive_is_not(k: int) -> None:
    rng = np.random.default_rng(7 + k)
    p = rng.beta(0.4, 1.2, size=N_PROBLEMS)
    outcomes = _stop_once_solved(p, cap=8, rng=rng)
    truth = float(np.mean(1 - (1 - p) ** k))

    est = adaptive_pass_at_k(outcomes, k, n_boot=50)
    assert est.undetermined == 0
    assert abs(est.value - truth) < 4 * _sem(list(est.per_problem)) + 1e-12

    # Chen's estimator over whatever was drawn (problems with fewer than k samples left out,
    # as a naive report would): a stopped draw always ends on its one success, which inflates
    # c/n at k=1, and dropping the problems solved before k deflates larger k.
    naive = [pass_at_k(len(o), sum(o), k) for o in outcomes if len(o) >= k]
    assert abs(np.mean(naive) - truth) > 10 * _sem(naive)


def test_prefix_samples_give_the_subset_average_and_stay_unbiased() -> None:
    rng = np.random.default_rng(3)
    p = rng.beta(0.5, 0.8, size=N_PROBLEMS)
    outcomes = _stop_once_solved(p, cap=12, rng=rng, prefix=4)
    truth = float(np.mean(1 - (1 - p) ** 2))
    est = adaptive_pass_at_k(outcomes, 2, prefix=4, n_boot=50)
    # With k <= prefix the estimate of a problem is Chen's formula over its first 4 samples.
    first = outcomes[0][:4]
    assert est.per_problem[0] == pytest.approx(pass_at_k(4, sum(first), 2))
    assert abs(est.value - truth) < 4 * _sem(list(est.per_problem))


def test_problems_stopped_unsolved_before_k_are_undetermined() -> None:
    est = adaptive_pass_at_k([[False, False], [False, True], [True], [False] * 4], 4, n_boot=10)
    assert est.per_problem == (None, 1.0, 1.0, 0.0)
    assert est.undetermined == 1 and est.n_problems == 3
    # Over all four problems, whatever left the first one undetermined: between 2/4 and 3/4.
    assert est.bounds() == (0.5, 0.75) and est.to_dict()["bounds"] == [0.5, 0.75]


# ---- maj@k under an ESC-style rule --------------------------------------------------------------

ANSWERS = ("right", "w1", "w2", "w3")


def _exact_maj(probs: np.ndarray, k: int) -> float:
    """maj@k of one problem whose answers follow ``probs`` over ANSWERS (ties split evenly)."""
    total = 0.0
    for counts in itertools.product(range(k + 1), repeat=len(probs)):
        if sum(counts) != k:
            continue
        ways = math.factorial(k) / math.prod(math.factorial(c) for c in counts)
        prob = ways * math.prod(q**c for q, c in zip(probs, counts))
        top = max(counts)
        winners = [i for i, c in enumerate(counts) if c == top]
        total += prob * (1.0 / len(winners) if 0 in winners else 0.0)
    return total


def _esc(probs: np.ndarray, window: int, cap: int, rng: np.random.Generator) -> list[str]:
    """Draw windows of ``window`` answers; stop when one window agrees or at ``cap``."""
    drawn: list[str] = []
    while len(drawn) < cap:
        block = list(rng.choice(len(ANSWERS), size=window, p=probs))
        drawn.extend(ANSWERS[i] for i in block)
        if len(set(block)) == 1:
            break
    return drawn


# A window of w agreeing answers settles a vote of up to 2w - 1 samples: k=7 is the largest
# that ESC with w=4 leaves determined on every problem (k=3 is inside its fixed prefix). The
# naive subset average over all samples drawn is clearly biased at k=3 (the problems whose
# first window disagreed contribute more, and less typical, samples); at k=7 its bias in this
# scenario is within the Monte-Carlo error, so only the adaptive estimate is checked there.
@pytest.mark.parametrize(("k", "naive_biased"), [(3, True), (7, False)])
def test_maj_at_k_under_early_stopping_is_unbiased(k: int, naive_biased: bool) -> None:
    rng = np.random.default_rng(11 + k)
    n = 6_000
    right = rng.beta(2.0, 1.6, size=n)
    rest = rng.dirichlet([1.0, 0.6, 0.3], size=n) * (1 - right)[:, None]
    probs = np.column_stack([right, rest])
    # Few distinct distributions make the exact truth cheap: round and cache.
    probs = np.round(probs, 2)
    probs = probs / probs.sum(axis=1, keepdims=True)
    cache: dict[tuple[float, ...], float] = {}
    truth_values = []
    problems = []
    for row in probs:
        key = tuple(row)
        if key not in cache:
            cache[key] = _exact_maj(row, k)
        truth_values.append(cache[key])
        answers = _esc(row, window=4, cap=16, rng=rng)
        problems.append((answers, [a == "right" for a in answers]))
    truth = float(np.mean(truth_values))

    est = adaptive_maj_at_k(problems, k, prefix=4, n_boot=50)
    known = [v for v in est.per_problem if v is not None]
    assert est.undetermined == 0
    assert abs(est.value - truth) < 4 * _sem([v - t for v, t in zip(known, truth_values)])

    # The naive report: the exact subset average over all samples drawn.
    # Paired with each problem's truth, so the Monte-Carlo error is that of the difference.
    if naive_biased:
        gaps = [maj_at_k(a, c, k) - t for (a, c), t in zip(problems, truth_values) if len(a) >= k]
        assert abs(np.mean(gaps)) > 5 * _sem(gaps)


def test_maj_settled_before_k_only_when_the_leader_is_out_of_reach() -> None:
    yes = [True] * 3
    # 3 agreeing votes, k=5: 2 more cannot catch up (3 > 0 + 2): settled and correct.
    assert adaptive_maj_at_k([(["a"] * 3, yes)], 5, n_boot=10).per_problem == (1.0,)
    # 3 agreeing votes, k=7: 4 more could overturn them.
    assert adaptive_maj_at_k([(["a"] * 3, yes)], 7, n_boot=10).per_problem == (None,)
    # A wrong leader out of reach is settled as incorrect.
    est = adaptive_maj_at_k([(["b", "b", "b", "a"], [False, False, False, True])], 5, n_boot=10)
    assert est.per_problem == (0.0,)


def test_bad_arguments_raise() -> None:
    with pytest.raises(ValueError, match="k >= 1"):
        adaptive_pass_at_k([[True]], 0)
    with pytest.raises(ValueError, match="prefix"):
        adaptive_pass_at_k([[True]], 1, prefix=-1)
    with pytest.raises(ValueError, match="differ in length"):
        adaptive_maj_at_k([(["a"], [True, False])], 1)
