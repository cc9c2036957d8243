"""Do the rated items look like a random sample of the set?

The control-variate intervals assume the rated items were drawn at random. Informative subset
methods choose otherwise, on purpose: items whose metric separates the systems (a large spread
of the metric across systems on the item), or whose metric is middling. Such a choice leaves a
trace in the metric, which every item has, so it can be tested for: compare the rated items'
mean of an item statistic with the means of random draws of as many items from the set
(a permutation test). Two statistics of the cheap metric, each item's level (its mean over the
systems) and its spread (their standard deviation), cover what the methods choose by.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["RatedSampleCheck", "check_rated_sample"]

#: Per statistic; with two statistics a random sample is flagged about 1% of the time.
FLAG_P = 0.005


@dataclass(frozen=True)
class RatedSampleCheck:
    """The statistic whose rated-item mean is least like random draws', that mean, the random
    draws' mean and central 99% range, and the two-sided permutation p-value."""

    statistic: str
    rated: float
    random: float
    random_low: float
    random_high: float
    p_value: float

    @property
    def unlike_random(self) -> bool:
        return self.p_value < FLAG_P


def check_rated_sample(metric: np.ndarray, rated: np.ndarray, *, draws: int = 4000, seed: int = 0) -> RatedSampleCheck | None:
    """``metric``: items x systems (NaN where a system has no score); ``rated``: a boolean per
    item. None when there is nothing to compare (no item, or every item, rated; or no item has
    the metric for two systems)."""
    rated = np.asarray(rated, bool)
    k, n = int(rated.sum()), len(rated)
    if k == 0 or k == n:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an item with no metric is NaN, left out
        stats = {"level": np.nanmean(metric, axis=1), "spread": np.nanstd(metric, axis=1)}
    rng = np.random.default_rng(seed)
    picks = np.argsort(rng.random((draws, n)), axis=1)[:, :k]
    best: RatedSampleCheck | None = None
    for name, values in stats.items():
        ok = ~np.isnan(values)
        if ok.sum() < 2 or not ok[rated].any():
            continue
        observed = float(np.nanmean(values[rated]))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            random = np.nanmean(np.where(ok[picks], values[picks], np.nan), axis=1)
        random = random[~np.isnan(random)]
        centre = float(random.mean())
        p = float((1 + np.sum(np.abs(random - centre) >= abs(observed - centre) - 1e-12)) / (1 + len(random)))
        low, high = np.quantile(random, [0.005, 0.995])
        check = RatedSampleCheck(name, observed, centre, float(low), float(high), min(1.0, p))
        if best is None or check.p_value < best.p_value:
            best = check
    return best
