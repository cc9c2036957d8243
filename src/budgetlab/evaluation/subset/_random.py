"""Random items: the baseline every other method must beat."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budgetlab.evaluation.subset._data import ItemSet

__all__ = ["RandomSubset"]


@dataclass(frozen=True)
class RandomSubset:
    name: str = "random"

    def order(self, data: ItemSet, k: int, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(len(data))


def by_utility(utilities: np.ndarray, rng: np.random.Generator | None = None) -> np.ndarray:
    """Items by utility, highest first; ties (and NaN, last) broken at random when ``rng`` is given."""
    u = np.where(np.isnan(utilities), -np.inf, utilities)
    if rng is None:
        return np.argsort(-u, kind="stable")
    return np.lexsort((rng.random(len(u)), -u))
