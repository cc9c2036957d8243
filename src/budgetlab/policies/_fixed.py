"""Fixed k: every problem gets k samples under every configuration."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from budgetlab.core.view import RunView
from budgetlab.errors import InputError
from budgetlab.stores import Proposal

__all__ = ["FixedK"]


@dataclass(frozen=True)
class FixedK:
    """Every problem gets ``k`` samples under every configuration (``fixed:k=8``)."""

    k: int = 8
    name: str = "fixed"
    #: Arguments a run may raise when it resumes: a larger k draws the samples k adds, with the
    #: seeds they would have had, and pays nothing again for those already drawn.
    resumable_args: ClassVar[frozenset[str]] = frozenset({"k"})

    def __post_init__(self) -> None:
        if isinstance(self.k, bool) or not isinstance(self.k, int) or self.k < 1:
            raise InputError(f"policy fixed needs k, a whole number >= 1 of samples per problem, got k={self.k!r}; "
                             "write e.g. fixed:k=8")

    def propose(self, view: RunView, limit: int) -> list[Proposal]:
        out: list[Proposal] = []
        room = limit
        if room <= 0:
            return out
        config_ids = [c.id for c in view.configs]
        # Problems before the cursor have all k samples already: counts only grow.
        start = int(view.memo.get("fixed.full_before", 0))  # type: ignore[call-overload]
        for position in range(start, len(view.problems)):
            problem = view.problems[position].id
            for config in config_ids:
                # Failed samples count as drawn: a sample that failed is not retried forever.
                missing = self.k - view.count(problem, config)
                if missing > 0:
                    take = min(missing, room)
                    out.append(Proposal(problem, config, take))
                    room -= take
                    if room == 0:
                        return out
            if not out:
                view.memo["fixed.full_before"] = position + 1
        return out

    def planned(self, view: RunView) -> int | None:
        return self.k * len(view.problems) * len(view.configs)
