"""The policy contract: where the next samples go.

A policy is stateless: it decides from the :class:`~budgetlab.core.view.RunView` alone (every
sample of the run, with its state and verdict), so a resumed run or a second worker gets the
same decisions. It proposes more samples of (problem, configuration) pairs; an empty proposal
while nothing is in flight ends the run.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from budgetlab.core.view import RunView
from budgetlab.stores import Proposal

__all__ = ["Policy", "Proposal"]


@runtime_checkable
class Policy(Protocol):
    """How many samples each (problem, configuration) gets and when to stop: ``propose`` reads
    what the run holds (a :class:`~budgetlab.core.view.RunView`, rebuilt from the store, so a
    resumed run or another worker decides alike) and asks for more. Registered ones are in
    :data:`budgetlab.policies.POLICIES` (``fixed``, ``esc``, ``adaptive``, ``bayes``, ...).

    ``name`` is read-only here (a property), so a frozen dataclass with a ``name`` field, a class
    attribute or a property all satisfy the protocol under a type checker."""

    @property
    def name(self) -> str:
        """The policy's name, as the run reports it (``complete: policy NAME has nothing more to draw``)."""

    def propose(self, view: RunView, limit: int) -> list[Proposal]:
        """Up to ``limit`` more samples (summed over proposals) to draw now."""

    def planned(self, view: RunView) -> int | None:
        """The total number of samples the policy means to draw, if known (for progress)."""
