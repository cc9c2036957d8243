"""Verifiers that judge by comparing a final answer with the problem's reference."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from budgetlab.core import Completion, Problem, Verdict
from budgetlab.verifiers._answers import answers_match, extract_answer, vote_form

__all__ = ["ExactVerifier", "RecordedVerifier", "AutoVerifier"]


@dataclass(frozen=True)
class ExactVerifier:
    """Exact match after normalisation, or numeric equality within ``rel_tol``.

    The answer is the backend's own (a recorded answer) when it has one, else extracted from the
    text; a number in one spelling (``"18.0"`` and ``"18"`` are one vote). Without a reference
    the verdict is unknown (``correct=None``).
    """

    rel_tol: float = 1e-6
    name: str = "exact"
    max_seconds: float = 0.01
    # It judges nothing without a reference: a run of it on problems with none is refused.
    needs_reference: ClassVar[bool] = True
    verify_threads: ClassVar[int] = 0  # microseconds: a thread hop would cost more (runner/_off_loop.py)

    def verify(self, problem: Problem, completion: Completion) -> Verdict:
        answer = vote_form(completion.answer if completion.answer is not None else extract_answer(completion.text))
        if answer is None or problem.reference is None:
            return Verdict(answer=answer, correct=None if problem.reference is None else False)
        return Verdict(answer=answer, correct=answers_match(answer, problem.reference, self.rel_tol))


@dataclass(frozen=True)
class RecordedVerifier:
    """Trust the verdict a replayed sample was recorded with."""

    name: str = "recorded"
    max_seconds: float = 0.0
    verify_threads: ClassVar[int] = 0  # it reads the recorded verdict: always fast

    def verify(self, problem: Problem, completion: Completion) -> Verdict:
        return Verdict(answer=completion.answer, correct=completion.correct, score=completion.score)


@dataclass(frozen=True)
class AutoVerifier:
    """The default: the verifier the problem names in ``metadata["verifier"]`` (the task loaders
    set ``math`` or ``code``; ``math`` falls back to ``exact`` without math-verify), else compare
    with the reference when the problem has one, else use the recorded verdict.

    ``max_seconds`` covers exact comparison only: with a ``verify_seconds`` budget on code
    problems, name the verifier (``--verifier code``) so that its time is reserved."""

    rel_tol: float = 1e-6
    name: str = "auto"
    max_seconds: float = 0.01
    _delegates: dict[str, Any] = field(default_factory=dict, init=False, repr=False, compare=False)

    def _delegate(self, problem: Problem) -> Any:
        wanted = problem.metadata.get("verifier") if problem.metadata else None
        if not wanted or wanted in ("auto", "exact"):
            return None
        if wanted not in self._delegates:
            from budgetlab.errors import BudgetlabError
            from budgetlab.verifiers import make_verifier

            try:
                self._delegates[wanted] = make_verifier(str(wanted))
            except BudgetlabError:
                if wanted != "math":  # the math extra is optional: compare exactly without it
                    raise
                self._delegates[wanted] = None
        return self._delegates[wanted]

    async def averify(self, problem: Problem, completion: Completion) -> Verdict:
        delegate = self._delegate(problem)
        if delegate is not None and hasattr(delegate, "averify"):
            return await delegate.averify(problem, completion)
        return self.verify(problem, completion)

    def verify(self, problem: Problem, completion: Completion) -> Verdict:
        delegate = self._delegate(problem)
        if delegate is not None:
            return delegate.verify(problem, completion)
        if problem.reference is not None:
            verdict = ExactVerifier(self.rel_tol).verify(problem, completion)
            return Verdict(verdict.answer, verdict.correct, completion.score)
        return RecordedVerifier().verify(problem, completion)
