"""Platt scaling: P(correct) = sigmoid(a * x + b), x the raw confidence (or its logit)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from budgetlab.calibration._base import fit_pairs
from budgetlab.errors import InvalidArgument

__all__ = ["PlattCalibrator"]

_EPS = 1e-6


def _feature(x: npt.NDArray[np.float64], logit: bool) -> npt.NDArray[np.float64]:
    if not logit:
        return x
    p = np.clip(x, _EPS, 1 - _EPS)
    return np.log(p) - np.log1p(-p)


@dataclass(frozen=True)
class PlattCalibrator:
    a: float = 1.0
    b: float = 0.0
    logit: bool = False  # fit on logit(x), for confidences that are already probabilities
    kind: str = "platt"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.a) and math.isfinite(self.b)):  # NaN would map every confidence to NaN
            raise InvalidArgument(f"platt calibrator needs finite a and b, got a={self.a!r}, b={self.b!r}; refit it with PlattCalibrator.fit")

    def predict(self, confidence: npt.ArrayLike) -> npt.NDArray[np.float64]:
        x = _feature(np.asarray(confidence, dtype=np.float64), self.logit)
        z = np.clip(self.a * x + self.b, -500, 500)
        return 1.0 / (1.0 + np.exp(-z))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "a": self.a, "b": self.b, "logit": self.logit}

    @classmethod
    def fit(cls, confidence: npt.ArrayLike, correct: npt.ArrayLike, logit: bool = False, iters: int = 100) -> PlattCalibrator:
        """Maximum likelihood with Platt's smoothed targets (no separation blow-up), by Newton steps."""
        x, y = fit_pairs(confidence, correct)
        f = _feature(x, logit)
        pos, neg = float(y.sum()), float(y.size - y.sum())
        t = np.where(y == 1, (pos + 1) / (pos + 2), 1 / (neg + 2))
        a, b = 0.0, math.log((pos + 1) / (neg + 1))
        for _ in range(iters):
            p = 1.0 / (1.0 + np.exp(-np.clip(a * f + b, -500, 500)))
            g = np.array([np.sum((t - p) * f), np.sum(t - p)])
            w = p * (1 - p)
            h = np.array([[np.sum(w * f * f), np.sum(w * f)], [np.sum(w * f), np.sum(w)]]) + 1e-9 * np.eye(2)
            step = np.linalg.solve(h, g)
            a, b = a + float(step[0]), b + float(step[1])
            if float(np.abs(step).max()) < 1e-10:
                break
        return cls(a=a, b=b, logit=logit)
