"""Do the rated items look like a random sample of the set?

The control-variate intervals assume the rated items were drawn at random. Informative subset
methods choose otherwise, on purpose: items whose metric separates the systems (a large spread
of the metric across systems on the item), or whose metric is middling. Such a choice leaves a
trace in the metric, which every item has, so it can be tested for: compare the rated items'
mean of an item statistic with the means of random draws of as many items from the set
(a permutation test). Three statistics of the cheap metric cover what the methods choose by:
each item's level (its mean over the systems), its spread (their standard deviation), and how
middling it is (the distance of its level from the set's median level: IRT's most informative
items are neither easy nor hard, so their mean level can be the set's while they are not).
Items without the metric are left out, of the random draws as of the rated ones.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

__all__ = ["RatedSampleCheck", "check_rated_sample"]

#: Per statistic; with three statistics a random sample is flagged about 1% of the time.
FLAG_P = 0.01 / 3


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
    item. None when there is nothing to compare (no item, or every item, with the metric rated;
    or fewer than two items with the metric)."""
    rated = np.asarray(rated, bool)
    if not rated.any() or rated.all():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an item with no metric is NaN, left out
        level, spread = np.nanmean(metric, axis=1), np.nanstd(metric, axis=1)
    ok = ~np.isnan(level)
    rated, n = rated[ok], int(ok.sum())
    k = int(rated.sum())
    if n < 2 or k == 0 or k == n:
        return None
    level, spread = level[ok], spread[ok]
    stats = {"level": level, "spread": spread, "middling": np.abs(level - np.median(level))}
    rng = np.random.default_rng(seed)
    picks = np.argsort(rng.random((draws, n)), axis=1)[:, :k]
    best: RatedSampleCheck | None = None
    for name, values in stats.items():
        observed = float(values[rated].mean())
        random = values[picks].mean(axis=1)
        centre = float(random.mean())
        p = float((1 + np.sum(np.abs(random - centre) >= abs(observed - centre) - 1e-12)) / (1 + len(random)))
        low, high = np.quantile(random, [0.005, 0.995])
        check = RatedSampleCheck(name, observed, centre, float(low), float(high), min(1.0, p))
        if best is None or check.p_value < best.p_value:
            best = check
    return best
