"""Best-of-N: the single sample with the highest score (or confidence)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from budgetlab.calibration import CONFIDENCE_SOURCES, calibrator_from_dict, sample_confidence
from budgetlab.core import Sample
from budgetlab.errors import InputError
from budgetlab.selectors._base import NOTHING, Selection, done

__all__ = ["BestOfN"]


@dataclass(frozen=True)
class BestOfN:
    """The answer of the sample with the highest confidence (``source`` as in the weighted vote,
    ``score`` by default: a reward-model or verifier score), the first one on ties; samples
    without one are skipped. The selection's correctness is that sample's own verdict, its
    confidence the (calibrated, if a calibrator is given) score."""

    source: str = "score"
    calibrator: Mapping[str, Any] | None = field(default=None, hash=False)
    name: str = "best_of_n"
    _mapping: Any = field(default=None, init=False, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        if self.source not in CONFIDENCE_SOURCES:
            raise InputError(f"selector best_of_n: source must be one of {', '.join(CONFIDENCE_SOURCES)}, got source={self.source!r}")
        if self.calibrator is not None:
            try:  # built once, not for every problem
                object.__setattr__(self, "_mapping", calibrator_from_dict(self.calibrator))
            except ValueError as err:
                raise InputError(f"selector best_of_n: bad calibrator: {err}") from None

    def select(self, samples: Sequence[Sample]) -> Selection:
        best = None
        best_score = float("-inf")
        for sample in done(samples):
            score = sample_confidence(sample, self.source)
            if score is not None and score > best_score:
                best, best_score = sample, score
        if best is None:
            return NOTHING
        confidence = best_score
        if self.calibrator is not None:
            confidence = float(self._mapping.predict([best_score])[0])
        return Selection(best.answer, best.correct, confidence)
