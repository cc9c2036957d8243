"""A read-only view of one run's samples, which policies decide from.

The run loop builds it from the store and keeps it current as samples are added and settled,
so a policy that reads only the view decides the same after a resume as before a crash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from budgetlab.core.budget import Budget, Spend
from budgetlab.core.types import Problem, Sample, SampleState, SamplingConfig

__all__ = ["RunView"]


class RunView:
    """What a policy sees of a run: its problems, configurations, samples so far (per problem
    and configuration, in draw order) and budget, with what is spent; read-only for policies."""

    def __init__(
        self,
        problems: Sequence[Problem],
        configs: Sequence[SamplingConfig],
        samples: Iterable[Sample] = (),
        budget: Budget | None = None,
    ) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        self.configs: tuple[SamplingConfig, ...] = tuple(configs)
        self.budget = budget or Budget()
        self.spent = Spend()
        self._problem_by_id = {p.id: p for p in self.problems}
        self._config_by_id = {c.id: c for c in self.configs}
        self._samples: dict[tuple[str, str], list[Sample]] = {}
        # Policies may keep memos here that stay true as the view grows (sample counts never
        # shrink), e.g. how far a scan has found every pair full. The view is rebuilt from the
        # store on resume, so a memo never outlives what it summarises.
        self.memo: dict[str, object] = {}
        self.update(samples)

    def problem(self, problem_id: str) -> Problem:
        return self._problem_by_id[problem_id]

    def config(self, config_id: str) -> SamplingConfig:
        return self._config_by_id[config_id]

    def samples(self, problem: str, config: str) -> list[Sample]:
        """Every sample of the pair in index order, whatever its state."""
        return self._samples.get((problem, config), [])

    def count(self, problem: str, config: str) -> int:
        """Samples of the pair that exist in any state (pending and running ones included)."""
        return len(self._samples.get((problem, config), ()))

    def finished(self, problem: str, config: str) -> list[Sample]:
        return [s for s in self.samples(problem, config) if s is not None and s.state.finished]

    def done(self, problem: str, config: str) -> list[Sample]:
        return [s for s in self.samples(problem, config) if s is not None and s.state is SampleState.DONE]

    def update(self, samples: Iterable[Sample]) -> None:
        """Add new samples or replace changed ones (same key)."""
        for s in samples:
            bucket = self._samples.setdefault((s.problem, s.config), [])
            if s.index < len(bucket):
                bucket[s.index] = s
            elif s.index == len(bucket):
                bucket.append(s)
            else:  # indexes are dense in a store, but keep the view correct if fed out of order
                bucket.extend([None] * (s.index - len(bucket)))  # type: ignore[list-item]
                bucket.append(s)
