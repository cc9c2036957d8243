"""Metric agreement: metric variance that counts only the separation pointing the right way.

An item's metric variance over the systems is the mean squared gap between pairs of systems.
Plain variance rewards every gap, including those of an item that orders two systems against
the rest of the set: such an item pulls the subset's ranking away from the full one. Here each
pair's squared gap counts positive when the item orders the pair as the other items do on
average (leave this item out), negative when it orders it the other way: the item's *signed
variance*. Items with a positive signed variance come first, most first; the rest follow by
plain variance, since the full ranking is taken over them too and an item that separates
systems, whichever way, still says more about it than one that ties them all.

Chosen on the recorded-LLM validation sets of ``bench/subset_validation.py`` (pass/fail and
graded cheap scores), never on the NLG sets of ``bench/subset.py``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from budgetlab.evaluation.subset._data import ItemSet
from budgetlab.evaluation.subset._random import by_utility
from budgetlab.evaluation.subset._variance import MetricVariance

__all__ = ["MetricAgreement", "signed_variance"]

#: Items x system pairs held at once: bounds memory on sets with many systems.
_CHUNK_CELLS = 2_000_000


def signed_variance(scores: np.ndarray) -> np.ndarray:
    """Per item (rows of ``scores``, items x systems, NaN where absent): the mean over pairs of
    systems of the squared metric gap, signed by whether the item orders the pair as the mean
    of the other items does (0 where no pair is scored on both, or the others tie the pair)."""
    scores = np.asarray(scores, float)
    present = ~np.isnan(scores)
    filled = np.nan_to_num(scores)
    total, count = filled.sum(axis=0), present.sum(axis=0)
    first, second = np.triu_indices(scores.shape[1], 1)
    out = np.zeros(len(scores))
    step = max(1, _CHUNK_CELLS // max(1, len(first)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for lo in range(0, len(scores), step):
            rows = slice(lo, lo + step)
            others = (total - filled[rows]) / (count - present[rows])  # leave-one-out mean per system
            gap = scores[rows][:, first] - scores[rows][:, second]
            direction = np.sign(others[:, first] - others[:, second])
            signed = np.abs(gap) * gap * direction
            scored = ~np.isnan(signed)
            out[rows] = np.where(scored.any(axis=1), np.nansum(signed, axis=1) / np.maximum(scored.sum(axis=1), 1), 0.0)
    return out


@dataclass(frozen=True)
class MetricAgreement:
    """Items with a positive signed variance first (see the module docstring), then the rest by
    plain metric variance. ``metric="auto"`` combines every automatic metric (standardized)."""

    metric: str = "auto"
    name: str = "agreement"

    def utilities(self, data: ItemSet) -> np.ndarray:
        signed = signed_variance(data.metric(self.metric))
        variance = np.nan_to_num(MetricVariance(self.metric).utilities(data))
        # One scale that puts every agreeing item above every other: past the largest variance.
        return np.where(signed > 0, variance.max() + signed, variance)

    def order(self, data: ItemSet, k: int, rng: np.random.Generator) -> np.ndarray:
        return by_utility(self.utilities(data), rng, data.presence())
