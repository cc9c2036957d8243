"""Metric consistency: choose items on which the cheap metric ranks the systems as it does on
the whole set.

Two forms. ``mode="item"`` is the per-item form of Zouhar et al. (each item's Kendall tau
between its metric ranking of the systems and the full-set one; the most consistent items
first). ``mode="set"`` (the default) asks the question of the subset as a whole: among
``candidates`` random subsets of the size asked for, it keeps the one whose metric means per
system (each item centred, so that only differences between systems count) are closest to the
full set's. The human scores of that subset then inherit the balance as far as they correlate
with the metric, item by item, while the subset stays a random draw otherwise, so it never
leans on a metric that ranks the systems wrongly (balancing a covariate is unbiased whatever
its relation to the target: rerandomization, Morgan and Rubin 2012).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from budgetlab.errors import InvalidArgument
from budgetlab.evaluation.subset._data import ItemSet
from budgetlab.evaluation.subset._random import by_utility

__all__ = ["MetricConsistency"]


@dataclass(frozen=True)
class MetricConsistency:
    metric: str = "auto"
    mode: str = "set"
    candidates: int = 20
    name: str = "consistency"

    def __post_init__(self) -> None:
        if self.mode not in ("set", "item"):
            raise InvalidArgument(f"consistency mode must be 'set' or 'item', got mode={self.mode!r}")
        if isinstance(self.candidates, bool) or not isinstance(self.candidates, int) or self.candidates < 1:
            raise InvalidArgument(f"candidates must be an integer >= 1, got candidates={self.candidates!r}")

    def utilities(self, data: ItemSet) -> np.ndarray:
        """Per item: Kendall tau-c between its metric ranking and the full-set one (0 if undefined)."""
        import scipy.stats

        scores = data.metric(self.metric)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            full = np.nanmean(scores, axis=0)
            out = np.zeros(len(scores))
            for i, row in enumerate(scores):
                ok = ~np.isnan(row) & ~np.isnan(full)
                if ok.sum() >= 2:
                    tau = scipy.stats.kendalltau(row[ok], full[ok], variant="c").statistic
                    out[i] = 0.0 if np.isnan(tau) else tau
        return out

    def order(self, data: ItemSet, k: int, rng: np.random.Generator) -> np.ndarray:
        if self.mode == "item":
            return by_utility(self.utilities(data), rng, data.presence())
        n = len(data)
        k = max(1, min(k, n))
        scores = data.metric(self.metric)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            centred = np.nan_to_num(scores - np.nanmean(scores, axis=1, keepdims=True))
        present = ~np.isnan(scores)
        target = centred.sum(axis=0) / np.maximum(present.sum(axis=0), 1)
        best, best_gap = None, np.inf
        for _ in range(self.candidates):
            pick = rng.choice(n, size=k, replace=False)
            means = centred[pick].sum(axis=0) / np.maximum(present[pick].sum(axis=0), 1)
            gap = float(np.sum((means - target) ** 2))
            if gap < best_gap:
                best, best_gap = pick, gap
        assert best is not None
        rest = np.setdiff1d(np.arange(n), best)
        return np.concatenate([best, rng.permutation(rest)])
