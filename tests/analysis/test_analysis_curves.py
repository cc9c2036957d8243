"""Coverage curves, bootstrap intervals and the Estimate wrappers."""

from __future__ import annotations

import time

import numpy as np
import pytest

from budgetlab.analysis import (
    Estimate,
    bootstrap_ci,
    coverage_curve,
    default_ks,
    maj_at_k,
    maj_at_k_with_ci,
    pass_at_k_many,
    pass_at_k_with_ci,
)


def test_default_ks() -> None:
    assert default_ks(1) == [1]
    assert default_ks(16) == [1, 2, 4, 8, 16]
    assert default_ks(20) == [1, 2, 4, 8, 16, 20]
    with pytest.raises(ValueError, match="max_n >= 1"):
        default_ks(0)


def test_coverage_curve_reports_only_ks_every_problem_supports() -> None:
    ns, cs = [8, 16, 16], [1, 0, 16]
    curve = coverage_curve(ns, cs, [16, 1, 4, 8, 32])
    assert list(curve) == [1, 4, 8]
    for k, value in curve.items():
        assert value == pytest.approx(pass_at_k_many(ns, cs, k).mean())
    with pytest.raises(ValueError, match="at least one problem"):
        coverage_curve([], [], [1])


def test_bootstrap_contains_mean_and_is_deterministic() -> None:
    values = np.random.default_rng(1).random(300)
    est, lo, hi = bootstrap_ci(values, seed=5)
    assert est == pytest.approx(values.mean())
    assert lo < est < hi
    assert bootstrap_ci(values, seed=5) == (est, lo, hi)
    assert bootstrap_ci(values, seed=6) != (est, lo, hi)
    assert bootstrap_ci([0.25], n_boot=50) == (0.25, 0.25, 0.25)


def test_bootstrap_narrows_with_more_problems() -> None:
    rng = np.random.default_rng(2)
    widths = []
    for size in (30, 300, 3000):
        _, lo, hi = bootstrap_ci(rng.random(size), seed=0)
        widths.append(hi - lo)
    assert widths[0] > widths[1] > widths[2]


def test_bootstrap_is_fast_for_10k_problems() -> None:
    values = np.random.default_rng(0).random(10_000)
    start = time.perf_counter()
    est, lo, hi = bootstrap_ci(values, n_boot=1000)
    assert time.perf_counter() - start < 2.0
    assert lo < est < hi and hi - lo < 0.03


def test_bootstrap_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="finite"):
        bootstrap_ci([0.1, float("nan")])
    with pytest.raises(ValueError, match="alpha"):
        bootstrap_ci([0.1], alpha=1.5)


def test_pass_at_k_with_ci() -> None:
    ns = [10] * 50
    cs = list(range(0, 10)) * 5
    est = pass_at_k_with_ci(ns, cs, 3, seed=1)
    assert isinstance(est, Estimate)
    assert est.value == pytest.approx(pass_at_k_many(ns, cs, 3).mean())
    assert est.lo <= est.value <= est.hi and est.k == 3 and est.n_problems == 50
    assert est.to_dict() == {
        "value": est.value, "lo": est.lo, "hi": est.hi, "k": 3, "n_problems": 50
    }
    with pytest.raises(ValueError, match="problem 0"):
        pass_at_k_with_ci([2], [1], 3)


def test_maj_at_k_with_ci() -> None:
    problems = [
        (["a", "a", "b", None], [True, True, False, False]),
        (["x", "y", "y", "y"], [True, False, False, False]),
        ([None, None, "z", "z"], [False, False, True, True]),
    ]
    est = maj_at_k_with_ci(problems, 2, n_boot=200)
    want = np.mean([maj_at_k(a, c, 2) for a, c in problems])
    assert est.value == pytest.approx(want)
    assert est.lo <= est.value <= est.hi and est.n_problems == 3
    with pytest.raises(ValueError, match=r"problem 1: maj@k needs k <= n"):
        maj_at_k_with_ci([problems[0], (["a"], [True])], 2)
