"""Isotonic calibration: the best monotone (non-decreasing) fit of correct on confidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from budgetlab.calibration._base import fit_pairs
from budgetlab.errors import InvalidArgument

__all__ = ["IsotonicCalibrator"]


@dataclass(frozen=True)
class IsotonicCalibrator:
    """Piecewise-linear through the pool-adjacent-violators blocks; flat outside the fitted range.

    ``x`` and ``y`` are the block edges (each block contributes its lowest and highest
    confidence with the block's accuracy), non-decreasing in both.
    """

    x: tuple[float, ...] = (0.0, 1.0)
    y: tuple[float, ...] = (0.0, 1.0)
    kind: str = "isotonic"

    def __post_init__(self) -> None:
        x, y = tuple(float(v) for v in self.x), tuple(float(v) for v in self.y)
        if len(x) != len(y) or not x:
            raise InvalidArgument(f"isotonic calibrator needs x and y of the same non-zero length, got {len(x)} and {len(y)}")
        if not all(np.isfinite(v) for v in x + y):
            raise InvalidArgument(f"isotonic calibrator needs finite x and y, got x={list(x)!r}, y={list(y)!r}")
        if any(not 0.0 <= v <= 1.0 for v in y):  # y are the blocks' accuracies: probabilities
            raise InvalidArgument(f"isotonic calibrator needs y between 0 and 1 (probabilities), got y={list(y)!r}")
        if any(b < a for a, b in zip(x, x[1:])) or any(b < a for a, b in zip(y, y[1:])):
            raise InvalidArgument("isotonic calibrator needs non-decreasing x and y; refit it with IsotonicCalibrator.fit")
        object.__setattr__(self, "x", x)
        object.__setattr__(self, "y", y)

    def predict(self, confidence: npt.ArrayLike) -> npt.NDArray[np.float64]:
        return np.interp(np.asarray(confidence, dtype=np.float64), self.x, self.y)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "x": list(self.x), "y": list(self.y)}

    @classmethod
    def fit(cls, confidence: npt.ArrayLike, correct: npt.ArrayLike) -> IsotonicCalibrator:
        x, y = fit_pairs(confidence, correct)
        order = np.argsort(x, kind="stable")
        xs, ys = x[order], y[order]
        # Pool adjacent violators over groups of equal confidence.
        values, starts = np.unique(xs, return_index=True)
        sums = np.add.reduceat(ys, starts)
        counts = np.diff(np.append(starts, xs.size)).astype(np.float64)
        blocks: list[list[float]] = []  # [sum, count, x_lo, x_hi]
        for v, s, c in zip(values, sums, counts):
            blocks.append([float(s), float(c), float(v), float(v)])
            while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
                s2, c2, _, hi = blocks.pop()
                blocks[-1][0] += s2
                blocks[-1][1] += c2
                blocks[-1][3] = hi
        edges_x: list[float] = []
        edges_y: list[float] = []
        for s, c, lo, hi in blocks:
            edges_x += [lo, hi] if hi > lo else [lo]
            edges_y += [s / c, s / c] if hi > lo else [s / c]
        return cls(tuple(edges_x), tuple(edges_y))
