"""Calibrated confidence: map a sample's raw confidence (or an answer's vote share) to P(correct).

Fit a calibrator on a calibration split of ``(confidence, correct)`` pairs, check it with
:func:`expected_calibration_error` on held-out pairs, and record it with a run as a mapping
(``calibrator.to_dict()``), which :func:`calibrator_from_dict` rebuilds.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from budgetlab.calibration._base import Calibrator
from budgetlab.calibration._base import spec_number as _spec_number
from budgetlab.calibration._base import spec_numbers as _spec_numbers
from budgetlab.calibration._confidence import CONFIDENCE_SOURCES, sample_confidence
from budgetlab.calibration._isotonic import IsotonicCalibrator
from budgetlab.calibration._metrics import (
    ReliabilityBin,
    expected_calibration_error,
    reliability_table,
)
from budgetlab.calibration._platt import PlattCalibrator
from budgetlab.errors import InvalidArgument

__all__ = [
    "CALIBRATORS",
    "CONFIDENCE_SOURCES",
    "CalibrationCheck",
    "Calibrator",
    "IsotonicCalibrator",
    "PlattCalibrator",
    "ReliabilityBin",
    "calibrator_from_dict",
    "check_calibration",
    "expected_calibration_error",
    "fit_calibrator",
    "reliability_table",
    "sample_confidence",
]

CALIBRATORS = {"platt": PlattCalibrator, "isotonic": IsotonicCalibrator}


def fit_calibrator(kind: str, confidence: npt.ArrayLike, correct: npt.ArrayLike, **options: Any) -> Calibrator:
    """Fit a ``"platt"`` or ``"isotonic"`` calibrator on (confidence, correct) pairs."""
    factory = CALIBRATORS.get(kind)
    if factory is None:
        raise InvalidArgument(f"unknown calibrator {kind!r}; use one of: {', '.join(sorted(CALIBRATORS))}")
    return factory.fit(confidence, correct, **options)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class CalibrationCheck:
    """A calibrator fitted on one split and its ECE on another, before and after."""

    calibrator: Calibrator
    ece_before: float
    ece_after: float
    n_fit: int
    n_test: int


def check_calibration(
    kind: str,
    fit_confidence: npt.ArrayLike,
    fit_correct: npt.ArrayLike,
    test_confidence: npt.ArrayLike,
    test_correct: npt.ArrayLike,
    bins: int = 10,
) -> CalibrationCheck:
    """Fit ``kind`` on the calibration split and measure the ECE of the held-out split's raw and
    calibrated confidences."""
    calibrator = fit_calibrator(kind, fit_confidence, fit_correct)
    test_x = np.asarray(test_confidence, dtype=np.float64)
    return CalibrationCheck(
        calibrator,
        expected_calibration_error(test_x, test_correct, bins),
        expected_calibration_error(calibrator.predict(test_x), test_correct, bins),
        int(np.asarray(fit_confidence).size),
        int(test_x.size),
    )


def calibrator_from_dict(spec: Mapping[str, Any] | str | os.PathLike[str]) -> Calibrator:
    """Rebuild a calibrator from ``to_dict()``'s mapping, e.g. ``{"kind": "platt", "a": 4.1, "b": -2.3}``,
    or from the path of a JSON file holding it (what a command line can name:
    ``--policy confidence:calibrator=cal.json``)."""
    if isinstance(spec, (str, os.PathLike)):
        spec = _read_calibrator_file(spec)
    if not isinstance(spec, Mapping):
        raise InvalidArgument(f"a calibrator is given as a mapping such as {{'kind': 'platt', 'a': 4.1, 'b': -2.3}}, got {spec!r}")
    kind = spec.get("kind")
    if kind == "platt":
        logit = spec.get("logit", False)
        if not isinstance(logit, bool):  # bool("false") is True
            raise InvalidArgument(f"calibrator 'platt': logit={logit!r} must be true or false")
        return PlattCalibrator(_spec_number(spec, "a", kind), _spec_number(spec, "b", kind), logit)
    if kind == "isotonic":
        return IsotonicCalibrator(_spec_numbers(spec, "x", kind), _spec_numbers(spec, "y", kind))
    # The keys, not the whole mapping: a wrong file (a Bayes prior) printed every atom of it.
    keys = ", ".join(repr(k) for k in list(spec)[:8]) + (", ..." if len(spec) > 8 else "")
    raise InvalidArgument(f"unknown calibrator kind {kind!r} in a mapping with keys {keys or 'none'}; use one of: "
                          f"{', '.join(sorted(CALIBRATORS))} (write it with json.dump(calibrator.to_dict(), f))")


def _read_calibrator_file(path: str | os.PathLike[str]) -> Any:
    """The mapping in a JSON file written with ``json.dump(calibrator.to_dict(), f)``."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as err:
        raise InvalidArgument(
            f"cannot read the calibrator file {str(path)!r} ({type(err).__name__}: {err}); write it with "
            "json.dump(calibrator.to_dict(), open(path, 'w'))"
        ) from None
