"""Control variates pooled over systems: every system's mean costly score at once, from costly
labels on the same few items and cheap scores on all of them.

When several systems are rated on the same items, the relation between the cheap scores and
the costly label is largely shared: a judge score that tracks human quality does so for every
system. So one regression is fitted over all systems' labelled items (each system's scores
centred on its own labelled mean, which keeps a separate level per system), and each system's
mean is then estimated with the regression estimator of :mod:`._control_variates`,

    mean_j = ybar_j + beta . (xbar_j(all items) - xbar_j(labelled items)).

Pooling gives the slope ``S`` times the data, which pays for many controls: every automatic
metric of the system's output, and (``item_means``) each metric averaged over all systems on
the item, which sees how hard the item is (entered as the item mean and each system's
deviation from it, so that the ridge shrinks the two effects separately). The slope is a ridge
regression whose penalty is chosen by cross-validation over folds of items (an item's rows for
all systems leave together, since they share the item's difficulty). With as many controls as
labelled items or more, no slope at all (plain averaging) is among the choices too, and is kept
unless the best penalty beats it by more than one standard error of the paired difference in
held-out error: with 10 rated items and 120 controls (HANNA at 10%) the least error among the
penalties was mostly luck, and the systems' ranking from the estimates fell to a Spearman of
0.47 where plain averaging gave 0.73 (0.72 now; summeval_gpt's saving is unchanged). Honest intervals come
from the same held-out residuals: each system's residual variance is the mean square of its
errors on items the fit did not see, so a regression that overfits (more controls than labels)
makes the interval wider, not falsely narrow.

``pool_variance`` further shrinks the systems' residual variances towards their common level
(empirical Bayes, Smyth 2004, "Linear models and empirical Bayes methods for assessing
differential expression"), which buys degrees of freedom for the t quantile when systems'
residual variances are alike and almost none when they are not. With ``variance_trend`` (the
default) "alike" means alike after a linear trend of the log variance in the system's
estimated mean (limma-trend: Law et al. 2014, "voom"): human ratings on a bounded scale vary
less for systems near its top (on SummEval the log residual variance and the system's mean
correlate at -0.93), so systems' variances differ a lot but predictably, and the trend lets
them still be pooled.

Labels piled at the ends of their range (pass/fail labels, mostly passes) understate their own
variance in a small sample, which can miss the rare value entirely; each system's variance is
floored for it (:func:`._control_variates.unseen_floor`, over the labels' scale: ``label_range``
when given, else the range of every system's labels), and labels that do not vary within any
system are refused rather than given a zero-width interval, unless their scale is given.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np

from budgetlab.errors import InvalidArgument
from budgetlab.evaluation._control_variates import MeanEstimate, _label_range, _t, unseen_floor

__all__ = [
    "RIDGE_GRID",
    "pooled_control_variate_means",
    "pooled_held_out_correlation",
    "pooled_plain_means",
    "pooled_regression_r2",
]

#: Ridge penalties tried, relative to the mean eigenvalue of the standardized design.
RIDGE_GRID = (0.0, 0.003, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)
#: Cross-validation folds (of items) at most; fewer labelled items give one fold each.
MAX_FOLDS = 25
#: Fewer systems than this say too little about how their variances spread to pool them.
MIN_SYSTEMS_TO_POOL = 4
#: A trend of the variances in the systems' level needs this many systems (4 left for the spread).
MIN_SYSTEMS_FOR_TREND = 6


def pooled_control_variate_means(
    costly: np.ndarray,
    cheap: np.ndarray,
    *,
    item_means: bool = True,
    ridge: float | Sequence[float] = RIDGE_GRID,
    pool_variance: bool = True,
    variance_trend: bool = True,
    confidence: float = 0.95,
    label_range: tuple[float, float] | None = None,
) -> list[MeanEstimate]:
    """Each system's mean costly score over its items, with a confidence interval.

    ``costly``: items x systems, the costly label or NaN (not labelled, or the system has no
    output on the item). ``cheap``: items x systems x controls (or items x systems for one),
    the cheap scores, NaN where the system has no output. A system's items are those with all
    its cheap scores; every labelled item needs them. ``ridge``: one penalty, or penalties to
    choose from by cross-validated error (relative to the mean eigenvalue of the standardized
    design; 0 is least squares). ``pool_variance``: shrink the systems' residual variances
    towards their common level (4 systems or more), following a trend in their estimated
    means with ``variance_trend`` (6 systems or more; see the module docstring).
    ``label_range``: the scale the costly labels are on ((0, 1) for pass rates), for the
    variance floor of labels piled at its ends; by default the range of all the labels, and
    labels alike within every system are refused (they cannot size an interval by themselves).
    """
    y, x, labelled, grid = _prepare(costly, cheap, item_means, ridge)
    population = ~np.isnan(x).any(axis=2)
    n_sys = y.shape[1]
    n_lab = labelled.sum(axis=0)
    short = [j for j in range(n_sys) if n_lab[j] < 3]
    if short:
        raise InvalidArgument(
            f"system {short[0]} has {n_lab[short[0]]} costly labels; each system needs at least 3 for an interval"
        )
    scale = _scale(y, labelled, label_range)
    fit = _pooled_ridge(y, x, labelled, grid)
    means = np.empty(n_sys)
    for j in range(n_sys):
        lab, pop = labelled[:, j], population[:, j]
        shift = x[pop, j].mean(axis=0) - x[lab, j].mean(axis=0)
        means[j] = y[lab, j].mean() + shift @ fit.beta
    resid_var = np.array([_residual_variance(fit.held_out[labelled[:, j], j]) for j in range(n_sys)])
    resid_var, df = _settle_variances(resid_var, y, labelled, means, pool_variance, variance_trend, scale)
    estimates = []
    for j in range(n_sys):
        n, big_n = int(n_lab[j]), int(population[:, j].sum())
        # The held-out residuals already hold the error of estimating the slope (an item's
        # residual comes from a fit without it), so no separate term for it is added.
        se = math.sqrt(max(0.0, 1 - n / big_n) * resid_var[j] / n)
        half = _t(confidence, max(1.0, float(df[j]))) * se
        mean, lo, hi = _on_scale(float(means[j]), half, label_range and scale)
        estimates.append(MeanEstimate(mean, se, lo, hi, n, big_n, tuple(map(float, fit.beta))))
    return estimates


def _on_scale(mean: float, half: float, scale: tuple[float, float] | None) -> tuple[float, float, float]:
    """The mean and its interval, kept on the labels' given scale: a mean of labels on 1-5 is
    at most 5, however far the regression's shift or the t interval reaches past it (a system
    rated 5 everywhere got 5.006 in [4.89, 5.12]). Clipping keeps the coverage (the true mean
    lies on the scale) and only brings the estimate closer to it."""
    lo, hi = mean - half, mean + half
    if scale is None:
        return mean, lo, hi
    low, high = scale
    return min(max(mean, low), high), min(max(lo, low), high), min(max(hi, low), high)


def _held_out_fit(
    costly: np.ndarray, cheap: np.ndarray, item_means: bool, ridge: float | Sequence[float]
) -> tuple[_Fit, np.ndarray, np.ndarray]:
    """The cross-fitted pooled regression, which items are labelled, and the costly score less
    each system's labelled mean (what the held-out predictions are judged against)."""
    y, x, labelled, grid = _prepare(costly, cheap, item_means, ridge)
    fit = _pooled_ridge(y, x, labelled, grid)
    return fit, labelled, y - np.nanmean(np.where(labelled, y, np.nan), axis=0)


def pooled_regression_r2(
    costly: np.ndarray,
    cheap: np.ndarray,
    *,
    item_means: bool = True,
    ridge: float | Sequence[float] = RIDGE_GRID,
) -> float:
    """The share of the costly score's variance within systems that the pooled regression of
    :func:`pooled_control_variate_means` predicts on items it did not see (cross-validated over
    the labelled items). About the share of costly labels control variates can save; its
    square root is the ``rho`` to give :func:`optimal_split`."""
    fit, labelled, centred = _held_out_fit(costly, cheap, item_means, ridge)
    total = float(np.nansum(np.where(labelled & ~np.isnan(fit.held_out), centred, np.nan) ** 2))
    return 1.0 - float(np.nansum(fit.held_out**2)) / total if total > 0 else 0.0


def pooled_held_out_correlation(
    costly: np.ndarray,
    cheap: np.ndarray,
    *,
    item_means: bool = True,
    ridge: float | Sequence[float] = RIDGE_GRID,
) -> float:
    """The correlation, within systems, between the costly score and the pooled regression's
    prediction of it on items the fit did not see (cross-validated over the labelled items, as
    :func:`pooled_regression_r2`): how well the cheap scores, combined, track the costly one.
    The prediction's part from the cheap scores is what counts (the prediction less the
    system's mean in the fit): the fold's system mean alone is anti-correlated with a held-out
    item's score, which would make useless controls look worse than none."""
    fit, labelled, centred = _held_out_fit(costly, cheap, item_means, ridge)
    ok = labelled & ~np.isnan(fit.held_out_slope)
    truth, predicted = centred[ok], fit.held_out_slope[ok]
    if len(truth) < 3 or truth.std() == 0 or predicted.std() == 0:
        return 0.0
    return float(np.corrcoef(truth, predicted)[0, 1])


def pooled_plain_means(
    costly: np.ndarray,
    population: np.ndarray | None = None,
    *,
    pool_variance: bool = True,
    variance_trend: bool = True,
    confidence: float = 0.95,
    label_range: tuple[float, float] | None = None,
) -> list[MeanEstimate]:
    """Each system's plain mean of its costly labels, with the systems' variances shrunk
    towards their common level as in :func:`pooled_control_variate_means` (no cheap scores):
    what pooling the variances alone buys. ``population``: items x systems, the items each
    system's mean is over (default: every item). ``label_range``: as there."""
    y = np.asarray(costly, float)
    if y.ndim != 2:
        raise InvalidArgument(f"costly must be items x systems, got shape {y.shape}")
    _refuse_infinite(y, "costly")
    pop = np.ones(y.shape, bool) if population is None else np.asarray(population, bool)
    if pop.shape != y.shape:
        raise InvalidArgument(f"population must be items x systems like costly, got {pop.shape} and {y.shape}")
    labelled = ~np.isnan(y)
    n_lab = labelled.sum(axis=0)
    if (n_lab < 2).any():
        raise InvalidArgument(f"each system needs at least 2 costly labels for an interval, got {n_lab.min()}")
    scale = _scale(y, labelled, label_range)
    means = np.array([y[labelled[:, j], j].mean() for j in range(y.shape[1])])
    var = np.array([np.var(y[labelled[:, j], j], ddof=1) for j in range(y.shape[1])])
    var, df = _settle_variances(var, y, labelled, means, pool_variance, variance_trend, scale)
    out = []
    for j in range(y.shape[1]):
        n, big_n = int(n_lab[j]), int(pop[:, j].sum())
        se = math.sqrt(max(0.0, 1 - n / big_n) * var[j] / n)
        half = _t(confidence, float(df[j])) * se
        mean, lo, hi = _on_scale(float(means[j]), half, label_range and scale)
        out.append(MeanEstimate(mean, se, lo, hi, n, 0))
    return out


def _prepare(
    costly: np.ndarray,
    cheap: np.ndarray,
    item_means: bool,
    ridge: float | Sequence[float],
) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[float, ...]]:
    """Checked arrays: costly (items x systems), controls (items x systems x p; with
    ``item_means``, x 2p: each control's deviation from its item mean, then the item mean),
    which items are labelled, and the ridge penalties."""
    y = np.asarray(costly, float)
    x = np.asarray(cheap, float)
    if x.ndim == 2:
        x = x[:, :, None]
    if y.ndim != 2 or x.ndim != 3 or x.shape[:2] != y.shape:
        raise InvalidArgument(
            f"costly must be items x systems and cheap items x systems x controls of the same items and systems, "
            f"got shapes {y.shape} and {np.shape(cheap)}"
        )
    _refuse_infinite(y, "costly")
    _refuse_infinite(x, "cheap")
    grid = (float(ridge),) if isinstance(ridge, (int, float)) else tuple(map(float, ridge))
    if not grid or any(not (r >= 0) for r in grid):
        raise InvalidArgument(f"ridge penalties must be non-negative numbers, got ridge={ridge!r}")
    population = ~np.isnan(x).any(axis=2)  # items x systems
    labelled = ~np.isnan(y)
    if (labelled & ~population).any():
        raise InvalidArgument("every item with a costly label needs the system's cheap scores too (two-phase sampling)")
    if item_means:
        # An item no system has cheap scores on has no item mean (NaN, and no row in any fit).
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            pooled = np.nanmean(np.where(population[:, :, None], x, np.nan), axis=1, keepdims=True)
        # Within the item (how a system's output differs from the others on it) and between
        # items (how hard the item is) as separate controls: the ridge then shrinks the two
        # effects each by its own evidence, where shrinking a control and its item mean
        # together would tie them (a Mundlak decomposition).
        x = np.concatenate([x - pooled, np.broadcast_to(pooled, x.shape)], axis=2)
    return y, x, labelled, grid


def _refuse_infinite(values: np.ndarray, what: str) -> None:
    """NaN marks a missing score; an infinite one would make every mean NaN."""
    bad = np.argwhere(np.isinf(values))
    if bad.size:
        index = tuple(int(i) for i in bad[0])
        raise InvalidArgument(
            f"{what} scores must be finite (NaN where missing), but item {index[0]} of system {index[1]} has "
            f"{values[index]}"
        )


def _scale(y: np.ndarray, labelled: np.ndarray, given: tuple[float, float] | None) -> tuple[float, float]:
    """The labels' scale: ``given`` (checked against the labels), else their range, refusing
    labels alike within every system (pass/fail labels near the ceiling, in a small sample):
    they show no spread to size an interval by, and no slope to carry the cheap scores over to
    the unlabelled items, so any interval from them would be a zero-width guess."""
    if given is not None:
        return _label_range(y[labelled], given)
    if all(np.ptp(y[labelled[:, j], j]) == 0 for j in range(y.shape[1])):
        n = int(labelled.any(axis=1).sum())
        raise InvalidArgument(
            f"the costly labels on the {n} labelled items do not vary within any system (e.g. all "
            f"{float(y[labelled][0]):g}), so they cannot size an interval; label more items, preferably ones whose "
            "cheap scores differ (budgetlab subset --method variance), or give the scale the labels are on "
            "(label_range=(0, 1); budgetlab estimate --scale 0,1)"
        )
    values = y[labelled]
    return float(values.min()), float(values.max())


def _settle_variances(
    var: np.ndarray,
    y: np.ndarray,
    labelled: np.ndarray,
    means: np.ndarray,
    pool: bool,
    trend: bool,
    scale: tuple[float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """The systems' variances and degrees of freedom behind their intervals: floored for labels
    piled at the ends of their range, then (with ``pool``) shrunk towards the systems' common
    level, or, with too few systems for that, 0s replaced by the others' pooled variance."""
    low, high = scale
    var = np.maximum(var, [unseen_floor(y[labelled[:, j], j], low, high) for j in range(y.shape[1])])
    df = labelled.sum(axis=0) - 1.0
    if pool and y.shape[1] >= MIN_SYSTEMS_TO_POOL:
        return _moderate(var, df, means if trend else None)
    return _borrow_for_unseen(var, df) if pool else (var, df)


class _Fit:
    def __init__(self, beta: np.ndarray, held_out: np.ndarray, held_out_slope: np.ndarray) -> None:
        # held_out: cross-validated residuals; held_out_slope: the part of each held-out
        # prediction that the cheap scores make (the prediction less the system's mean).
        self.beta, self.held_out, self.held_out_slope = beta, held_out, held_out_slope


def _residual_variance(r: np.ndarray) -> float:
    """The residual variance from held-out residuals ``r``: each also carries the error of
    the system mean its fold was fitted with (about ``1 / (n - 1)`` of the variance, as for
    leave-one-out), which the mean square is corrected for."""
    r = r[~np.isnan(r)]
    n = len(r)
    return float(r @ r) * (n - 1) / n**2 if n > 1 else float(r @ r)


def _pooled_ridge(y: np.ndarray, x: np.ndarray, labelled: np.ndarray, grid: tuple[float, ...]) -> _Fit:
    """Ridge slope of (y - system mean) on (x - system mean) over all labelled (item, system)
    pairs, with the penalty of least cross-validated error, and the cross-validated residuals
    (items x systems, NaN where not labelled). Folds are of whole items, and each fold's fit
    recomputes the systems' means without it, so a residual is an honest error on an unseen
    item: refitting (not the hat-matrix shortcut) keeps it honest when there are more controls
    than labels, where least squares interpolates."""
    rows = np.flatnonzero(labelled.any(axis=1))
    if len(grid) > 1 and x.shape[2] >= len(rows):
        # As many controls as labelled items or more: least squares interpolates, and the least
        # cross-validated error among the penalties is partly luck; plain averaging (no slope)
        # joins the choices. With fewer controls the penalties alone are chosen from: there the
        # choice is steady, and plain averaging's intervals cover less on labels piled at 0 or 1.
        grid = (*grid, math.inf)
    folds = np.arange(len(rows)) % min(MAX_FOLDS, len(rows))
    held_out = {penalty: np.full(y.shape, np.nan) for penalty in grid}
    slope = {penalty: np.full(y.shape, np.nan) for penalty in grid}
    for fold in np.unique(folds):
        train = np.zeros(len(y), bool)
        train[rows[folds != fold]] = True
        test = rows[folds == fold]
        fits = _ridge_path(y, x, labelled & train[:, None], grid)
        seen = (labelled & train[:, None]).any(axis=0)  # a system with no label left cannot be predicted
        for penalty, (beta, y_mean, x_mean) in fits.items():
            part = (x[test] - x_mean) @ beta
            held_out[penalty][test] = np.where(labelled[test] & seen, y[test] - y_mean - part, np.nan)
            slope[penalty][test] = np.where(labelled[test] & seen, part, np.nan)
    errors = {penalty: float(np.nansum(r**2)) for penalty, r in held_out.items()}
    best = min(grid, key=lambda penalty: errors[penalty])
    if math.inf in grid and len(rows) > 1:
        # The slope must beat plain averaging by more than one standard error of the difference
        # in held-out error (paired over items), or plain averaging is kept.
        gain = np.nansum(held_out[math.inf][rows] ** 2, axis=1) - np.nansum(held_out[best][rows] ** 2, axis=1)
        if gain.sum() <= float(np.std(gain, ddof=1)) * math.sqrt(len(rows)):
            best = math.inf
    beta, _, _ = _ridge_path(y, x, labelled, (best,))[best]
    return _Fit(beta, held_out[best], slope[best])


def _ridge_path(
    y: np.ndarray, x: np.ndarray, labelled: np.ndarray, grid: tuple[float, ...]
) -> dict[float, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per penalty: the pooled ridge slope over the ``labelled`` pairs, and the systems' means
    of the costly and the cheap scores over them (systems x 1 and systems x p)."""
    n_items, n_sys, p = x.shape
    counts = np.maximum(labelled.sum(axis=0), 1)
    y_mean = np.where(labelled, y, 0).sum(axis=0) / counts
    x_mean = np.where(labelled[:, :, None], x, 0).sum(axis=0) / counts[:, None]
    z = np.where(labelled[:, :, None], x - x_mean, 0.0).reshape(n_items * n_sys, p)
    target = np.where(labelled, y - y_mean, 0.0).reshape(-1)
    # Controls on one scale, so that one penalty treats them alike.
    scale = np.sqrt((z**2).sum(axis=0))
    scale[~(scale > 0)] = 1.0
    z = z / scale
    eigval, eigvec = np.linalg.eigh(z.T @ z)
    eigval = np.clip(eigval, 0.0, None)
    level = max(float(eigval.mean()), 1e-12) if p else 1.0
    projected = eigvec.T @ (z.T @ target)
    out = {}
    for penalty in grid:
        # A tiny floor keeps least squares defined when controls are collinear.
        coef = np.zeros(p) if math.isinf(penalty) else eigvec @ (projected / (eigval + (penalty + 1e-9) * level))
        out[penalty] = (coef / scale, y_mean, x_mean)
    return out


def _moderate(
    s2: np.ndarray, df: np.ndarray, level: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Empirical-Bayes shrinkage of variances towards their common level (Smyth 2004): the
    prior's degrees of freedom ``d0`` and scale come from the spread of ``log s2`` beyond what
    sampling alone explains; returns the shrunken variances and their degrees of freedom.

    ``level`` (one number per system, e.g. its estimated mean): the prior's scale then follows
    a linear trend of ``log s2`` in it (limma-trend, Law et al. 2014), and only the spread
    around the trend counts against pooling. Scores on a bounded scale need it: systems near
    the ceiling vary less, so one common level would widen their intervals and narrow the
    others'."""
    import scipy.special

    s2 = np.asarray(s2, float)
    d = np.asarray(df, float)
    # A variance of exactly 0 (every label of a system alike, as pass/fail labels often are
    # in a small sample) says nothing about the spread on a log scale and would swamp the
    # prior: the prior is learnt from the other systems, and such a system takes it whole.
    seen = _nonzero(s2)
    trend = level is not None and seen.sum() >= MIN_SYSTEMS_FOR_TREND and np.ptp(np.asarray(level)[seen]) > 0
    used = 2 if trend else 1  # parameters of the prior's centre
    if seen.sum() < used + 2:
        return _borrow_for_unseen(s2, d, seen)
    e = np.log(s2[seen]) - scipy.special.digamma(d[seen] / 2) + np.log(d[seen] / 2)
    if trend:
        design = np.column_stack([np.ones(len(s2)), np.asarray(level, float)])
        coef, *_ = np.linalg.lstsq(design[seen], e, rcond=None)
        centre = design @ coef
    else:
        centre = np.full(len(s2), e.mean())
    spread = float(np.sum((e - centre[seen]) ** 2) / (len(e) - used) - np.mean(scipy.special.polygamma(1, d[seen] / 2)))
    if spread <= 0:  # the variances differ no more than sampling explains: one common variance
        d0 = math.inf
    else:
        d0 = 2 * _inverse_trigamma(spread)
    # The prior is learnt from the other systems: it cannot weigh more than their own data.
    d0 = min(d0, float(d[seen].sum() - d[seen].max()))
    prior = np.exp(centre + scipy.special.digamma(d0 / 2) - np.log(d0 / 2))
    return np.where(seen, (d0 * prior + d * s2) / (d0 + d), prior), np.where(seen, d0 + d, d0)


def _borrow_for_unseen(s2: np.ndarray, df: np.ndarray, seen: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Systems whose variance is 0 take the other systems' pooled variance (and its degrees of
    freedom): too few systems to learn a prior from, but a zero-width interval is never honest
    while another system shows how much labels vary."""
    s2, df = np.asarray(s2, float), np.asarray(df, float)
    seen = _nonzero(s2) if seen is None else seen
    if not seen.any() or seen.all():
        return s2, df
    pooled = float(df[seen] @ s2[seen] / df[seen].sum())
    return np.where(seen, s2, pooled), np.where(seen, df, df[seen].sum())


def _nonzero(s2: np.ndarray) -> np.ndarray:
    """Variances that are not 0 up to rounding (relative to the largest)."""
    return s2 > 1e-10 * float(np.max(s2)) if np.max(s2) > 0 else np.zeros(len(s2), bool)


def _inverse_trigamma(value: float) -> float:
    """x with trigamma(x) = value (Newton's method on 1/x, as Smyth 2004 suggests)."""
    import scipy.special

    x = 0.5 + 1 / value
    for _ in range(50):
        tri = float(scipy.special.polygamma(1, x))
        step = tri * (1 - tri / value) / float(scipy.special.polygamma(2, x))
        x += step
        if x <= 0:
            x = 1e-8
        if abs(step) < 1e-8 * x:
            break
    return x
