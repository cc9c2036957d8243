"""The best single configuration: all k samples to the one that scores highest on the training split."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budgetlab.allocation._base import Allocation, SuccessCounts
from budgetlab.allocation._expected import log_fail_table
from budgetlab.errors import InvalidArgument

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
        _check_feasible(counts, k, self.estimator)
        scores = single_scores(counts, k, self.estimator)
        if not np.isfinite(scores).any():
            raise InvalidArgument(f"best-single: no configuration has k={k} recorded samples on every problem (most: "
                             f"{int(counts.samples.min(axis=0).max())}); use estimator='plugin' or a smaller k")  # fmt: skip
        best = int(np.argmax(scores))  # ties: the first configuration
        return Allocation(counts.configs, tuple(k if j == best else 0 for j in range(len(counts.configs))))


def _check_k(k: int) -> None:
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise InvalidArgument(f"an allocation needs k >= 1 samples per problem, got k={k!r}")


def _check_feasible(counts: SuccessCounts, k: int, estimator: str) -> None:
    """Refuse a fit no allocation of ``k`` can satisfy: no training problems, or (``"unbiased"``)
    fewer recorded samples than ``k`` in all, per problem, over what every problem has of each configuration."""
    if not len(counts.problems):
        raise InvalidArgument("an allocation needs counts of at least one training problem, got none")
    if estimator == "unbiased":
        room = int(counts.samples.min(axis=0).sum())
        if room < k:
            raise InvalidArgument(f"k={k} samples per problem exceed the recorded ones: under the unbiased estimate an allocation "
                             f"can use at most {room} (each configuration's fewest samples on any problem, summed); "
                             f"use estimator='plugin' or k <= {room}")  # fmt: skip
