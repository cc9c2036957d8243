"""Best-arm identification as a run policy: problems are the examples, configurations the
methods, and each sample one evaluation of a (method, example) cell.

The policy is stateless: every decision rebuilds the :class:`Observations` from the run's
samples (a sample's value is its score, else its correctness as 0/1; failed samples and
samples with neither count as spent, without a value), so a resumed run decides exactly as
before. The run's sample budget is the evaluation budget; the policy ends the run when its
algorithm is done or, with ``delta``, once the best method is identified with confidence
``1 - delta``.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from budgetlab.core.types import Sample, SampleState
from budgetlab.core.view import RunView
from budgetlab.errors import InvalidArgument
from budgetlab.evaluation._base import BestArmAlgorithm, Observations, identified
from budgetlab.stores import Proposal

__all__ = ["SelectionPolicy", "observations_from_view", "sample_value"]


def sample_value(sample: Sample) -> float | None:
    """A sample as one evaluation's value: its score, else its correctness as 0/1, else ``None``."""
    if sample.score is not None:
        return float(sample.score)
    if sample.correct is not None:
        return float(sample.correct)
    return None


def observations_from_view(view: RunView, *, seed: int = 0, passes: int = 1, budget: int | None = None) -> Observations:
    """The run's samples as observations of the (configuration x problem) matrix."""
    order = np.random.default_rng(seed).permutation(len(view.problems))
    obs = Observations(
        len(view.configs), len(view.problems), order=order, passes=passes,
        budget=budget if budget is not None else view.budget.samples,
    )  # fmt: skip
    for arm, config in enumerate(view.configs):
        for example, problem in enumerate(view.problems):
            for s in view.samples(problem.id, config.id):
                if s is None:
                    continue
                obs.issue(arm, example)
                if s.state is SampleState.DONE:
                    obs.settle(arm, example, sample_value(s))
                elif s.state is SampleState.FAILED:
                    obs.settle(arm, example, None)
    return obs


@dataclass(frozen=True)
class SelectionPolicy:
    """Drive ``algorithm`` through the run loop. ``seed`` fixes the shared example order;
    ``passes`` is how many samples a (problem, configuration) pair may get; ``budget`` (samples)
    defaults to the run's sample limit; ``delta=None`` disables the early stop."""

    algorithm: BestArmAlgorithm
    delta: float | None = 0.05
    seed: int = 0
    passes: int = 1
    budget: int | None = None
    #: Arguments a run may raise when it resumes: more samples per pair, the ones drawn kept.
    resumable_args: ClassVar[frozenset[str]] = frozenset({"passes"})

    def __post_init__(self) -> None:
        if self.delta is not None and (not isinstance(self.delta, (int, float)) or not 0 < self.delta < 1):
            raise InvalidArgument(f"delta must be in (0, 1) or none, got delta={self.delta!r}; e.g. {self.name}:delta=0.05")
        if isinstance(self.passes, bool) or not isinstance(self.passes, int) or self.passes < 1:
            raise InvalidArgument(f"passes must be an integer >= 1 (samples per pair), got passes={self.passes!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise InvalidArgument(f"seed must be a whole number >= 0, got seed={self.seed!r}; e.g. {self.name}:seed=0")

    @property
    def name(self) -> str:
        return self.algorithm.name

    def observations(self, view: RunView) -> Observations:
        return observations_from_view(view, seed=self.seed, passes=self.passes, budget=self.budget)

    def propose(self, view: RunView, limit: int) -> list[Proposal]:
        obs = self.observations(view)
        if self.delta is not None and identified(obs, self.algorithm.recommend(obs), self.delta):
            return []
        room = min(limit, self.algorithm.batch)
        if obs.remaining is not None:
            room = min(room, obs.remaining)
        if room <= 0:
            return []
        pulls = collections.Counter(self.algorithm.propose(obs, room))
        return [Proposal(view.problems[e].id, view.configs[a].id, n) for (a, e), n in pulls.items()]

    def planned(self, view: RunView) -> int | None:
        """Unknown: the policy stops when it has identified the best, which depends on the draws."""
        return None

    def best(self, view: RunView) -> str:
        """The configuration (its id) the policy names best from the run's samples."""
        return view.configs[self.algorithm.recommend(self.observations(view))].id
