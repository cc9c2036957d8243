"""The systems' ranking from the items of a subset that people rated.

Two ways to read it:

* the plain mean of each system's ratings on the rated items (the way subset2evaluate and
  rounds 1-4 of ``bench/subset.py`` score a subset);
* the estimate ``budgetlab estimate`` reports: each system's mean over *all* items, from the
  ratings plus the cheap scores every item has (control variates pooled over the systems,
  :func:`budgetlab.evaluation.pooled_control_variate_means`). The cheap scores were already
  paid for to choose the subset, so reading them again costs nothing; where they track the
  ratings, they correct for the luck of which items were rated.
"""

from __future__ import annotations

import warnings

import numpy as np

from budgetlab.errors import InvalidArgument

__all__ = ["rank_agreement", "rated_means"]


def rated_means(
    target: np.ndarray, rows: np.ndarray, controls: np.ndarray | None = None, *, fallback: bool = True
) -> np.ndarray:
    """Each system's mean ``target`` score (items x systems) as read from the rated ``rows``.

    Without ``controls``: the plain mean over ``rows`` (NaN for a system with no score there).
    With ``controls`` (items x systems x cheap scores, on every item): the pooled
    control-variate estimate of the system's mean over all its items. Where that cannot be
    made (a system with fewer than 3 ratings, or ratings alike within every system) the plain
    means are returned with ``fallback``, and the estimator's error is raised without it."""
    rows = np.asarray(rows, int)
    rated = np.full(target.shape, np.nan)
    rated[rows] = target[rows]
    with warnings.catch_warnings():  # a system with no rating on the rows is NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        plain = np.nanmean(rated, axis=0)
    if controls is None or controls.shape[-1] == 0:
        return plain
    from budgetlab.evaluation._pooled_control_variates import pooled_control_variate_means

    try:
        return np.array([e.mean for e in pooled_control_variate_means(rated, controls)])
    except InvalidArgument:
        if not fallback:
            raise
        return plain


def rank_agreement(target: np.ndarray, rows: np.ndarray, controls: np.ndarray | None = None) -> tuple[float, float]:
    """Spearman and Kendall (tau-b) correlation between the systems' means as read from the
    items ``rows`` (:func:`rated_means`, with ``controls`` if given) and their mean ``target``
    score on all items. Systems with no score on ``rows`` are left out; a ranking that is
    constant (all ties) counts as 0 (no information)."""
    import scipy.stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        full = np.nanmean(target, axis=0)
    sub = rated_means(target, rows, controls)
    ok = ~np.isnan(sub) & ~np.isnan(full)
    if ok.sum() < 2:
        return 0.0, 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = scipy.stats.spearmanr(sub[ok], full[ok]).statistic
        tau = scipy.stats.kendalltau(sub[ok], full[ok]).statistic
    return (0.0 if np.isnan(rho) else float(rho)), (0.0 if np.isnan(tau) else float(tau))
