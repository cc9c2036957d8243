"""Uniform allocation: every method gets the same number of evaluations, round by round."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budgetlab.evaluation._base import Observations
from budgetlab.evaluation.selection._arguments import check_count

__all__ = ["Uniform"]


@dataclass(frozen=True)
class Uniform:
    """The baseline: round-robin over methods on the shared example order, so at any moment
    all methods are within one evaluation of each other, on the same examples."""

    batch: int = 1
    name: str = "uniform"

    def __post_init__(self) -> None:
        check_count(self.batch, "batch", "evaluations per decision", "uniform:batch=4")

    def propose(self, obs: Observations, k: int) -> list[tuple[int, int]]:
        out: list[tuple[int, int]] = []
        for _ in range(k):
            open_ = obs.open_arms()
            if not open_.any():
                break
            arm = int(np.argmin(np.where(open_, obs.arm_taken, np.iinfo(np.int64).max)))
            example = int(obs.next_examples(arm, 1)[0])
            obs.issue(arm, example)
            out.append((arm, example))
        return out

    def estimates(self, obs: Observations) -> np.ndarray:
        return obs.arm_means()

    def recommend(self, obs: Observations) -> int:
        return _argmax(self.estimates(obs))


def _argmax(values: np.ndarray) -> int:
    return int(np.argmax(np.where(np.isnan(values), -np.inf, values)))
