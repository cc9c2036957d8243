"""Weighted vote: each sample votes with its (calibrated) confidence."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from budgetlab.calibration import CONFIDENCE_SOURCES, calibrator_from_dict, sample_confidence
from budgetlab.core import Sample
from budgetlab.errors import InputError
from budgetlab.selectors._base import NOTHING, Selection, done, group_correct
from budgetlab.selectors._majority import MajorityVote

__all__ = ["WeightedVote"]


@dataclass(frozen=True)
class WeightedVote:
    """The answer with the largest summed weight, a weight being the sample's confidence
    (``source``: its score, e.g. self-certainty; ``exp`` of its mean token log-prob; or ``auto``:
    the score if any), mapped through ``calibrator`` (a calibration mapping, see
    :mod:`budgetlab.calibration`) when one is given. Samples without a confidence do not vote;
    if none has one, this is a plain majority vote. Ties go to the answer that reached the top
    weight first. Confidence: the winner's share of the total weight."""

    source: str = "auto"
    calibrator: Mapping[str, Any] | None = field(default=None, hash=False)
    name: str = "weighted"

    def __post_init__(self) -> None:
        if self.source not in CONFIDENCE_SOURCES:
            raise InputError(f"selector weighted: source must be one of {', '.join(CONFIDENCE_SOURCES)}, got source={self.source!r}")
        if self.calibrator is not None:
            try:
                calibrator_from_dict(self.calibrator)
            except ValueError as err:
                raise InputError(f"selector weighted: bad calibrator: {err}") from None

    def weights(self, samples: Sequence[Sample]) -> list[float | None]:
        raw = [sample_confidence(s, self.source) for s in samples]
        if self.calibrator is None:
            return raw
        calibrated = calibrator_from_dict(self.calibrator).predict([0.0 if r is None else r for r in raw])
        return [None if r is None else float(c) for r, c in zip(raw, calibrated)]

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
            totals[sample.answer] = totals.get(sample.answer, 0.0) + max(weight, 0.0)
            if totals[sample.answer] > best_weight:
                best, best_weight = sample.answer, totals[sample.answer]
        if best is None:
            return NOTHING
        total = sum(totals.values())
        return Selection(best, group_correct(finished, best), best_weight / total if total > 0 else None)
