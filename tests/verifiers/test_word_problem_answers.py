"""Answers as word problems write them: mixed numbers ("3 1/2"), several answers ("2 and 3")."""

from __future__ import annotations

import pytest

from budgetlab.verifiers._math import extract_final_answer, math_equal


@pytest.mark.parametrize(
    ("answer", "reference"),
    [("3 1/2", "3.5"), ("3 1/2", "7/2"), ("-3 1/2", "-3.5"), ("3 1/2 cups", "3.5"), ("10 1/2", "\\frac{21}{2}")],
)
def test_a_mixed_number_equals_its_value(answer: str, reference: str) -> None:
    assert math_equal(answer, reference)[0]


@pytest.mark.parametrize(("answer", "reference"), [("3 1/2", "0.5"), ("4 3/2", "5.5"), ("3 1/2", "3")])
def test_only_a_proper_fraction_after_a_whole_number_makes_a_mixed_number(answer: str, reference: str) -> None:
    assert not math_equal(answer, reference)[0]


def test_the_last_number_of_a_text_is_the_whole_mixed_number_not_its_fraction() -> None:
    assert extract_final_answer("so she has 3 1/2 cups left") == ("3 1/2", "last_number")
    assert extract_final_answer("it was 4 3/2") == ("3/2", "last_number")  # not a mixed number
    assert extract_final_answer("2 + 3 = 5") == ("5", "last_number")


def test_the_answers_are_x_and_y_is_read_as_a_stated_answer() -> None:
    from budgetlab.verifiers._math import math_equal

    text = "Solving the quadratic gives two roots. The answers are 2 and 3."
    answer, rule = extract_final_answer(text)
    assert (answer, rule) == ("2 and 3", "answer_is")
    assert math_equal(answer, "2, 3")[0]
    # a heading "Correct answers: ..." inside the reasoning is not a stated answer
    assert extract_final_answer("Correct answers: 7x = 35\nIncorrect answers: 3x = 15\nTotal: 50")[0] == "50"
