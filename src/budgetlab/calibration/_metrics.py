"""How well confidences are calibrated: expected calibration error and its reliability table."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from budgetlab.calibration._base import as_pairs
from budgetlab.errors import InvalidArgument

__all__ = ["ReliabilityBin", "expected_calibration_error", "reliability_table"]


@dataclass(frozen=True)
class ReliabilityBin:
    lo: float
    hi: float
    count: int
    confidence: float  # mean confidence in the bin
    accuracy: float  # fraction correct in the bin


def reliability_table(confidence: npt.ArrayLike, correct: npt.ArrayLike, bins: int = 10) -> list[ReliabilityBin]:
    """Equal-width bins over [0, 1]; empty bins are left out."""
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1:
        raise InvalidArgument(f"reliability_table needs a whole number of bins >= 1, got bins={bins!r}")
    x, y = as_pairs(confidence, correct)
    outside = np.flatnonzero((x < -1e-9) | (x > 1 + 1e-9))
    if outside.size:
        # A score on another scale (a log-probability, a percentage) would be binned as nonsense.
        first = int(outside[0])
        raise InvalidArgument(
            f"confidence[{first}]={float(x[first])!r} is outside [0, 1] ({outside.size} such values); "
            "give probabilities, e.g. calibrate raw scores first (budgetlab.calibration)"
        )
    x = np.clip(x, 0.0, 1.0)
    index = np.minimum((x * bins).astype(np.int64), bins - 1)
    out = []
    for b in range(bins):
        mask = index == b
        if mask.any():
            out.append(ReliabilityBin(b / bins, (b + 1) / bins, int(mask.sum()), float(x[mask].mean()), float(y[mask].mean())))
    return out


def expected_calibration_error(confidence: npt.ArrayLike, correct: npt.ArrayLike, bins: int = 10) -> float:
    """ECE: the count-weighted mean over bins of |mean confidence - accuracy|."""
    table = reliability_table(confidence, correct, bins)
    total = sum(b.count for b in table)
    return float(sum(b.count * abs(b.confidence - b.accuracy) for b in table) / total)
