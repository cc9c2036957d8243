"""First-verified: the first sample the verifier accepted."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from budgetlab.core import Sample
from budgetlab.selectors._base import Selection, done
from budgetlab.selectors._majority import MajorityVote

__all__ = ["FirstVerified"]


@dataclass(frozen=True)
class FirstVerified:
    """The answer of the first sample (in index order) judged correct, with confidence 1. This is
    the right selector when the verifier is available at selection time (unit tests for code, a
    proof checker); with a reference-answer verifier it is an oracle. When no sample passed, the
    majority vote is the fallback, with confidence 0 (nothing verified)."""

    name: str = "first_verified"

    def select(self, samples: Sequence[Sample]) -> Selection:
        finished = done(samples)
        for sample in finished:
            if sample.correct is True:
                return Selection(sample.answer, True, 1.0)
        fallback = MajorityVote().select(finished)
        return Selection(fallback.answer, fallback.correct, 0.0 if fallback.answer is not None else None)
