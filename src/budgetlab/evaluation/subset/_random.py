"""Random items: the baseline every other method must beat."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budgetlab.evaluation.subset._data import ItemSet

__all__ = ["RandomSubset", "by_utility", "stratified"]

#: A stratum smaller than this share of the items is pooled with the other small ones.
MIN_STRATUM_SHARE = 0.05


@dataclass(frozen=True)
class RandomSubset:
    name: str = "random"

    def order(self, data: ItemSet, k: int, rng: np.random.Generator) -> np.ndarray:
        return rng.permutation(len(data))


def by_utility(
    utilities: np.ndarray,
    rng: np.random.Generator | None = None,
    strata: np.ndarray | None = None,
) -> np.ndarray:
    """Items by utility, highest first; ties (and NaN, last) broken at random when ``rng`` is given.

    ``strata`` (a group label per item): the order then gives every group its share of the
    first ``k`` items for every ``k`` (each group's items by utility, interleaved in
    proportion to the groups' sizes), so that a subset keeps the set's mix of groups.
    """
    u = np.where(np.isnan(utilities), -np.inf, utilities)
    order = np.argsort(-u, kind="stable") if rng is None else np.lexsort((rng.random(len(u)), -u))
    if strata is None:
        return order
    return stratified(order, strata)


def stratified(order: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """``order`` rearranged so that each stratum holds its share of every prefix: an item's
    place is its rank within its stratum, as a fraction of the stratum's size (ties keep
    ``order``). Strata under ``MIN_STRATUM_SHARE`` of the items count as one."""
    order = np.asarray(order, int)
    groups = np.asarray(strata)[order]
    labels, inverse, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    # Strata too small to claim a place in a subset of a few percent share one stratum: with
    # many small ones (systems vary item by item) stratifying would only scramble the order.
    small = sizes < MIN_STRATUM_SHARE * len(order)
    groups = np.where(small[inverse.reshape(-1)], -1, inverse.reshape(-1))
    labels, sizes = np.unique(groups, return_counts=True)
    if len(labels) < 2:
        return order
    rank = np.zeros(len(order))
    for label, size in zip(labels, sizes):
        members = groups == label
        rank[members] = (np.arange(size) + 0.5) / size
    return order[np.lexsort((np.arange(len(order)), rank))]
