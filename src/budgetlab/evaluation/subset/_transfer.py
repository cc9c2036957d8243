"""Choosing a method for a set without looking at that set: leave one set out.

A benchmark over a few sets that reports each method's score invites reporting the best method,
which is partly the luckiest one on those very sets. The honest figure is what a user would
get on a new set, choosing the method by its record on the sets they already have: for each
set, the method with the best mean score on the *other* sets is chosen, and its score on the
held-out set is what counts. Methods level on the other sets are all chosen, and the held-out
score is their mean (what a uniform random pick among them gets on average), so the outcome
does not depend on the order the methods are listed in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from budgetlab.errors import InvalidArgument

__all__ = ["HeldOutChoice", "choose_on_other_sets"]

#: Mean scores closer than this are a tie (float noise, not a difference).
TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class HeldOutChoice:
    held_out: str
    chosen: tuple[str, ...]  # the method(s) with the best mean on the other sets
    score: float  # their (mean) score on the held-out set
    record: float  # their mean score on the other sets


def choose_on_other_sets(scores: Mapping[str, Mapping[str, float]]) -> list[HeldOutChoice]:
    """Leave-one-set-out choice. ``scores[method][set]``: a method's score on a set, higher is
    better; every method needs a score on every set (at least 2 sets). Returns one
    :class:`HeldOutChoice` per set; the mean of their ``score`` is the figure to report."""
    methods = list(scores)
    if not methods:
        raise InvalidArgument("choose_on_other_sets needs at least one method's scores, got none")
    sets = list(scores[methods[0]])
    for method in methods:
        if set(scores[method]) != set(sets):
            raise InvalidArgument(
                f"every method needs a score on the same sets: {method!r} has {sorted(scores[method])}, "
                f"{methods[0]!r} has {sorted(sets)}"
            )
    if len(sets) < 2:
        raise InvalidArgument(f"leaving one set out needs at least 2 sets, got {sets}")
    table = np.array([[float(scores[m][s]) for s in sets] for m in methods])  # methods x sets
    if np.isnan(table).any():
        raise InvalidArgument("scores must be numbers, got NaN; leave out the methods that did not run on every set")
    out = []
    for k, held_out in enumerate(sets):
        record = np.delete(table, k, axis=1).mean(axis=1)
        best = np.flatnonzero(record >= record.max() - TIE_TOLERANCE)
        out.append(
            HeldOutChoice(
                held_out=held_out,
                chosen=tuple(methods[i] for i in best),
                score=float(table[best, k].mean()),
                record=float(record[best].mean()),
            )
        )
    return out
