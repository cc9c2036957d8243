"""Majority vote (self-consistency) with deterministic tie-breaking."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from budgetlab.analysis import majority_answer
from budgetlab.core import Sample
from budgetlab.selectors._base import NOTHING, Selection, done, group_correct

__all__ = ["MajorityVote"]


@dataclass(frozen=True)
class MajorityVote:
    """The most frequent answer; among answers tied at the top count, the one that reached it
    first in sample order. ``None`` answers cast no vote. Confidence: the winner's vote share."""

    name: str = "majority"

    def select(self, samples: Sequence[Sample]) -> Selection:
        finished = done(samples)
        answer = majority_answer([s.answer for s in finished])
        if answer is None:
            return NOTHING
        votes = sum(1 for s in finished if s.answer == answer)
        voters = sum(1 for s in finished if s.answer is not None)
        return Selection(answer, group_correct(finished, answer), votes / voters)
