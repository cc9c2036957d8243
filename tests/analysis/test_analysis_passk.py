"""pass@k against exact enumeration and exact rational references."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from budgetlab.analysis import pass_at_k, pass_at_k_many


def brute_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Share of k-subsets of n samples (the first c correct) holding a correct sample."""
    subsets = list(itertools.combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


def exact(n: int, c: int, k: int) -> Fraction:
    return 1 - Fraction(math.comb(n - c, k), math.comb(n, k))


@pytest.mark.parametrize("n", range(1, 11))
def test_matches_enumeration_for_all_small_cases(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            want = brute_pass_at_k(n, c, k)
            got = pass_at_k(n, c, k)
            assert got == pytest.approx(float(want), rel=1e-14, abs=1e-15), (n, c, k)


def test_edge_values() -> None:
    assert pass_at_k(5, 0, 3) == 0.0
    assert pass_at_k(5, 3, 3) == 1.0  # n - c < k: every draw holds a correct sample
    assert pass_at_k(5, 5, 5) == 1.0
    assert pass_at_k(1, 1, 1) == 1.0
    assert pass_at_k(7, 3, 1) == pytest.approx(3 / 7, rel=1e-15)


@pytest.mark.parametrize(
    ("n", "c", "k"),
    [
        (10_000, 1, 1),
        (10_000, 1, 16),
        (10_000, 3, 5000),
        (10_000, 17, 100),
        (10_000, 5000, 2),
        (10_000, 5000, 5000),
        (10_000, 9000, 999),
        (10_000, 9999, 1),
        (10_000, 2, 9990),
        (10**6, 1, 1),
        (10**6, 3, 100),
        (10**6, 999_000, 10),
        (10**6, 123, 7),
    ],
)
def test_large_n_matches_exact_rational(n: int, c: int, k: int) -> None:
    got = pass_at_k(n, c, k)
    assert math.isfinite(got) and 0.0 <= got <= 1.0
    assert got == pytest.approx(float(exact(n, c, k)), rel=1e-13, abs=1e-300)


def test_huge_counts_stay_finite() -> None:
    # Too big for an exact reference to be cheap; the closed form for k=1 still holds.
    assert pass_at_k(10**6, 400_000, 1) == pytest.approx(0.4, rel=1e-14)
    v = pass_at_k(10**6, 500_000, 200_000)
    assert v == 1.0 or (math.isfinite(v) and v <= 1.0)
    assert 0.0 < pass_at_k(10**6, 1, 1) < 1e-5


def test_monotone_in_k_and_c_at_n_10000() -> None:
    n = 10_000
    ks = [1, 2, 5, 10, 50, 100, 500, 1000, 5000, 9000, 10_000]
    cs = [0, 1, 2, 5, 20, 100, 1000, 5000, 9999, 10_000]
    grid = np.array([[pass_at_k(n, c, k) for k in ks] for c in cs])
    assert np.all(np.isfinite(grid)) and grid.min() >= 0.0 and grid.max() <= 1.0
    assert np.all(np.diff(grid, axis=1) >= -1e-15)
    assert np.all(np.diff(grid, axis=0) >= -1e-15)


def test_many_matches_scalar() -> None:
    rng = np.random.default_rng(3)
    ns = rng.integers(8, 40, size=500)
    cs = rng.integers(0, 9, size=500)
    got = pass_at_k_many(ns, cs, 8)
    assert got.shape == (500,)
    assert np.array_equal(got, [pass_at_k(int(n), int(c), 8) for n, c in zip(ns, cs)])
    assert pass_at_k_many([], [], 3).shape == (0,)
    assert np.array_equal(pass_at_k_many([4.0, 4.0], [1.0, 0.0], 2), [0.5, 0.0])


@pytest.mark.parametrize(
    ("n", "c", "k", "pattern"),
    [
        (8, 2, 16, r"k <= n samples, got k=16, n=8; draw more samples or ask for a smaller k"),
        (8, 2, 0, r"k >= 1, got k=0"),
        (8, 9, 2, r"c <= n, got c=9, n=8"),
        (-1, 0, 1, r"non-negative counts, got n=-1, c=0"),
        (8, -2, 1, r"non-negative counts, got n=8, c=-2"),
    ],
)
def test_errors_name_the_values(n: int, c: int, k: int, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        pass_at_k(n, c, k)


def test_many_errors_name_the_problem() -> None:
    with pytest.raises(ValueError, match=r"problem 2: pass@k needs k <= n samples, got k=5, n=4"):
        pass_at_k_many([10, 10, 4], [1, 2, 3], 5)
    with pytest.raises(ValueError, match="same length"):
        pass_at_k_many([10, 10], [1], 5)
    with pytest.raises(ValueError, match="whole-number"):
        pass_at_k_many([10.5], [1], 5)


def test_a_bad_argument_is_both_a_value_error_and_a_budgetlab_error() -> None:
    from budgetlab.errors import BudgetlabError, InvalidArgument

    with pytest.raises(InvalidArgument) as caught:
        pass_at_k(5, 2, 10)
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, BudgetlabError)
    assert "k <= n" in str(caught.value) and "\n" not in str(caught.value)
