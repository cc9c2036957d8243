"""The verifier contract: judge one completion of one problem.

A verifier is anything with ``name``, ``max_seconds`` (an upper bound on one judgement, reserved
against a ``verify_seconds`` budget) and ``verify``. A verifier whose judging is slow or runs
elsewhere (a sandbox, a judge model) may also define ``async def averify`` with the same
signature; the run loop prefers it.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from budgetlab.core import Completion, Problem, Verdict

__all__ = ["Verifier"]


@runtime_checkable
class Verifier(Protocol):
    name: str
    max_seconds: float

    def verify(self, problem: Problem, completion: Completion) -> Verdict: ...
