"""Rank separation: choose the items that make the systems' ranking most certain, so that the
ranking on the subset is the one on all items.

The cheap metric's responses are fitted with the 2PL model of :mod:`._irt`. Rating a set of
items tells the ability ``theta_s`` of each system to within a variance of about
``1 / (1 + I_s)``, with ``I_s`` the Fisher information the items hold about system ``s`` (the
1 is the prior's). Two systems are then put in the wrong order with probability about
``Phi(-|theta_s - theta_t| / sqrt(1/(1 + I_s) + 1/(1 + I_t)))``: small for systems far
apart, large for systems ranked close together. Items are chosen greedily, each time the one
that most lowers the expected number of pairs in the wrong order (the expected Kendall
distance from the full ranking), so information goes where the ranking is in doubt: to the
close systems, not to systems that any subset orders right. Summed Fisher information
(``irt``) instead rewards items that are informative about systems whose order is already
clear.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budgetlab.evaluation.subset._data import ItemSet
from budgetlab.evaluation.subset._irt import IRTInformation, IRTParams
from budgetlab.evaluation.subset._random import stratified

__all__ = ["RankSeparation", "expected_discordant_pairs"]


def expected_discordant_pairs(ability: np.ndarray, information: np.ndarray) -> np.ndarray:
    """Expected pairs of systems in the wrong order given per-system information (last axis:
    systems; leading axes: candidate subsets), under a standard normal prior on ability."""
    import scipy.stats

    theta = np.asarray(ability, float)
    first, second = np.triu_indices(len(theta), 1)
    gap = np.abs(theta[first] - theta[second])
    variance = 1.0 / (1.0 + information)
    spread = np.sqrt(variance[..., first] + variance[..., second])
    return scipy.stats.norm.cdf(-gap / spread).sum(axis=-1)


@dataclass(frozen=True)
class RankSeparation:
    """Greedy items that minimize the expected number of system pairs ranked wrongly (see the
    module docstring); the metric's responses are made as for ``irt`` (``binarize``)."""

    metric: str = "auto"
    binarize: bool | str = "auto"
    name: str = "separation"

    def fit(self, data: ItemSet) -> IRTParams:
        return IRTInformation(metric=self.metric, binarize=self.binarize).fit(data)

    def order(self, data: ItemSet, k: int, rng: np.random.Generator) -> np.ndarray:
        params = self.fit(data)
        p = params.probability()  # systems x items
        item_info = (params.discrimination**2 * p * (1 - p)).T  # items x systems
        n = len(item_info)
        held = np.zeros(item_info.shape[1])
        free = np.ones(n, bool)
        order = np.empty(n, int)
        # Greedy over all items: the order is the same whatever k, so a longer subset extends
        # a shorter one. Ties (items with the same gain) are broken at random.
        for step in range(n):
            candidates = np.flatnonzero(free)
            cost = expected_discordant_pairs(params.ability, held + item_info[candidates])
            best = candidates[np.lexsort((rng.random(len(candidates)), cost))[0]]
            order[step] = best
            free[best] = False
            held += item_info[best]
        return stratified(order, data.presence())
