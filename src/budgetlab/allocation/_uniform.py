"""Uniform: the k samples split evenly over the configurations.

When k is not a multiple of the number of configurations, the spare samples go to the
configurations that score best alone on the training split (one each), so the result is
deterministic and as sensible as an even split can be.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budgetlab.allocation._base import Allocation, SuccessCounts
from budgetlab.allocation._single import _check_k, single_scores

__all__ = ["UniformAllocator"]


@dataclass(frozen=True)
class UniformAllocator:
    estimator: str = "unbiased"
    name: str = "uniform"

    def fit(self, counts: SuccessCounts, k: int) -> Allocation:
        _check_k(k)
        n_configs = len(counts.configs)
        base, spare = divmod(k, n_configs)
        vector = np.full(n_configs, base, dtype=np.int64)
        if spare:
            order = np.argsort(-single_scores(counts, 1, self.estimator), kind="stable")
            vector[order[:spare]] += 1
        return Allocation(counts.configs, tuple(int(v) for v in vector))
