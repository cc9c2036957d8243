"""Metric variance: rate first the items on which the cheap metric tells systems apart most
(Zouhar et al., "How to Select Datapoints for Efficient Human Evaluation of NLG Models")."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from budgetlab.evaluation.subset._data import ItemSet
from budgetlab.evaluation.subset._random import by_utility

__all__ = ["MetricVariance"]


@dataclass(frozen=True)
class MetricVariance:
    """Utility of an item: the variance of the metric over the systems' outputs for it.
    ``metric="auto"`` combines every automatic metric of the set (standardized)."""

    metric: str = "auto"
    name: str = "variance"

    def utilities(self, data: ItemSet) -> np.ndarray:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanvar(data.metric(self.metric), axis=1)

    def order(self, data: ItemSet, k: int, rng: np.random.Generator) -> np.ndarray:
        return by_utility(self.utilities(data), rng, data.presence())
