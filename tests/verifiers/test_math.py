"""The ``math`` verifier: final-answer extraction (rules and their order) and equivalence
(numeric, normalised text, math-verify)."""

from __future__ import annotations

import sys

import pytest

from budgetlab.core import Completion, Problem
from budgetlab.errors import BudgetlabError, InputError
from budgetlab.verifiers import (
    MathVerifier,
    extract_final_answer,
    make_verifier,
    math_equal,
)
from budgetlab.verifiers._math import parse_plain_number

pytest.importorskip("math_verify", reason="math-verify is not installed (pip install 'budgetlab[math]')")


@pytest.mark.parametrize(
    "text,expected",
    [
        ("so \\boxed{\\frac{1}{2}} done", ("\\frac{1}{2}", "boxed")),
        ("\\boxed{\\left(3, \\frac{\\pi}{2}\\right)}", ("\\left(3, \\frac{\\pi}{2}\\right)", "boxed")),  # nested braces
        ("first \\boxed{1}, then \\fbox{2}", ("2", "boxed")),
        ("The answer is 1,234 dollars.", ("1,234 dollars", "answer_is")),
        ("Final Answer: The final answer is $\\$36$. I hope it is correct.", ("\\$36", "answer_is")),
        ("She makes 9 * 2 = 18 dollars.\n#### 18", ("18", "answer_is")),
        ("**Answer:** 42", ("42", "answer_is")),
        ("the answer is \\boxed{7} really", ("7", "boxed")),
        ("First 3, then 4.5 and finally -2/3", ("-2/3", "last_number")),
        ("it is \\frac{3}{4} of the cake", ("\\frac{3}{4}", "last_number")),
        ("nothing numeric here", (None, None)),
        ("", (None, None)),
    ],
)
def test_extraction_auto(text: str, expected) -> None:
    assert extract_final_answer(text) == expected


def test_extraction_order_is_configurable() -> None:
    text = "The answer is 5. Check: \\boxed{6}, and 7 remain."
    assert extract_final_answer(text)[0] == "6"
    assert extract_final_answer(text, "answer_is+boxed")[0] == "5"
    assert extract_final_answer(text, "last_number")[0] == "7"
    assert extract_final_answer(text, ["answer_is"])[0] == "5"


def test_multiple_choice_letters() -> None:
    text = "I first thought (A), but the answer is (C)."
    assert extract_final_answer(text, reference="C") == ("C", "choice")
    assert extract_final_answer("Answer: B", reference="B") == ("B", "choice")
    assert extract_final_answer("the answer is a banana", "choice") == (None, None)  # lower case is a word
    v = MathVerifier()
    assert v.verify(Problem("q", reference="C"), Completion(text=text)).correct is True
    assert v.verify(Problem("q", reference="B"), Completion(text="\\boxed{\\text{(B)}}")).correct is True
    assert v.verify(Problem("q", reference="B"), Completion(text=text)).correct is False


@pytest.mark.parametrize(
    "answer,reference,equal,method",
    [
        ("18 dollars", "18", True, "numeric"),
        ("\\$18.00", "18", True, "numeric"),
        ("1,234", "1234", True, "numeric"),
        ("1{,}234", "1234", True, "numeric"),
        ("0.5", "\\frac{1}{2}", True, "numeric"),
        ("\\dfrac{1}{2}", "1/2", True, "numeric"),
        ("\\frac12", "0.5", True, "numeric"),
        ("x = 5", "5", True, "numeric"),
        ("50%", "50", True, "numeric"),
        ("10^\\circ", "10", True, "numeric"),
        ("1450001", "1450000", False, "numeric"),  # whole numbers compare exactly, not within rel_tol
        ("0.3333333", "\\frac{1}{3}", True, "numeric"),
        ("0.33", "\\frac{1}{3}", False, "numeric"),
        ("4", "5", False, "numeric"),
        ("\\text{Evelyn}", "Evelyn", True, "text"),
        ("(3, \\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)", True, "math-verify"),
        ("2\\sqrt{3}", "\\sqrt{12}", True, "math-verify"),
        ("x^2+2x", "2x + x^2", True, "math-verify"),
        ("[1, 2)", "[1,2)", True, "text"),
        ("(1, 2)", "[1, 2)", False, "math-verify"),
        ("\\sqrt{2}", "1.41", False, "math-verify"),
    ],
)
def test_math_equal(answer: str, reference: str, equal: bool, method: str) -> None:
    assert math_equal(answer, reference) == (equal, method)


@pytest.mark.parametrize(
    "raw,value",
    [("1,234", 1234), ("$18", 18), ("18 dollars", 18), ("-3.5", -3.5), ("\\frac{3}{4}", 0.75), ("x = 2", 2),
     ("(1, 2)", None), ("x^2", None), ("1,2", None), ("", None)],
)
def test_parse_plain_number(raw: str, value) -> None:
    parsed = parse_plain_number(raw)
    assert (None if parsed is None else float(parsed)) == value


def test_math_verifier() -> None:
    v = MathVerifier()
    assert v.name == "math" and v.max_seconds > 0
    p = Problem("q", prompt="?", reference="\\frac{3}{4}")
    verdict = v.verify(p, Completion(text="so the answer is $0.75$."))
    assert verdict.correct is True and verdict.answer == "0.75"
    assert verdict.details == {"rule": "answer_is", "method": "numeric"}
    assert v.verify(p, Completion(text="\\boxed{\\frac{6}{8}}")).correct is True
    assert v.verify(p, Completion(text="\\boxed{\\frac{5}{8}}")).correct is False
    assert v.verify(p, Completion(text="no idea")).correct is False
    assert v.verify(p, Completion(text="whatever", answer="3/4")).details["rule"] == "recorded"
    assert v.verify(Problem("q"), Completion(text="\\boxed{1}")).correct is None  # no reference: unknown
    assert MathVerifier(rel_tol=0.1).verify(Problem("q", reference="10.0"), Completion(text="10.5")).correct is True


def test_options_and_missing_dependency(monkeypatch) -> None:
    assert make_verifier("math:extract=boxed+last_number").extract == "boxed+last_number"
    with pytest.raises(InputError, match=r"unknown rules \['nonsense'\]"):
        MathVerifier(extract="boxed+nonsense")
    with pytest.raises(InputError, match=r"rel_tol"):
        MathVerifier(rel_tol=-1)
    monkeypatch.setitem(sys.modules, "math_verify", None)
    with pytest.raises(BudgetlabError, match=r"the math verifier needs the package 'math-verify'.*pip install 'budgetlab\[math\]'"):
        MathVerifier()


def test_words_are_compared_as_text_not_as_products_of_symbols() -> None:
    # math-verify reads "rbye" as r*b*y*e, equal to "rbey": word answers (last letters, names)
    # must match as text, or a math verifier marks anagrams right.
    assert math_equal("rbye", "rbey") == (False, "text")
    assert math_equal("red blue", "blue red") == (False, "text")
    assert math_equal("Yes", "yes") == (True, "text")
    assert math_equal("2ab", "2ba")[0]  # algebra with a number in it is still compared symbolically


def test_equal_numbers_written_differently_are_one_answer_so_their_votes_pool() -> None:
    from budgetlab.core import Sample, SampleState
    from budgetlab.selectors import MajorityVote

    verifier = MathVerifier()
    problem = Problem("p", "half of 1?", reference="0.5")
    texts = ["so \\boxed{\\frac{1}{2}}", "The answer is 1/2.", "#### 0.50", "\\boxed{1/3}", "\\boxed{1/3}"]
    verdicts = [verifier.verify(problem, Completion(text=t)) for t in texts]
    assert [v.answer for v in verdicts] == ["0.5", "0.5", "0.5", "1/3", "1/3"]
    assert verdicts[0].details["as_written"] == "\\frac{1}{2}" and "as_written" not in verdicts[3].details
    samples = [Sample("r", "p", "c", i, 0, state=SampleState.DONE, answer=v.answer, correct=v.correct) for i, v in enumerate(verdicts)]
    chosen = MajorityVote().select(samples)
    assert (chosen.answer, chosen.correct, chosen.confidence) == ("0.5", True, 0.6)


def test_the_one_spelling_never_rounds_a_number() -> None:
    verifier = MathVerifier()
    answers = [verifier.verify(Problem("p", "?", reference="1/3"), Completion(text=f"\\boxed{{{t}}}")).answer
               for t in ("0.333", "\\frac{2}{6}", "1,450,001", "-\\frac{5}{4}", "x = 7", "\\sqrt{2}")]  # fmt: skip
    assert answers == ["0.333", "1/3", "1450001", "-1.25", "7", "\\sqrt{2}"]


def test_an_answer_line_that_opens_the_reasoning_is_not_the_final_answer() -> None:
    # GPT-4 on GSM8K as recorded by MoT-cascade (shared data): "Answer:" opens the chain of
    # thought and "ans = X" ends it; the first sentence was taken as the answer, so 94% of
    # correct samples were judged wrong.
    cot = ("Answer: Janet uses 3 eggs for breakfast and 4 for muffins, so she uses 3 + 4 = <<3+4=7>>7 eggs daily.\n"
           "She sells each egg for $2, so she makes 9 * 2 = $<<9*2=18>>18 per day.\nans = 18")
    assert extract_final_answer(cot) == ("18", "last_number")
    assert extract_final_answer("Answer: Marcia has 4 + 2 = <<4+2=6>>6 pets.\nSo 4 + 6 + 18 = 28 pets.\nans = 28")[0] == "28"
    assert MathVerifier().verify(Problem("q", reference="18"), Completion(text=cot)).correct is True
    # an answer stated first, then explained, or a sentence that ends the text, is still the answer
    assert extract_final_answer("Answer: 42\n\nExplanation: 6 * 7 is 42, not 41.")[0] == "42"
    assert extract_final_answer("Answer: Web Page Design class\nIt has the most students.")[0] == "Web Page Design class"
    assert extract_final_answer("The answer is 18. That is how much she makes.\nDone in 3 steps.")[0] == "18"
    assert extract_final_answer("30 - 20 = 10\n\nAnswer: A jade is 10 g heavier than a diamond.")[0] == "A jade is 10 g heavier than a diamond"
    # an abbreviation's full stop does not end the answer
    assert extract_final_answer('we will choose "Mr. Watson".\nAnswer: Mr. Watson') == ("Mr. Watson", "answer_is")


@pytest.mark.parametrize(
    "answer,reference",
    [
        ("1:45 P.M.", "1:15 P.M."),  # TabMWP (MoT-cascade): math-verify judged these equal
        ("5:00 P.M.", "5:45 P.M."),
        ("01/02/2020", "02/04/2020"),  # both 1/4040 as divisions
        ("2", "Each term in pattern B can be found by multiplying the corresponding term in pattern A by 4 and then subtracting 2."),
    ],
)
def test_times_dates_and_sentences_are_not_read_as_numbers(answer: str, reference: str) -> None:
    assert math_equal(answer, reference) == (False, "text")
    assert math_equal(reference, reference)[0] and math_equal("1:45 p.m.", "1:45 P.M.")[0]


def test_scientific_notation_a_plus_sign_and_the_minus_sign_are_numbers_whose_votes_pool() -> None:
    assert [math_equal(a, b) for a, b in (("1e3", "1000"), ("+5", "5"), ("\u22125", "-5"), ("2.5E-3", "0.0025"))] == [(True, "numeric")] * 4
    assert math_equal("1e3", "1001") == (False, "numeric")
    verifier, problem = MathVerifier(), Problem("p", "?", reference="1000")
    texts = ["The answer is 1e3.", "\\boxed{1,000}", "The answer is 1000.0", "\\boxed{+1000}", "\\boxed{1.0E3}"]
    assert {verifier.verify(problem, Completion(text=t)).answer for t in texts} == {"1000"}
    assert extract_final_answer("so it is about 3e5")[0] == "3e5"


def test_the_answer_is_read_after_the_thinking_not_from_it() -> None:
    from budgetlab.verifiers import extract_answer

    text = "Maybe 5? The answer is 5.</think>\nFinal answer: 7"
    assert extract_answer(text) == "7"
    assert extract_final_answer(text)[0] == "7"
    assert MathVerifier().verify(Problem("p", "?", reference="7"), Completion(text=text)).correct is True
    # Cut while thinking: no final answer, not one of the candidates it was weighing.
    assert extract_final_answer("so it is 5</think>")[0] is None and extract_answer("so 5</think>  ") is None
