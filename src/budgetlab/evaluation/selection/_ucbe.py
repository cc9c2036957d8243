"""UCB-E (Audibert and Bubeck 2010), as used for evaluation by Zhou et al. 2024, "On Speeding Up
Language Model Evaluation": evaluate the method whose mean plus ``sqrt(a / n)`` is largest."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from budgetlab.evaluation._base import Observations
from budgetlab.evaluation.selection._arguments import check_count, check_positive
from budgetlab.evaluation.selection._uniform import _argmax

__all__ = ["UCBE", "ucb_pulls", "value_span"]


@dataclass(frozen=True)
class UCBE:
    """``a`` is the exploration parameter (the package ``banditeval`` defaults to 1; theory
    takes ``a`` proportional to budget / hardness, which is unknown). Methods never evaluated
    come first. The example of each evaluation is the method's next one in the shared order
    (``banditeval`` draws a random unevaluated example instead; see the module docs of
    :mod:`budgetlab.evaluation.selection` for why shared is better)."""

    a: float = 1.0
    batch: int = 1
    name: str = "ucbe"

    def __post_init__(self) -> None:
        check_positive(self.a, "a", "UCB-E's exploration parameter", "ucbe:a=1")
        check_count(self.batch, "batch", "evaluations per decision", "ucbe:batch=4")

    def propose(self, obs: Observations, k: int) -> list[tuple[int, int]]:
        return ucb_pulls(obs, self.estimates(obs), self.a, k)

    def estimates(self, obs: Observations) -> np.ndarray:
        return obs.arm_means()

    def recommend(self, obs: Observations) -> int:
        return _argmax(self.estimates(obs))


def ucb_pulls(obs: Observations, estimates: np.ndarray, a: float, k: int) -> list[tuple[int, int]]:
    """``k`` UCB-E decisions from fixed ``estimates``: evaluations in flight (and those chosen
    earlier in the batch) count in ``n``, so a batch spreads instead of piling on one method."""
    out: list[tuple[int, int]] = []
    mean = np.where(np.isnan(estimates), 0.0, estimates)
    # The bonus is on the scale of the scores: sqrt(a / n) assumes scores in [0, 1], so scores
    # on 1-10 (a judge's) made UCB-E all but greedy. The spread of the values seen so far
    # (1 for pass/fail, unchanged) sets the scale.
    span = value_span(obs)
    for _ in range(k):
        open_ = obs.open_arms()
        if not open_.any():
            break
        n = obs.arm_issued()
        fresh = open_ & (n <= 0)
        if fresh.any():
            arm = int(np.argmax(fresh))
        else:
            index = mean + span * np.sqrt(a / np.maximum(n, 1))
            arm = int(np.argmax(np.where(open_, index, -np.inf)))
        example = int(obs.next_examples(arm, 1)[0])
        obs.issue(arm, example)
        out.append((arm, example))
    return out


def value_span(obs: Observations) -> float:
    """The range of the cell values settled so far, 1 while it is none (fewer than two values,
    or all alike): the scale UCB-E's bonus and the low-rank fit work on."""
    cells = obs.cell_means()
    if np.isnan(cells).all():
        return 1.0
    span = float(np.nanmax(cells) - np.nanmin(cells))
    return span if span > 0 else 1.0
