"""The verifier contract: judge one completion of one problem.

A verifier is anything with ``name``, ``max_seconds`` (an upper bound on one judgement, reserved
against a ``verify_seconds`` budget) and ``verify``. A verifier whose judging is slow or runs
elsewhere (a sandbox, a judge model) may also define ``async def averify`` with the same
signature; the run loop prefers it. A verifier that pays for judging (a judge model) may define
``estimate(problem, draw) -> Spend``: the most one judgement of a completion of ``problem`` may
cost in tokens and dollars, given ``draw``, the backend's bound on the sample itself; the run
reserves it with the draw, so judges in flight cannot overspend a budget either.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from budgetlab.core import Completion, Problem, Verdict

__all__ = ["Verifier"]


@runtime_checkable
class Verifier(Protocol):
    """Judges a completion of a problem: ``verify`` returns the answer it found, whether it is
    correct (``None``: unknown) and an optional score. ``max_seconds`` bounds one verdict, for
    a ``verify_seconds`` budget. Built by :func:`budgetlab.verifiers.make_verifier`."""

    # Read-only (properties), so a frozen dataclass's fields, class attributes and properties
    # all satisfy the protocol under a type checker.
    @property
    def name(self) -> str: ...

    @property
    def max_seconds(self) -> float: ...

    def verify(self, problem: Problem, completion: Completion) -> Verdict: ...
