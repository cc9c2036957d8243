"""Control variates: unbiasedness and interval coverage by simulation, the variance reduction
that the correlation promises, and the budget split."""

from __future__ import annotations

import numpy as np
import pytest

from budgetlab.errors import InputError
from budgetlab.evaluation import control_variate_mean, optimal_split, plain_mean


def population(n_items: int = 2000, rho: float = 0.8, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Costly scores and a cheap score correlated with them at about ``rho`` (skewed, not normal)."""
    rng = np.random.default_rng(seed)
    cheap = rng.gamma(2.0, 1.0, n_items)
    costly = rho * (cheap - cheap.mean()) / cheap.std() + np.sqrt(1 - rho**2) * rng.normal(size=n_items) + 3.0
    return costly, cheap


def _draws(costly: np.ndarray, cheap: np.ndarray, n: int, reps: int, seed: int, m: int | None = None):
    rng = np.random.default_rng(seed)
    N = len(costly)
    for _ in range(reps):
        scored = rng.permutation(N)[: m or N]
        labelled = scored[:n]
        y = np.full(N, np.nan)
        y[labelled] = costly[labelled]
        c = np.full(N, np.nan)
        c[scored] = cheap[scored]
        yield y, c


@pytest.mark.parametrize("n", [10, 40])
def test_unbiased_and_covers_at_the_nominal_rate(n: int) -> None:
    costly, cheap = population()
    truth = costly.mean()
    estimates, covered, plain_estimates, plain_covered = [], 0, [], 0
    reps = 2000
    for y, c in _draws(costly, cheap, n, reps, seed=n):
        est = control_variate_mean(y, c)
        estimates.append(est.mean)
        covered += est.lo <= truth <= est.hi
        plain = plain_mean(y)
        plain_estimates.append(plain.mean)
        plain_covered += plain.lo <= truth <= plain.hi
    estimates = np.array(estimates)
    # Unbiased: the mean of the estimates is within 4 Monte-Carlo standard errors of the truth.
    assert abs(estimates.mean() - truth) < 4 * estimates.std() / np.sqrt(reps)
    assert 0.925 <= covered / reps <= 0.97
    assert 0.925 <= plain_covered / reps <= 0.97
    # Variance falls by about rho^2 = 0.64.
    assert estimates.var() < 0.55 * np.var(plain_estimates)


def test_two_phase_cheap_scores_on_part_of_the_items() -> None:
    costly, cheap = population(seed=1)
    truth = costly.mean()
    covered, widths = 0, []
    reps = 1500
    for y, c in _draws(costly, cheap, 30, reps, seed=7, m=300):
        est = control_variate_mean(y, c)
        assert est.labels == 30 and est.cheap == 300
        covered += est.lo <= truth <= est.hi
        widths.append(est.width)
    assert 0.925 <= covered / reps <= 0.97


def test_several_controls() -> None:
    costly, cheap = population(seed=2)
    rng = np.random.default_rng(0)
    noise = rng.normal(size=len(cheap))
    y = np.full(len(costly), np.nan)
    y[:50] = costly[:50]
    est = control_variate_mean(y, np.column_stack([cheap, noise]))
    assert len(est.beta) == 2 and est.rho is None
    assert abs(est.beta[1]) < abs(est.beta[0])


def test_uncorrelated_cheap_score_costs_little() -> None:
    rng = np.random.default_rng(3)
    costly, cheap = rng.normal(size=2000), rng.normal(size=2000)
    cv, plain = [], []
    for y, c in _draws(costly, cheap, 40, 500, seed=3):
        cv.append(control_variate_mean(y, c).width)
        plain.append(plain_mean(y).width)
    assert np.mean(cv) < 1.05 * np.mean(plain)


def test_input_checks() -> None:
    y = np.array([1.0, 2.0, np.nan, 4.0, 5.0])
    with pytest.raises(InputError, match="cheap score too"):
        control_variate_mean(y, np.array([1.0, np.nan, 3.0, 4.0, 5.0]))
    with pytest.raises(InputError, match="at least 4"):
        control_variate_mean(np.array([1.0, 2.0, np.nan]), np.array([1.0, 2.0, 3.0]))
    with pytest.raises(InputError, match="at least 2"):
        plain_mean(np.array([1.0, np.nan]))


def test_optimal_split() -> None:
    # No correlation: every unit of budget goes to costly labels.
    split = optimal_split(1000, 10, 0.1, 0.0)
    assert (split.costly, split.cheap, split.variance_ratio) == (100, 0, 1.0)
    # Strong correlation and cheap scores 100x cheaper: many more cheap scores, large saving.
    split = optimal_split(1000, 10, 0.1, 0.9)
    ratio = np.sqrt(0.81 / 0.19 * 100)
    assert split.cheap / split.costly == pytest.approx(ratio, rel=0.05)
    assert split.costly * 10 + split.cheap * 0.1 <= 1000
    assert split.saving > 0.6
    # Capped by the items available: the leftover buys costly labels.
    capped = optimal_split(1000, 10, 0.1, 0.9, n_items=200)
    assert capped.cheap == 200 and capped.costly == 98
    with pytest.raises(InputError):
        optimal_split(1000, 10, 0.1, 1.5)
