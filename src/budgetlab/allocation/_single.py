"""The best single configuration: all k samples to the one that scores highest on the training split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budgetlab.allocation._base import Allocation, SuccessCounts
from budgetlab.allocation._expected import log_fail_table

__all__ = ["BestSingleAllocator", "single_scores"]


def single_scores(counts: SuccessCounts, k: int, estimator: str = "unbiased") -> np.ndarray:
    """Expected pass@k of each configuration alone (-inf where a pair has fewer than k samples)."""
    log_fail = log_fail_table(counts, k, estimator)[:, :, k]
    scores = -np.expm1(log_fail).mean(axis=0)
    return np.where(np.isnan(scores), -np.inf, scores)


@dataclass(frozen=True)
class BestSingleAllocator:
    estimator: str = "unbiased"
    name: str = "best-single"

    def fit(self, counts: SuccessCounts, k: int) -> Allocation:
        _check_k(k)
        best = int(np.argmax(single_scores(counts, k, self.estimator)))  # ties: the first configuration
        return Allocation(counts.configs, tuple(k if j == best else 0 for j in range(len(counts.configs))))


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"an allocation needs k >= 1 samples per problem, got k={k!r}")
