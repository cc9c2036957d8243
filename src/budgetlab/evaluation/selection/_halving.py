"""Successive halving (Karnin, Koren and Somekh 2013): split the budget into ``ceil(log2 K)``
rounds; in each, every surviving method gets an equal share of evaluations, then the worse
half is dropped."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from budgetlab.evaluation._base import Observations
from budgetlab.evaluation.selection._arguments import check_count
from budgetlab.evaluation.selection._uniform import _argmax

__all__ = ["SuccessiveHalving"]


@dataclass(frozen=True)
class SuccessiveHalving:
    """``budget`` is the total number of evaluations to plan for; ``None`` takes the budget of
    the observations (the run's sample limit), or the full matrix when there is none.

    Stateless: the survivors of each round are recomputed from the observations, each method's
    round-``r`` mean taken over its first evaluations in the shared order only, so evaluations
    added in later rounds never change an earlier decision.
    """

    budget: int | None = None
    batch: int = 64
    name: str = "halving"

    def __post_init__(self) -> None:
        if self.budget is not None:
            check_count(self.budget, "budget", "evaluations to plan the rounds for", "halving:budget=500")
        check_count(self.batch, "batch", "evaluations per decision", "halving:batch=64")

    def _plan(self, obs: Observations) -> tuple[list[int], int | None]:
        """The survivors now, and the evaluations per method the current round asks for
        (``None`` once one method is left or every round is done)."""
        survivors = [a for a in range(obs.shape[0]) if obs.arm_capacity[a] > 0]
        total = self.budget or obs.budget or int(obs.capacity.sum())
        rounds = max(1, math.ceil(math.log2(max(len(survivors), 2))))
        target = 0
        for _ in range(rounds):
            if len(survivors) <= 1:
                return survivors, None
            target += max(1, total // (rounds * len(survivors)))
            if any(obs.arm_taken[a] < min(target, obs.arm_capacity[a]) for a in survivors):
                return survivors, target
            if (obs.in_flight()[survivors] > 0).any():
                return survivors, -1  # wait for the round to settle
            cells = obs.cell_means()
            means = np.array([_prefix_mean(obs, cells, a, target) for a in survivors])
            keep = np.argsort(-np.where(np.isnan(means), -np.inf, means), kind="stable")[
                : math.ceil(len(survivors) / 2)
            ]
            survivors = [survivors[i] for i in sorted(keep)]
        return survivors, None

    def propose(self, obs: Observations, k: int) -> list[tuple[int, int]]:
        survivors, target = self._plan(obs)
        out: list[tuple[int, int]] = []
        if target is None or target < 0:
            return out
        while len(out) < k:
            short = [a for a in survivors if obs.arm_taken[a] < min(target, obs.arm_capacity[a])]
            if not short:
                break
            arm = min(short, key=lambda a: (obs.arm_taken[a], a))
            example = int(obs.next_examples(arm, 1)[0])
            obs.issue(arm, example)
            out.append((arm, example))
        return out

    def estimates(self, obs: Observations) -> np.ndarray:
        return obs.arm_means()

    def recommend(self, obs: Observations) -> int:
        survivors, _ = self._plan(obs)
        if len(survivors) == 1:
            return survivors[0]
        means = obs.arm_means()
        masked = np.full_like(means, np.nan)
        masked[survivors] = means[survivors]
        return _argmax(masked)


def _prefix_mean(obs: Observations, cells: np.ndarray, arm: int, n: int) -> float:
    """The mean of ``arm`` over its first ``n`` evaluated examples in the shared order."""
    first = obs.order[obs.taken[arm, obs.order] > 0][:n]
    values = cells[arm, first]
    values = values[~np.isnan(values)]
    return float(values.mean()) if values.size else math.nan
