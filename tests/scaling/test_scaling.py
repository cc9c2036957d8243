"""Scaling-law fits and coverage extrapolation on data with a known truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy import special

from budgetlab.analysis import (
    EXTRAPOLATION_METHODS,
    SuccessPrior,
    extrapolate_coverage,
    fit_power_law,
    fit_success_prior,
    pass_at_k_many,
)
from budgetlab.analysis._success_priors import SuccessCounts

OSCA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "osca" / "bcb_results.json"


def _beta_counts(n_problems: int, n: int, a: float, b: float, zero: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = rng.beta(a, b, size=n_problems)
    p[rng.random(n_problems) < zero] = 0.0
    return np.full(n_problems, n), rng.binomial(n, p), p


def test_beta_fit_recovers_pass_at_k_far_beyond_the_samples() -> None:
    ns, cs, _ = _beta_counts(4000, 20, 0.6, 2.5)
    prior = fit_success_prior(ns, cs, "beta")
    (_, a, b), = prior.betas
    assert a == pytest.approx(0.6, rel=0.15) and b == pytest.approx(2.5, rel=0.2)
    truth = 1 - np.exp(special.betaln(0.6, 2.5 + 200) - special.betaln(0.6, 2.5))
    assert prior.pass_at_k(200) == pytest.approx(truth, abs=0.02)


def test_zero_beta_finds_the_point_mass_at_zero() -> None:
    ns, cs, _ = _beta_counts(4000, 30, 1.0, 3.0, zero=0.3, seed=1)
    prior = fit_success_prior(ns, cs, "zero-beta")
    assert prior.zero == pytest.approx(0.3, abs=0.04)
    # The plain Beta has to spread that mass over small p, so it overestimates large k.
    beta = fit_success_prior(ns, cs, "beta")
    assert beta.pass_at_k(1000) > prior.pass_at_k(1000) + 0.05


def test_posterior_pass_at_k_knows_solved_problems_stay_solved() -> None:
    prior = SuccessPrior(betas=((1.0, 0.5, 5.0),))
    counts = SuccessCounts.from_counts([10, 10], [1, 0])
    # A problem with one success in 10 has pass@k -> 1; the mean over both is at least 1/2.
    assert prior.posterior_pass_at_k(counts, 10_000) > 0.5
    assert prior.posterior_pass_at_k(counts, 10_000) > prior.posterior_pass_at_k(counts, 10)


def test_power_law_reproduces_the_measured_curve() -> None:
    ns, cs, _ = _beta_counts(2000, 16, 0.4, 1.5, seed=2)
    a, b = fit_power_law(ns, cs)
    assert a < 0 and b < 0
    for k in (1, 4, 16):
        measured = pass_at_k_many(ns, cs, k).mean()
        assert np.exp(a * k**b) == pytest.approx(measured, abs=0.03)


@pytest.mark.parametrize("method", [m for m in EXTRAPOLATION_METHODS if m != "tail-transfer"])
def test_every_method_gives_an_increasing_curve_with_intervals(method: str) -> None:
    ns, cs, _p = _beta_counts(300, 10, 0.5, 2.0, zero=0.1, seed=3)
    ext = extrapolate_coverage(ns, cs, [10, 40, 160], method=method, n_boot=15)
    values = [ext.estimates[k].value for k in (10, 40, 160)]
    assert values == sorted(values)
    for e in ext.estimates.values():
        assert 0.0 <= e.lo <= e.value <= e.hi <= 1.0
    assert ext.observed_k == 10 and ext.to_dict()["method"] == method


def test_bracket_spans_the_beta_and_zero_beta_fits() -> None:
    ns, cs, _ = _beta_counts(300, 10, 0.5, 2.0, zero=0.2, seed=4)
    bracket = extrapolate_coverage(ns, cs, [300], method="bracket", n_boot=20).estimates[300]
    beta = extrapolate_coverage(ns, cs, [300], method="beta", n_boot=0).estimates[300]
    zero = extrapolate_coverage(ns, cs, [300], method="zero-beta", n_boot=0).estimates[300]
    assert bracket.value == pytest.approx((beta.value + zero.value) / 2)
    assert bracket.lo <= min(beta.value, zero.value) and bracket.hi >= max(beta.value, zero.value)


def test_tail_transfer_takes_the_low_tail_from_the_reference() -> None:
    rng = np.random.default_rng(5)
    # Target: 40% hard problems, 10 samples each. Are they unsolvable or merely rare?
    target_p = np.where(rng.random(400) < 0.4, 0.004, rng.beta(2, 2, 400))
    ns, cs = np.full(400, 10), rng.binomial(10, target_p)
    truly_zero = np.where(rng.random(300) < 0.4, 0.0, rng.beta(2, 2, 300))
    rare = np.where(rng.random(300) < 0.4, 0.004, rng.beta(2, 2, 300))
    ref_zero = (np.full(300, 2000), rng.binomial(2000, truly_zero))
    ref_rare = (np.full(300, 2000), rng.binomial(2000, rare))
    k = 1000
    truth = float(np.mean(1 - (1 - target_p) ** k))
    with_rare = extrapolate_coverage(ns, cs, [k], method="tail-transfer", reference=ref_rare, n_boot=0).estimates[k]
    with_zero = extrapolate_coverage(ns, cs, [k], method="tail-transfer", reference=ref_zero, n_boot=0).estimates[k]
    assert with_rare.value == pytest.approx(truth, abs=0.05)
    assert with_zero.value < with_rare.value - 0.2


def test_success_counts_resample_keeps_the_number_of_problems() -> None:
    counts = SuccessCounts.from_counts([10, 10, 10, 5], [0, 0, 3, 5])
    assert counts.problems == 4 and len(counts.n) == 3
    again = counts.resample(np.random.default_rng(0))
    assert again.problems == 4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"method": "magic"}, "unknown extrapolation method"),
        ({"method": "tail-transfer"}, "needs reference"),
        ({"ks": [0]}, "ks >= 1"),
        ({"alpha": 1.5}, "alpha"),
    ],
)
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    args = {"ks": [10], **kwargs}
    with pytest.raises(ValueError, match=match):
        extrapolate_coverage([5, 5], [1, 2], args.pop("ks"), **args)


def test_bad_counts_name_the_problem() -> None:
    with pytest.raises(ValueError, match="problem 1"):
        fit_success_prior([5, 5], [1, 7])


@pytest.mark.skipif(not OSCA.exists(), reason=f"needs the shared OSCA data at {OSCA}")
def test_osca_tail_transfer_predicts_pass_at_300_from_ten_samples() -> None:
    data = json.loads(OSCA.read_text())
    test, train = np.array(data["test"]["3"]), np.array(data["train"]["3"])  # Qwen, T=1.1
    truth = float((test > 0).mean())  # pass@300 from all 300 samples
    rng = np.random.default_rng(0)
    ten = rng.hypergeometric(test, 300 - test, 10)
    ext = extrapolate_coverage(np.full(test.size, 10), ten, [300], method="tail-transfer",
                               reference=(np.full(train.size, 300), train), n_boot=20)
    est = ext.estimates[300]
    assert abs(est.value - truth) < 0.06
    assert est.lo <= truth <= est.hi


@pytest.mark.parametrize("method", ["bracket", "beta", "zero-beta"])
def test_problems_all_alike_get_an_interval_with_width(method: str) -> None:
    # No problem solved (or one problem only): every bootstrap resample is the same data.
    none = extrapolate_coverage([10] * 20, [0] * 20, [5, 40], method=method, n_boot=30)
    for est in none.estimates.values():
        assert est.lo <= est.value <= est.hi and est.hi > 0.05  # 20 problems cannot rule out 5%+
    single = extrapolate_coverage([10], [3], [40], method=method, n_boot=30).estimates[40]
    assert single.hi - single.lo > 0.3
