"""Weighted vote: each sample votes with its (calibrated) confidence."""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from budgetlab.calibration import CONFIDENCE_SOURCES, calibrator_from_dict, sample_confidence
from budgetlab.core import Sample
from budgetlab.errors import InputError
from budgetlab.selectors._base import Selection, done, group_correct
from budgetlab.selectors._majority import MajorityVote

__all__ = ["WeightedVote"]

_SCALES = ("linear", "exp")


@dataclass(frozen=True)
class WeightedVote:
    """The answer with the largest summed weight, a weight being the sample's confidence
    (``source``: its score, e.g. self-certainty; ``exp`` of its mean token log-prob; or ``auto``:
    the score if any), mapped through ``calibrator`` (a calibration mapping, see
    :mod:`budgetlab.calibration`) when one is given. Samples without a confidence do not vote;
    if none has one, this is a plain majority vote. Ties go to the answer that reached the top
    weight first. Confidence: the winner's share of the total weight.

    ``scale``: ``linear`` (the default) weighs by the confidence itself, which must then be
    >= 0; ``exp`` weighs by ``exp(confidence)``, for scores that are logits or log-odds (most
    reward models' outputs), negative ones included: the winner's share is then its softmax mass."""

    source: str = "auto"
    calibrator: Mapping[str, Any] | None = field(default=None, hash=False)
    scale: str = "linear"
    name: str = "weighted"
    _mapping: Any = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.source not in CONFIDENCE_SOURCES:
            raise InputError(f"selector weighted: source must be one of {', '.join(CONFIDENCE_SOURCES)}, got source={self.source!r}")
        if self.scale not in _SCALES:
            raise InputError(f"selector weighted: scale must be one of {', '.join(_SCALES)}, got scale={self.scale!r}; e.g. weighted:scale=exp")
        if self.calibrator is not None:
            try:  # built once: a calibrator given as a file is not read again for every problem
                object.__setattr__(self, "_mapping", calibrator_from_dict(self.calibrator))
            except ValueError as err:
                raise InputError(f"selector weighted: bad calibrator: {err}") from None

    def weights(self, samples: Sequence[Sample]) -> list[float | None]:
        raw = [sample_confidence(s, self.source) for s in samples]
        if self.calibrator is not None:
            calibrated = self._mapping.predict([0.0 if r is None else r for r in raw])
            raw = [None if r is None else float(c) for r, c in zip(raw, calibrated)]
        known = [w for w in raw if w is not None]
        if self.scale == "exp" and known:
            top = max(known)  # exp(w - top): the same shares as exp(w), without overflow
            return [None if w is None else math.exp(w - top) for w in raw]
        negative = next((w for w in known if w < 0), None)
        if negative is not None:
            # Clipping it to 0 would hand the vote to whichever answer scored least badly by chance.
            raise InputError(f"selector weighted: a sample's {self.source} confidence is {negative:g}, below 0, and a linear weight "
                             "must be >= 0; for logits or log-odds (e.g. reward-model scores) use weighted:scale=exp")  # fmt: skip
        return raw

    def select(self, samples: Sequence[Sample]) -> Selection:
        finished = [s for s in done(samples) if s.answer is not None]
        weights = self.weights(finished)
        if not any(w is not None for w in weights):
            return MajorityVote().select(finished)
        totals: dict[Hashable, float] = {}
        best: Hashable | None = None
        best_weight = 0.0
        for sample, weight in zip(finished, weights):
            if weight is None:
                continue
            totals[sample.answer] = totals.get(sample.answer, 0.0) + weight
            if totals[sample.answer] > best_weight:
                best, best_weight = sample.answer, totals[sample.answer]
        if best is None:  # every weight is 0: they say nothing, so count votes
            return MajorityVote().select(finished)
        total = sum(totals.values())
        return Selection(best, group_correct(finished, best), best_weight / total if total > 0 else None)
