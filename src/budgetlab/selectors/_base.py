"""The selector contract: which answer a set of samples of one problem settles on.

A selector reads finished samples (as the store returns them) and never changes them; samples
that are not ``done`` (pending, running, failed) cast no vote.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from budgetlab.core import Sample, SampleState

__all__ = ["Selection", "Selector"]


@dataclass(frozen=True)
class Selection:
    """The chosen answer, whether it is correct (``None`` when unjudged or nothing was chosen),
    and the selector's confidence in it (its meaning depends on the selector, in [0, 1] for the
    vote-based ones)."""

    answer: Hashable | None
    correct: bool | None
    confidence: float | None


@runtime_checkable
class Selector(Protocol):
    """Picks the answer to return from a problem's samples (``select``): majority, weighted vote,
    best-of-n by a scorer, first verified.

    ``name`` is read-only here (a property), so a frozen dataclass with a ``name`` field, a class
    attribute or a property all satisfy the protocol under a type checker."""

    @property
    def name(self) -> str:
        """The selector's name, as a report shows it (``selected answer (NAME)``)."""

    def select(self, samples: Sequence[Sample]) -> Selection:
        """The selection among ``samples`` (one problem under one configuration)."""


NOTHING = Selection(None, None, None)


def done(samples: Sequence[Sample]) -> list[Sample]:
    return [s for s in samples if s is not None and s.state is SampleState.DONE]


def group_correct(samples: Sequence[Sample], answer: Hashable) -> bool | None:
    """The verdict of an answer group: the majority of its judged samples (as in maj@k); an even
    split or no judged sample gives ``None``."""
    yes = sum(1 for s in samples if s.answer == answer and s.correct is True)
    no = sum(1 for s in samples if s.answer == answer and s.correct is False)
    return True if yes > no else False if no > yes else None
