"""Fixed k: every problem gets k samples under every configuration."""

from __future__ import annotations

from dataclasses import dataclass

from budgetlab.core.view import RunView
from budgetlab.errors import InputError
from budgetlab.stores import Proposal

__all__ = ["FixedK"]


@dataclass(frozen=True)
class FixedK:
    k: int = 8
    name: str = "fixed"

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise InputError(f"policy fixed needs k >= 1 samples per problem, got k={self.k!r}; write e.g. fixed:k=8")

    def propose(self, view: RunView, limit: int) -> list[Proposal]:
        out: list[Proposal] = []
        room = limit
        for problem in view.problems:
            for config in view.configs:
                # Failed samples count as drawn: a sample that failed is not retried forever.
                missing = self.k - view.count(problem.id, config.id)
                if missing > 0:
                    take = min(missing, room)
                    out.append(Proposal(problem.id, config.id, take))
                    room -= take
                    if room == 0:
                        return out
        return out

    def planned(self, view: RunView) -> int | None:
        return self.k * len(view.problems) * len(view.configs)
