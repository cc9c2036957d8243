"""Answer extraction and comparison, and the built-in verifiers (exact, recorded, auto)."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budgetlab.core import Completion, Problem, Verdict
from budgetlab.errors import InputError
from budgetlab.verifiers import (
    VERIFIERS,
    AutoVerifier,
    ExactVerifier,
    RecordedVerifier,
    Verifier,
    answers_match,
    extract_answer,
    make_verifier,
    normalize_answer,
    parse_number,
)


# ---- extract_answer ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text,expected",
    [
        # \boxed{...}: the last one wins, one level of nested braces is kept
        ("so the result is \\boxed{42}.", "42"),
        ("first \\boxed{1} then \\boxed{ 2 }", "2"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("The answer is 5, i.e. \\boxed{7}", "7"),  # boxed beats "the answer is"
        # "the answer is X": case-insensitive, the last statement, punctuation and $ stripped
        ("The answer is 42.", "42"),
        ("the answer is: $1,234$.", "1,234"),
        ("THE ANSWER IS Paris", "Paris"),
        ('the answer is "blue".', "blue"),
        ("The answer is 3.14.", "3.14"),
        ("The answer is 1.\nWait, no. The answer is 2.", "2"),
        ("the answer is x = 5\nand 9 more", "x = 5"),
        # the last number
        ("I have 3 apples and 17 pears", "17"),
        ("total: 1,234,567 dollars", "1,234,567"),
        ("it is -12 degrees", "-12"),
        ("ratio 3/4 of it", "3/4"),
        ("value -2/3", "-2/3"),
        ("roughly 2.5 or 0.75", "0.75"),
        ("about .5 of them", ".5"),
        # a single short line without a number is the answer itself
        ("  Paris  ", "Paris"),
        # nothing usable
        ("", None),
        (None, None),
        ("two\nlines without numbers", None),
        ("x" * 101, None),
    ],
)
def test_extract_answer(text, expected) -> None:
    assert extract_answer(text) == expected


@pytest.mark.parametrize("text,expected", [("we get 5, then 7, done", "7"), ("the total is 1,234, I think", "1,234")])
def test_extract_answer_drops_a_trailing_comma(text: str, expected: str) -> None:
    assert extract_answer(text) == expected


def test_extract_answer_takes_the_last_statement_on_one_line() -> None:
    assert extract_answer("The answer is 1. Wait, no. The answer is 2.") == "2"


# ---- normalisation and numbers ---------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw,expected",
    [(" Paris. ", "paris"), ("$5$", "5"), ("ABC", "abc"), ("  $ 1,000 .", "1,000"), ("x.", "x")],
)
def test_normalize_answer(raw: str, expected: str) -> None:
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize(
    "raw,expected",
    [
        ("42", Fraction(42)),
        ("1,234", Fraction(1234)),
        ("1,234,567.5", Fraction(2469135, 2)),
        ("-3.5", Fraction(-7, 2)),
        ("2/3", Fraction(2, 3)),
        ("-2/4", Fraction(-1, 2)),
        (".25", Fraction(1, 4)),
        ("$7.$", Fraction(7)),
        ("1/0", None),
        ("abc", None),
        ("1e3", None),
        ("3 apples", None),
        ("", None),
    ],
)
def test_parse_number(raw: str, expected) -> None:
    assert parse_number(raw) == expected


@pytest.mark.parametrize(
    "answer,reference,expected",
    [
        ("42", "42", True),
        ("Paris", "paris.", True),
        ("$5$", "5", True),
        ("1,000", "1000", True),
        ("0.5", "1/2", True),
        ("-0.75", "-3/4", True),
        ("2.0", "2", True),
        ("1000000", "1000000.5", True),  # within the default rel_tol 1e-6
        ("1000000", "1000002", False),  # 2e-6 relative: outside
        ("0.33333", "1/3", False),  # 1e-5 relative: outside
        ("0.3333333", "1/3", True),
        ("0", "0.0", True),
        ("0", "1e-13", False),  # not a number this parser reads: compared as text
        ("41", "42", False),
        ("paris", "london", False),
        ("1/0", "1/0", True),  # equal as text
        ("x", "1", False),
    ],
)
def test_answers_match(answer: str, reference: str, expected: bool) -> None:
    assert answers_match(answer, reference) is expected
    assert answers_match(reference, answer) is expected  # symmetric


def test_answers_match_rel_tol() -> None:
    assert not answers_match("100", "101")
    assert answers_match("100", "101", rel_tol=0.01)
    assert not answers_match("100", "102", rel_tol=0.01)
    assert answers_match("0", "0", rel_tol=0.0)


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_thousands_separators_round_trip(n: int) -> None:
    with_commas = f"{n:,}"
    assert parse_number(with_commas) == n
    assert answers_match(with_commas, str(n))
    assert extract_answer(f"so we get {with_commas} in total") == with_commas


@given(st.fractions(min_value=-1000, max_value=1000, max_denominator=1000))
def test_fractions_and_decimals_agree(q: Fraction) -> None:
    frac = f"{q.numerator}/{q.denominator}"
    assert parse_number(frac) == q
    assert answers_match(frac, repr(float(q)))


# ---- verifiers -------------------------------------------------------------------------------------
def _p(reference: str | None = "42") -> Problem:
    return Problem("q", prompt="?", reference=reference)


@pytest.mark.parametrize("cls", [ExactVerifier, RecordedVerifier, AutoVerifier])
def test_builtins_are_verifiers(cls) -> None:
    v = cls()
    assert isinstance(v, Verifier)
    assert v.max_seconds >= 0 and v.name in VERIFIERS and isinstance(make_verifier(v.name), cls)


def test_exact_verifier() -> None:
    v = ExactVerifier()
    # the answer is extracted from the text when the backend gives none
    assert v.verify(_p(), Completion(text="... so \\boxed{42}")) == Verdict(answer="42", correct=True)
    assert v.verify(_p(), Completion(text="the answer is 41.")) == Verdict(answer="41", correct=False)
    assert v.verify(_p("1/2"), Completion(text="it is 0.5")) == Verdict(answer="0.5", correct=True)
    # a recorded answer takes precedence over the text, and its recorded verdict is ignored
    assert v.verify(_p(), Completion(text="\\boxed{41}", answer="42", correct=False)) == Verdict("42", True)
    assert v.verify(_p(), Completion(answer="7", correct=True)) == Verdict("7", False)
    # no answer at all: wrong when there is a reference
    assert v.verify(_p(), Completion(text=None)) == Verdict(answer=None, correct=False)
    # no reference: the verdict is unknown
    assert v.verify(_p(None), Completion(text="\\boxed{42}", correct=True)) == Verdict(answer="42", correct=None)
    # tolerance is configurable
    assert ExactVerifier(rel_tol=0.1).verify(_p("100"), Completion(answer="105")).correct is True
    assert ExactVerifier().verify(_p("100"), Completion(answer="105")).correct is False


def test_recorded_verifier_trusts_the_recording() -> None:
    v = RecordedVerifier()
    assert v.max_seconds == 0.0
    c = Completion(text="\\boxed{1}", answer="9", correct=True, score=0.25)
    assert v.verify(_p("1"), c) == Verdict(answer="9", correct=True, score=0.25)
    assert v.verify(_p(None), Completion()) == Verdict(None, None, None)


def test_auto_verifier_uses_the_reference_when_there_is_one() -> None:
    v = AutoVerifier()
    c = Completion(text="so 41", answer="42", correct=False, score=0.5)
    # with a reference: judged against it (the recorded verdict is overridden), score kept
    assert v.verify(_p("42"), c) == Verdict(answer="42", correct=True, score=0.5)
    assert v.verify(_p("41"), Completion(text="so 41")) == Verdict(answer="41", correct=True)
    # without one: the recorded verdict
    assert v.verify(_p(None), c) == Verdict(answer="42", correct=False, score=0.5)
    assert v.verify(_p(None), Completion(text="so 41")) == Verdict(answer=None, correct=None)
    assert AutoVerifier(rel_tol=0.5).verify(_p("10"), Completion(answer="14")).correct is True


def test_make_verifier() -> None:
    assert isinstance(make_verifier("auto"), AutoVerifier)
    assert make_verifier("exact", {"rel_tol": 0.01}) == ExactVerifier(rel_tol=0.01)
    assert isinstance(make_verifier("recorded"), RecordedVerifier)
    with pytest.raises(InputError, match=r"unknown verifier 'llm-judge'; use one of: .*auto.*exact.*recorded"):
        make_verifier("llm-judge")
    with pytest.raises(InputError, match=r"recorded.* does not take.*rel_tol"):
        make_verifier("recorded", {"rel_tol": 0.1})


def test_exact_and_regex_verifiers_spell_each_number_one_way() -> None:
    from budgetlab.verifiers import RegexVerifier, canonical_number, vote_form

    assert [canonical_number(Fraction(n, d)) for n, d in ((1, 2), (-5, 4), (1, 3), (12, 1), (1, 1000))] == ["0.5", "-1.25", "1/3", "12", "0.001"]
    assert [vote_form(a) for a in ("18.0", "1,234", "2/4", "abc", None)] == ["18", "1234", "0.5", "abc", None]
    problem = Problem("p", "?", reference="18")
    assert ExactVerifier().verify(problem, Completion(text="It costs 18.00")).answer == "18"
    assert RegexVerifier(r"= (\S+)$").verify(problem, Completion(text="x = 18.0")).answer == "18"
