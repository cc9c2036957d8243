"""The verifier contract: judge one completion of one problem.

A verifier is anything with ``name``, ``max_seconds`` (an upper bound on one judgement, reserved
against a ``verify_seconds`` budget) and ``verify``. A verifier whose judging waits on I/O
(a sandbox, a judge model) may also define ``async def averify`` with the same signature; the run
loop prefers it. A plain ``verify`` seen to be slow (over 5 ms, twice in a row) is called on a worker thread
of the verifier's own, one call at a time, so it does not hold up the event loop; an optional
``verify_threads`` says how many calls may run at once (more than 1: ``verify`` is thread-safe; 0:
keep it on the event loop, e.g. for signal-based timeouts). A verifier that pays for judging (a
judge model) may define ``estimate(problem, draw) -> Spend``: the most one judgement of a
completion of ``problem`` may cost in tokens and dollars, given ``draw``, the backend's bound on
the sample itself; the run reserves it with the draw, so judges in flight cannot overspend a
budget either.
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
