"""Confidence-based early stopping (Huang et al., "Efficient Test-Time Scaling via
Self-Calibration", 2025).

Two rules over each sample's calibrated confidence (its score, e.g. self-certainty, or the
geometric-mean token probability; see :func:`budgetlab.calibration.sample_confidence`), mapped to
P(correct) by a calibrator fitted on a calibration split:

* ``best_of_n``: stop at the first sample whose calibrated confidence reaches ``threshold``
  (early-stopping Best-of-N; select with the ``best_of_n`` selector);
* ``adaptive``: confidence-weighted Adaptive-Consistency: each answer's votes are the sum of its
  samples' calibrated confidences, and the Beta criterion on the two leading weights must reach
  ``threshold`` (select with the ``weighted`` selector).
"""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from budgetlab.calibration import CONFIDENCE_SOURCES, calibrator_from_dict
from budgetlab.errors import InputError
from budgetlab.policies._adaptive import beta_leader_probability
from budgetlab.policies._sequential import SequentialStopping, check_count, check_not_above_max, check_probability

__all__ = ["ConfidenceStopping"]

MODES = ("best_of_n", "adaptive")
_EXAMPLE = "confidence:mode=best_of_n,threshold=0.9,max_samples=16"


@dataclass(frozen=True)
class ConfidenceStopping(SequentialStopping):
    """See the module docstring. A sample without a confidence never triggers ``best_of_n`` and
    votes with weight 1 in ``adaptive`` (which is then plain Adaptive-Consistency)."""

    mode: str = "best_of_n"
    threshold: float = 0.9
    max_samples: int = 16
    source: str = "auto"
    calibrator: Mapping[str, Any] | str | None = field(default=None, hash=False)  # or a JSON file of one
    batch: int = 1
    min_samples: int = 1
    name: str = "confidence"
    #: Arguments that may name a JSON file: the policy keeps what the file holds, and a run
    #: records that (not the path), so it is rebuilt the same from anywhere.
    file_args: ClassVar[tuple[str, ...]] = ("calibrator",)
    _mapping: Any = field(default=None, init=False, repr=False, compare=False, hash=False)
    uses_confidence = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise InputError(f"policy confidence: mode must be one of {', '.join(MODES)}, got mode={self.mode!r}; write e.g. {_EXAMPLE}")
        if self.source not in CONFIDENCE_SOURCES:
            raise InputError(f"policy confidence: source must be one of {', '.join(CONFIDENCE_SOURCES)}, got source={self.source!r}")
        check_probability("confidence", "threshold", self.threshold, _EXAMPLE)
        check_count("confidence", "max_samples", self.max_samples, 1, _EXAMPLE)
        check_count("confidence", "batch", self.batch, 1, _EXAMPLE)
        check_count("confidence", "min_samples", self.min_samples, 1, _EXAMPLE)
        check_not_above_max("confidence", "min_samples", self.min_samples, self.max_samples, _EXAMPLE)
        if self.calibrator is not None:
            try:
                calibrator = calibrator_from_dict(self.calibrator)
            except ValueError as err:
                raise InputError(f"policy confidence: bad calibrator: {err}") from None
            if isinstance(self.calibrator, (str, os.PathLike)):  # a file (the command line's form): recorded as its mapping
                object.__setattr__(self, "calibrator", calibrator.to_dict())
            object.__setattr__(self, "_mapping", calibrator)  # built once, not for every decision

    @property
    def step(self) -> int:  # type: ignore[override]
        return self.batch

    @property
    def confidence_source(self) -> str:  # type: ignore[override]
        return self.source

    def calibrated(self, confidences: Sequence[float | None]) -> list[float | None]:
        # A NaN is no confidence (as documented for None): as a weight it reached the Beta
        # criterion, whose int(nan) crashed the run.
        known = [None if c is None or math.isnan(c) else float(c) for c in confidences]
        if self.calibrator is None:
            return known
        mapped = self._mapping.predict(np.array([0.0 if c is None else c for c in known]))
        return [None if c is None or math.isnan(m) else float(m) for c, m in zip(known, mapped)]

    def should_stop(self, answers: Sequence[Hashable | None], confidences: Sequence[float | None] | None = None) -> bool:
        calibrated = self.calibrated(confidences) if confidences is not None else [None] * len(answers)
        if self.mode == "best_of_n":
            return any(c is not None and c >= self.threshold for a, c in zip(answers, calibrated) if a is not None)
        weights: dict[Hashable, float] = {}
        for answer, c in zip(answers, calibrated):
            if answer is not None:
                weights[answer] = weights.get(answer, 0.0) + (1.0 if c is None else min(max(c, 0.0), 1.0))
        ranked = sorted(weights.values(), reverse=True)
        if not ranked:
            return False
        return beta_leader_probability(ranked[0], ranked[1] if len(ranked) > 1 else 0.0) >= self.threshold
