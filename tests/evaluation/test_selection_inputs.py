"""What a researcher passes to the offline best-arm API from a notebook: numpy numbers, a spec
string, nested lists. Each either works or fails in one line that names the value and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from budgetlab.errors import InputError
from budgetlab.evaluation import ScoreMatrix
from budgetlab.evaluation.selection import (
    UCBE,
    SuccessiveHalving,
    UCBELowRank,
    Uniform,
    complete_matrix,
    make_algorithm,
    simulate,
)

SMALL = ScoreMatrix(
    np.array([[0, 0, 1, 0], [1, 1, 1, 0], [0, 1, 0, 0]]), ["a", "b", "c"], ["e1", "e2", "e3", "e4"]
)


def test_numpy_numbers_are_accepted_as_arguments() -> None:
    # Counts computed with numpy (np.int64) used to be refused as "not a whole number".
    assert simulate(UCBE(a=np.float32(0.5), batch=np.int64(2)), SMALL, 7).evaluations == 7
    assert simulate(SuccessiveHalving(budget=np.int64(12)), SMALL).best == "b"
    assert simulate(UCBELowRank(rank=np.int64(2)), SMALL).best == "b"
    assert simulate(Uniform(), SMALL, passes=np.int64(2)).evaluations == 24


def test_bools_and_fractions_are_still_refused_as_counts() -> None:
    with pytest.raises(InputError, match=r"batch must be a whole number >= 1 .*got batch=True"):
        UCBE(batch=True)
    with pytest.raises(InputError, match=r"rank must be an integer >= 0"):
        UCBELowRank(rank=1.5)


def test_make_algorithm_takes_the_spec_its_errors_suggest() -> None:
    # The error for an unknown name says "e.g. ucbe:a=1"; that form used to be refused as a name.
    assert make_algorithm("ucbe:a=2,batch=4") == UCBE(a=2, batch=4)
    with pytest.raises(InputError, match="does not take 'alpha'"):
        make_algorithm("ucbe:alpha=2")


@pytest.mark.parametrize("passes", [0, 1.5])
def test_bad_passes_are_named_as_passes(passes: float) -> None:
    # passes=0 used to read "a budget of 0 evaluations"; passes=1.5 ran with a fractional total.
    with pytest.raises(InputError, match=rf"passes must be a whole number >= 1 .*got passes={passes}"):
        simulate(Uniform(), SMALL, passes=passes)


def test_wrong_types_are_one_line_errors_not_attribute_errors() -> None:
    with pytest.raises(InputError, match=r"simulate needs a ScoreMatrix, got ndarray; wrap the scores") as info:
        simulate(Uniform(), np.zeros((3, 4)))  # type: ignore[arg-type]
    assert "\n" not in str(info.value)
    with pytest.raises(InputError, match=r"simulate needs a best-arm algorithm, got 'ucbe'; make one"):
        simulate("ucbe", SMALL)  # type: ignore[arg-type]


def test_complete_matrix_takes_nested_lists() -> None:
    pred = complete_matrix([[1.0, np.nan], [0.0, 0.0]], [[1, 1], [1, 1]], rank=0)
    assert pred.shape == (2, 2) and pred[0, 0] == pytest.approx(1.0, abs=0.2)
    with pytest.raises(InputError, match="same shape"):
        complete_matrix([[1.0, 0.0]], [1, 1])
