"""Calibrators (Platt, isotonic), the ECE, and reading a sample's confidence."""

from __future__ import annotations

import math

import numpy as np
import pytest

from budgetlab.calibration import (
    IsotonicCalibrator,
    PlattCalibrator,
    calibrator_from_dict,
    check_calibration,
    expected_calibration_error,
    fit_calibrator,
    reliability_table,
    sample_confidence,
)
from budgetlab.core import Sample, SampleState


def miscalibrated(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Overconfident raw confidences: the true P(correct) is conf**3."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.3, 1.0, n)
    return conf, rng.random(n) < conf**3


@pytest.mark.parametrize("kind", ["platt", "isotonic"])
def test_calibration_lowers_ece_on_held_out_data(kind: str) -> None:
    fit_x, fit_y = miscalibrated(4000, seed=0)
    test_x, test_y = miscalibrated(4000, seed=1)
    calibrator = fit_calibrator(kind, fit_x, fit_y)
    before = expected_calibration_error(test_x, test_y)
    after = expected_calibration_error(calibrator.predict(test_x), test_y)
    assert before > 0.1
    assert after < 0.04 and after < before / 4
    check = check_calibration(kind, fit_x, fit_y, test_x, test_y)
    assert (check.ece_before, check.n_fit, check.n_test) == (pytest.approx(before), 4000, 4000)
    assert check.ece_after == pytest.approx(after)
    # Rebuilt from its record, it predicts the same.
    again = calibrator_from_dict(calibrator.to_dict())
    assert np.allclose(again.predict(test_x), calibrator.predict(test_x))


def test_isotonic_is_monotone_and_pools_violators() -> None:
    iso = IsotonicCalibrator.fit([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 1])
    assert np.allclose(iso.predict([0.1, 0.2, 0.3, 0.4]), [0.5, 0.5, 1.0, 1.0])
    grid = iso.predict(np.linspace(0, 1, 101))
    assert np.all(np.diff(grid) >= 0) and grid[0] == 0.5 and grid[-1] == 1.0
    with pytest.raises(ValueError, match="non-decreasing"):
        IsotonicCalibrator((0.0, 1.0), (1.0, 0.0))


def test_platt_recovers_a_logistic_link() -> None:
    rng = np.random.default_rng(3)
    x = rng.normal(size=20000)
    y = rng.random(x.size) < 1 / (1 + np.exp(-(2.0 * x - 0.5)))
    platt = PlattCalibrator.fit(x, y)
    assert platt.a == pytest.approx(2.0, abs=0.1) and platt.b == pytest.approx(-0.5, abs=0.1)
    # Separable data stays finite thanks to Platt's smoothed targets.
    assert np.all(np.isfinite(PlattCalibrator.fit([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]).predict([0.0, 1.0])))


def test_ece_and_reliability_table_by_hand() -> None:
    conf = [0.05, 0.05, 0.95, 0.95]
    correct = [0, 0, 1, 0]
    table = reliability_table(conf, correct, bins=10)
    assert [(b.count, b.accuracy) for b in table] == [(2, 0.0), (2, 0.5)]
    assert expected_calibration_error(conf, correct) == pytest.approx((2 * 0.05 + 2 * 0.45) / 4)
    assert expected_calibration_error([1.0], [1]) == 0.0


def test_bad_inputs_say_what_to_fix() -> None:
    with pytest.raises(ValueError, match="same length"):
        expected_calibration_error([0.5], [1, 0])
    with pytest.raises(ValueError, match="booleans"):
        fit_calibrator("platt", [0.5, 0.6], [2, 1])
    with pytest.raises(ValueError, match="unknown calibrator 'beta'"):
        fit_calibrator("beta", [0.5], [1])
    with pytest.raises(ValueError, match="needs 'a'"):
        calibrator_from_dict({"kind": "platt", "b": 0.0})


def test_sample_confidence_sources() -> None:
    s = Sample("r", "p", "c", 0, 0, state=SampleState.DONE, score=0.7, logprob=-0.5, completion_tokens=4)
    assert sample_confidence(s) == 0.7
    assert sample_confidence(s, "logprob") == pytest.approx(math.exp(-0.5))  # logprob is the mean per token
    bare = Sample("r", "p", "c", 0, 0, state=SampleState.DONE, logprob=-0.5)
    assert sample_confidence(bare) == pytest.approx(math.exp(-0.5))  # no score: auto falls back to it
    assert sample_confidence(Sample("r", "p", "c", 0, 0), "score") is None
    with pytest.raises(ValueError, match="unknown confidence source"):
        sample_confidence(s, "entropy")


def test_a_nan_confidence_is_no_confidence() -> None:
    # min(0.0, nan) is 0.0, so a NaN log-probability read as the most confident sample possible.
    nan = float("nan")
    assert sample_confidence(Sample("r", "p", "c", 0, 0, logprob=nan)) is None
    assert sample_confidence(Sample("r", "p", "c", 0, 0, score=nan), "score") is None
    assert sample_confidence(Sample("r", "p", "c", 0, 0, score=nan, logprob=-0.5)) == pytest.approx(math.exp(-0.5))


@pytest.mark.parametrize("kind", ["platt", "isotonic"])
def test_labels_of_one_outcome_cannot_be_calibrated_on(kind: str) -> None:
    # All correct, isotonic said P(correct)=1 for any confidence: every first sample "certain".
    for labels in ([1, 1, 1], [0, 0, 0]):
        with pytest.raises(ValueError, match="both correct and incorrect") as err:
            fit_calibrator(kind, [0.1, 0.5, 0.9], labels)
        assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "spec, words",
    [
        ({"kind": "platt", "a": float("nan"), "b": 0.0}, "finite"),
        ({"kind": "platt", "a": "x", "b": 0.0}, "number"),
        ({"kind": "platt", "a": 1.0, "b": 0.0, "logit": "false"}, "true or false"),
        ({"kind": "isotonic", "x": [0, 1], "y": [0, 2]}, "between 0 and 1"),
        ({"kind": "isotonic", "x": [0, float("nan")], "y": [0, 1]}, "finite"),
        ({"kind": "isotonic", "x": 1, "y": 1}, "lists"),
    ],
)
def test_a_rebuilt_calibrator_maps_into_probabilities_or_says_why_not(spec, words: str) -> None:
    # Unchecked, these mapped confidences to NaN or 2.0, or raised a TypeError no caller catches.
    with pytest.raises(ValueError, match=words):
        calibrator_from_dict(spec)


def test_a_calibrator_is_read_from_the_json_file_to_dict_wrote(tmp_path) -> None:
    # A command line can only name a file: --policy confidence:calibrator=cal.json.
    import json

    fitted = fit_calibrator("platt", *miscalibrated(500, 3))
    path = tmp_path / "cal.json"
    path.write_text(json.dumps(fitted.to_dict()))
    again = calibrator_from_dict(str(path))
    assert np.allclose(again.predict([0.2, 0.9]), fitted.predict([0.2, 0.9]))
    with pytest.raises(ValueError, match="cannot read the calibrator file"):
        calibrator_from_dict(str(tmp_path / "missing.json"))
