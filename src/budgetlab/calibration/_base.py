"""The calibrator contract: a monotone map from a raw confidence to P(correct).

A calibrator is fitted once on a calibration split of ``(confidence, correct)`` pairs and then
only read, so it is recorded with a run as a plain mapping (:meth:`Calibrator.to_dict`) and
rebuilt from it (:func:`calibrator_from_dict`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from budgetlab.errors import InvalidArgument

__all__ = ["Calibrator"]


@runtime_checkable
class Calibrator(Protocol):
    """Maps raw confidences (a vote share, a log-probability, a score) to calibrated
    probabilities of being right (``predict``), and back to a JSON-ready mapping (``to_dict``)."""

    @property
    def kind(self) -> str: ...  # read-only: an attribute, a field or a property all satisfy it

    def predict(self, confidence: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Calibrated probabilities of being correct, one per raw confidence."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable mapping that :func:`calibrator_from_dict` turns back into this."""


def as_pairs(confidence: npt.ArrayLike, correct: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Validated float arrays of confidences and 0/1 outcomes (shared by the fitters)."""
    x = np.asarray(confidence, dtype=np.float64).ravel()
    y = np.asarray(correct, dtype=np.float64).ravel()
    if x.shape != y.shape:
        raise InvalidArgument(f"confidence and correct must have the same length, got {x.size} and {y.size}")
    if x.size == 0:
        raise InvalidArgument("a calibrator needs at least one (confidence, correct) pair, got none")
    if not np.all(np.isfinite(x)):
        raise InvalidArgument("confidences must be finite; drop the samples without a confidence first")
    if not np.all((y == 0) | (y == 1)):
        raise InvalidArgument("correct must hold booleans (or 0/1); drop unjudged samples first")
    return x, y


def fit_pairs(confidence: npt.ArrayLike, correct: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """:func:`as_pairs` for fitting: a calibrator learns how confidence separates right from
    wrong answers, so it needs both (all correct, isotonic said P(correct)=1 at any confidence)."""
    x, y = as_pairs(confidence, correct)
    right = int(y.sum())
    if right in (0, y.size):
        which = "correct" if right else "incorrect"
        raise InvalidArgument(
            f"a calibrator needs both correct and incorrect samples, got {y.size} {which} only; add samples of the "
            "other kind to the calibration split, or use the confidences uncalibrated"
        )
    return x, y


def _spec_value(spec: Mapping[str, Any], key: str, kind: str) -> Any:
    if key not in spec:
        raise InvalidArgument(f"calibrator {kind!r} needs {key!r}, got keys {sorted(spec)}; write it as {kind}.to_dict() gives it")
    return spec[key]


def spec_number(spec: Mapping[str, Any], key: str, kind: str) -> float:
    """A finite number of a calibrator's mapping (NaN would make every prediction NaN)."""
    value = _spec_value(spec, key, kind)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise InvalidArgument(f"calibrator {kind!r}: {key}={value!r} must be a finite number; write it as {kind}.to_dict() gives it")
    return float(value)


def spec_numbers(spec: Mapping[str, Any], key: str, kind: str) -> tuple[float, ...]:
    """A list of finite numbers of a calibrator's mapping."""
    value = _spec_value(spec, key, kind)
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, (list, tuple)):
        raise InvalidArgument(f"calibrator {kind!r}: {key}={value!r} must be lists of numbers; write it as {kind}.to_dict() gives it")
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in value):
        raise InvalidArgument(f"calibrator {kind!r}: {key} must hold finite numbers, got {list(value)!r}")
    return tuple(float(v) for v in value)
