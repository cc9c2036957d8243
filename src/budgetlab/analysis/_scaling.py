"""Coverage beyond the samples drawn: scaling-law fits of pass@k against k, with intervals.

Two kinds of fit (details and the evidence of which fits better where: docs/forecast.md):

* ``power-law``: the exponentiated power law of "Large Language Monkeys" (Brown et al. 2024),
  coverage(k) = exp(a * k**b) with a, b < 0, fitted by least squares to log(-log coverage)
  against log k over the unbiased pass@k curve of the samples drawn.
* success priors (:mod:`budgetlab.analysis._success_priors`): a distribution of per-problem
  success probability p fitted to the counts by maximum likelihood, then
  pass@k = mean over the problems of 1 - E[(1-p)^k | the problem's counts]:
  ``beta`` (beta-binomial), ``beta-mixture`` (two Betas), ``zero-beta`` (point mass at 0 plus a
  Beta), ``zero-beta-mixture``, ``npmle`` (nonparametric, on a grid) and ``tail-transfer`` (low
  tail shaped by a reference set of problems sampled more).
* ``bracket`` (the default without a reference): the data cannot say whether the problems never
  solved in n samples are unsolvable or merely hard, and ``beta`` (power-law tail down to 0) and
  ``zero-beta`` (no mass between 0 and what n samples see) are the two ends of that. ``bracket``
  reports the middle of the two fits and an interval spanning both fits' bootstrap intervals.

Intervals are percentile bootstraps over problems (each refit warm-starts from the full fit);
for ``tail-transfer`` the reference problems are resampled too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from budgetlab.analysis._curves import Estimate
from budgetlab.analysis._passk import _sorted_ks, pass_at_k_many
from budgetlab.analysis._success_priors import (
    SuccessCounts,
    SuccessPrior,
    fit_npmle,
    fit_parametric,
    fit_tail_transfer,
)
from budgetlab.errors import InvalidArgument

__all__ = [
    "EXTRAPOLATION_METHODS",
    "Extrapolation",
    "extrapolate_coverage",
    "fit_power_law",
    "fit_success_prior",
]

EXTRAPOLATION_METHODS = (
    "bracket",
    "power-law",
    "beta",
    "beta-mixture",
    "zero-beta",
    "zero-beta-mixture",
    "npmle",
    "tail-transfer",
)

_PRIOR_FITS: dict[str, Callable[..., SuccessPrior]] = {
    "beta": lambda counts, start=None: fit_parametric(counts, 1, False, start),
    "beta-mixture": lambda counts, start=None: fit_parametric(counts, 2, False, start),
    "zero-beta": lambda counts, start=None: fit_parametric(counts, 1, True, start),
    "zero-beta-mixture": lambda counts, start=None: fit_parametric(counts, 2, True, start),
    "npmle": lambda counts, start=None: fit_npmle(counts, start=start),
}


def fit_success_prior(
    ns: npt.ArrayLike, cs: npt.ArrayLike, method: str = "zero-beta", *, reference: tuple[npt.ArrayLike, npt.ArrayLike] | None = None
) -> SuccessPrior:
    """Fit a success-probability prior (``beta``, ``beta-mixture``, ``zero-beta``,
    ``zero-beta-mixture``, ``npmle``, or ``tail-transfer`` with ``reference=(ns, cs)``)."""
    counts = SuccessCounts.from_counts(ns, cs)
    if method == "tail-transfer":
        if reference is None:
            raise InvalidArgument("method tail-transfer needs reference=(ns, cs): counts of problems sampled many times")
        return fit_tail_transfer(counts, SuccessCounts.from_counts(*reference))
    if method not in _PRIOR_FITS:
        raise InvalidArgument(f"unknown success prior {method!r}; choose from: {', '.join(_PRIOR_FITS)}, tail-transfer")
    return _PRIOR_FITS[method](counts)


def fit_power_law(ns: npt.ArrayLike, cs: npt.ArrayLike) -> tuple[float, float]:
    """(a, b) of coverage(k) = exp(a * k**b), fitted over k = 1 .. min(ns)."""
    n_arr = np.asarray(ns, dtype=np.int64)
    c_arr = np.asarray(cs, dtype=np.int64)
    ks = np.arange(1, int(n_arr.min()) + 1)
    cov = np.array([pass_at_k_many(n_arr, c_arr, int(k)).mean() for k in ks])
    usable = (cov > 0) & (cov < 1)
    if usable.sum() < 2:
        raise InvalidArgument(
            "the power law needs coverage strictly between 0 and 1 at two or more k; "
            f"got coverage {np.round(cov, 3).tolist()} over k = 1..{ks[-1]}"
        )
    slope, intercept = np.polyfit(np.log(ks[usable]), np.log(-np.log(cov[usable])), 1)
    return -float(np.exp(intercept)), float(slope)


def _power_law_curve(params: tuple[float, float], ks: list[int]) -> list[float]:
    a, b = params
    return [float(np.exp(a * k**b)) for k in ks]


@dataclass(frozen=True)
class Extrapolation:
    """pass@k predicted by one method for each requested k, with ``1 - alpha`` intervals."""

    method: str
    observed_k: int  # the fewest samples any problem has: beyond it the curve is extrapolated
    estimates: dict[int, Estimate]
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "observed_k": self.observed_k,
            "pass_at_k": {str(k): e.value for k, e in self.estimates.items()},
            "ci": {str(k): [e.lo, e.hi] for k, e in self.estimates.items()},
            "params": self.params,
        }


def _curves_for(
    method: str,
    counts: SuccessCounts,
    ns: npt.NDArray[np.int64],
    cs: npt.NDArray[np.int64],
    ks: list[int],
    reference: SuccessCounts | None,
    start: Any = None,
) -> tuple[list[float], Any]:
    if method == "power-law":
        params = fit_power_law(ns, cs)
        return _power_law_curve(params, ks), params
    if method == "tail-transfer":
        assert reference is not None
        # Always from a uniform start: EM moves slowly along flat directions, so a warm start
        # would keep every bootstrap replicate near the full-data fit and the interval too narrow.
        ref_prior = fit_npmle(reference, iters=3000)
        prior = fit_tail_transfer(counts, reference, reference_prior=ref_prior)
        return [prior.posterior_pass_at_k(counts, k) for k in ks], ref_prior
    prior = _PRIOR_FITS[method](counts, start=start)
    return [prior.posterior_pass_at_k(counts, k) for k in ks], prior


def _expand(counts: SuccessCounts) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    reps = counts.weight.astype(np.int64)
    return np.repeat(counts.n, reps), np.repeat(counts.c, reps)


def _single(
    method: str,
    counts: SuccessCounts,
    ks: list[int],
    reference: SuccessCounts | None,
    n_boot: int,
    alpha: float,
    seed: int,
) -> tuple[list[float], npt.NDArray[np.float64], Any]:
    ns, cs = _expand(counts)
    point, fitted = _curves_for(method, counts, ns, cs, ks, reference)
    rng = np.random.default_rng(seed)
    boots = np.empty((n_boot, len(ks)))
    for b in range(n_boot):
        sample = counts.resample(rng)
        ref = reference.resample(rng) if reference is not None else None
        start = None if method == "power-law" else fitted
        try:
            boots[b], _ = _curves_for(method, sample, *_expand(sample), ks, ref, start=start)
        except ValueError:  # a resample with coverage 0 or 1 everywhere: no power law
            boots[b] = np.nan
    return point, boots, fitted


def extrapolate_coverage(
    ns: npt.ArrayLike,
    cs: npt.ArrayLike,
    ks: Iterable[int],
    *,
    method: str = "bracket",
    reference: tuple[npt.ArrayLike, npt.ArrayLike] | None = None,
    n_boot: int = 200,
    alpha: float = 0.1,
    seed: int = 0,
) -> Extrapolation:
    """pass@k at each k in ``ks`` (any k, also far beyond the samples drawn) from the success
    counts of the problems (``ns[i]`` samples, ``cs[i]`` correct), with bootstrap intervals.

    ``method`` is one of :data:`EXTRAPOLATION_METHODS`; ``tail-transfer`` needs ``reference``,
    the counts of other problems of the same kind sampled many more times.
    """
    ks = _sorted_ks(ks, "extrapolation")
    if not ks or ks[0] < 1:
        raise InvalidArgument(f"extrapolation needs ks >= 1, got {ks}")
    if method not in EXTRAPOLATION_METHODS:
        raise InvalidArgument(f"unknown extrapolation method {method!r}; choose from: {', '.join(EXTRAPOLATION_METHODS)}")
    if not 0.0 < alpha < 1.0 or n_boot < 0:
        raise InvalidArgument(f"extrapolation needs 0 < alpha < 1 and n_boot >= 0 (0: no interval), got {alpha=}, {n_boot=}")
    if method == "tail-transfer" and reference is None:
        raise InvalidArgument("method tail-transfer needs reference=(ns, cs): counts of problems sampled many times")
    counts = SuccessCounts.from_counts(ns, cs)
    ref = SuccessCounts.from_counts(*reference) if reference is not None and method == "tail-transfer" else None
    observed = int(counts.n.min())

    parts = ("beta", "zero-beta") if method == "bracket" else (method,)
    points, lows, highs, params = [], [], [], {}
    for i, part in enumerate(parts):
        with _one_blas_thread():
            point, boots, fitted = _single(part, counts, ks, ref, n_boot, alpha, seed + i)
        if n_boot and not np.isnan(boots).all():
            lo, hi = np.nanquantile(boots, [alpha / 2, 1 - alpha / 2], axis=0)
        else:
            lo = hi = np.array(point)
        # The interval always holds the point itself (a skewed bootstrap can miss it).
        points.append(np.array(point))
        lows.append(np.minimum(lo, point))
        highs.append(np.maximum(hi, point))
        params[part] = fitted.describe() if isinstance(fitted, SuccessPrior) else _describe(fitted)
    value = np.mean(points, axis=0)
    lo, hi = np.min(lows, axis=0), np.max(highs, axis=0)
    # Every problem alike (none solved, all solved, or a single problem): every bootstrap resample
    # is the same data and the interval has no width, claiming a certainty that a few problems
    # cannot give. The Wilson interval of a proportion over the problems is the floor then.
    alike = n_boot > 0 and len(set(zip(counts.n.tolist(), counts.c.tolist()))) == 1
    estimates = {}
    for j, k in enumerate(ks):
        low, high = float(lo[j]), float(hi[j])
        if alike:
            w_lo, w_hi = wilson_interval(float(value[j]), counts.problems, alpha)
            low, high = min(low, w_lo), max(high, w_hi)
        estimates[k] = Estimate(value=float(value[j]), lo=low, hi=high, k=k, n_problems=counts.problems)
    return Extrapolation(method, observed, estimates, params if len(parts) > 1 else params[method])


def wilson_interval(p: float, n: int, alpha: float) -> tuple[float, float]:
    """The Wilson score interval (level ``1 - alpha``) of a proportion ``p`` over ``n`` units:
    never of zero width, even at ``p`` = 0 or 1."""
    from scipy import stats

    z = float(stats.norm.ppf(1 - alpha / 2))
    p = min(max(p, 0.0), 1.0)
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * float(np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))) / (1 + z * z / n)
    return max(centre - half, 0.0), min(centre + half, 1.0)


def _one_blas_thread() -> Any:
    """Thousands of tiny fits: extra BLAS threads only spin against each other (10x slower on a
    busy machine). threadpoolctl is optional; without it nothing changes."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        import contextlib

        return contextlib.nullcontext()
    return threadpool_limits(1)


def _describe(fitted: Any) -> dict[str, float]:
    if isinstance(fitted, tuple):
        return {"a": fitted[0], "b": fitted[1]}
    return {}
