"""The ``math`` verifier: extract the final answer from free text, then judge it equal to the
reference numerically (plain numbers, units and separators ignored) or symbolically with Hugging
Face's ``math-verify`` (LaTeX: fractions, roots, intervals, sets, matrices, ...).

Extraction rules (the ``extract`` argument chooses them and their order, first match wins):

* ``boxed``: the last ``\\boxed{...}`` / ``\\fbox{...}`` (nested braces allowed);
* ``answer_is``: the last "the (final) answer is X", "the answers are X and Y", "Answer: X" or "#### X";
* ``choice``: a multiple-choice letter, "(B)", "answer: B", "option B";
* ``last_number``: the last number in the text (``1,234``, ``-3.5``, ``2/3``, ``3 1/2``, ``\\frac{2}{3}``).

``auto`` (the default) is ``boxed, answer_is, last_number``, or ``boxed, choice, answer_is``
when the reference is a single letter. In a spec, join rules with ``+``: ``math:extract=boxed+last_number``.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from fractions import Fraction
from functools import lru_cache
from typing import Any

from budgetlab.core import Completion, Problem, Verdict
from budgetlab.errors import InputError, pip_dependency_error
from budgetlab.verifiers._answers import (
    after_thinking,
    canonical_number,
    numbers_close,
    to_fraction,
)

__all__ = ["EXTRACTION_RULES", "MathVerifier", "extract_final_answer", "math_equal", "parse_plain_number"]

EXTRACTION_RULES = ("boxed", "answer_is", "choice", "last_number")

_BOX_START = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_IS = re.compile(
    r"answer(?:\s*is\s*[:=]?|s\s*are\s*[:=]?|\s*[:=])\s*(.+?)\s*(?:(?<!\bMr)(?<!\bMrs)(?<!\bMs)(?<!\bDr)(?<!\bSt)\.(?:\s|$)|$)",
    re.IGNORECASE | re.MULTILINE,
)  # the first full stop ends it, not the one of "Mr. Watson"
_HASHES = re.compile(r"^\s*####\s*(.+?)\s*$", re.MULTILINE)
_CHOICE = re.compile(
    r"(?i:answer|option|choice)\s*(?i:is)?\s*:?\s*(?:\\text\{)?\(?\s*([A-J])\s*\)?(?![A-Za-z])|\(([A-J])\)"
)
_NUMBER = re.compile(
    r"\\[dt]?frac\{\s*-?\d+\s*\}\{\s*-?\d+\s*\}|-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+(?![A-Za-z])|/\d+)?|-?\.\d+"
)
# 3 1/2: a whole number and a proper fraction, one space apart (recipes, GSM8K-style word problems)
_MIXED = re.compile(r"^(-?)(\d+) (\d+)/(\d+)(?![\d/])")
_MIXED_IN_TEXT = re.compile(r"(?<![\d/.,])-?\d+ \d+/\d+(?![\d/])")
_FRAC = re.compile(r"^(-?)\\[dt]?frac\{\s*(-?\d+)\s*\}\{\s*(-?\d+)\s*\}$")
_FRAC_SHORT = re.compile(r"^(-?)\\[dt]?frac(\d)(\d)$")
_THOUSANDS = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_PLAIN = re.compile(r"^-?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+|[eE][+-]?\d+)?$")  # 1e3: scientific notation too
# 18 cm, 18cm, 18 m, 18 cm^2, 90°: a word of 2+ letters, or one letter after a space (a glued
# letter is algebra: "3x" is not "3y", "5i" is not 5)
_UNIT_TAIL = re.compile(
    r"^(-?[\d.,/]+)(?:(?:\s*[A-Za-z]{2,}[A-Za-z .]*|\s+[A-Za-z](?:[ .][A-Za-z .]*)?)(?:\^\{?[23]\}?)?"
    r"|\s*(?:°|\^\\circ|\^\{\\circ\}))$"
)
_TIMES_TEN = re.compile(r"^(-?(?:\d+(?:\.\d*)?|\.\d+))\s*(?:\\times|\\cdot|×)\s*10\s*\^\s*(?:\{\s*([+-]?\d+)\s*\}|([+-]?\d))$")
_LATEX_SPACES = re.compile(r"\\[,;:! ]|\\quad|\\qquad")
_TEXT = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


# ---- extraction ---------------------------------------------------------------------------------------
_PROSE_WORD = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{2,}")  # a word of 2+ letters, not a LaTeX command


def _is_prose(text: str) -> bool:
    """A sentence rather than an answer: 4 or more words (LaTeX commands and math not counted)."""
    return len(_PROSE_WORD.findall(re.sub(r"\$[^$]*\$", " ", text))) >= 4


def _opens_reasoning(text: str, stated: re.Match[str]) -> bool:
    """Whether an "Answer: ..." opens a chain of thought rather than stating the final answer:
    "Answer: Janet uses 3 eggs for ...\\n...\\nans = 18" or "Answer: Marcia has 4 + 2 = 6 pets.\\n...".
    It does when more lines follow its line and it is not a number but a sentence (5 or more words
    on its line) or a computation (an "=" among words)."""
    answer = stated.group(1)
    line_end = text.find("\n", stated.start(1))
    if line_end < 0 or not text[line_end:].strip() or parse_plain_number(answer) is not None:
        return False
    return len(_PROSE_WORD.findall(text[stated.start(1) : line_end])) >= 5 or (
        "=" in answer and len(_PROSE_WORD.findall(answer)) >= 2
    )


def _last_boxed(text: str) -> str | None:
    found = None
    for match in _BOX_START.finditer(text):
        depth, i = 1, match.end()
        while i < len(text) and depth:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        if depth == 0:
            found = text[match.end() : i - 1].strip()
    return found


def _rule(name: str, text: str) -> str | None:
    if name == "boxed":
        return _last_boxed(text)
    if name == "answer_is":
        found = [(m.start(), m.group(1)) for m in _HASHES.finditer(text)]
        for start in (m.start() for m in re.finditer("answer", text, re.IGNORECASE)):
            stated = _ANSWER_IS.match(text, start)  # at every "answer": "Answer: the final answer is X"
            if stated and not _opens_reasoning(text, stated):
                found.append((start, stated.group(1)))
        if not found:
            return None
        answer = max(found)[1].strip().strip("\"'*").strip()
        if answer.startswith("$") and answer.endswith("$") and len(answer) > 1:
            answer = answer.strip("$").strip()
        boxed = _last_boxed(answer)
        return boxed if boxed is not None else (answer or None)
    if name == "choice":
        matches = _CHOICE.findall(text)
        return (matches[-1][0] or matches[-1][1]).upper() if matches else None
    if name == "last_number":
        numbers = [(m.start(), m.group()) for m in _NUMBER.finditer(text)]
        numbers += [(m.start(), m.group()) for m in _MIXED_IN_TEXT.finditer(text) if _mixed_number(m.group()) is not None]
        # a mixed number starts before the fraction it ends with: the latest start is not it
        return max(numbers, key=lambda n: (n[0] + len(n[1]), -n[0]))[1] if numbers else None
    raise InputError(f"unknown answer extraction rule {name!r}; use auto or some of: {', '.join(EXTRACTION_RULES)}")


def _rules(extract: str | Sequence[str], reference: str | None) -> list[str]:
    names = re.split(r"[+|/ ]+", extract.strip()) if isinstance(extract, str) else list(extract)
    out: list[str] = []
    for name in names:
        if name == "auto":
            letter = reference is not None and re.fullmatch(r"\(?[A-J]\)?", reference.strip()) is not None
            out += ["boxed", "choice", "answer_is"] if letter else ["boxed", "answer_is", "last_number"]
        elif name:
            out.append(name)
    return out


def extract_final_answer(text: str | None, extract: str | Sequence[str] = "auto", reference: str | None = None) -> tuple[str | None, str | None]:
    """The final answer in ``text`` (after its thinking: text up to the last ``</think>`` is
    not read) and the rule that found it: ``(answer, rule)``, or ``(None, None)``."""
    text = after_thinking(text) if text else text
    if not text:
        return None, None
    for name in _rules(extract, reference):
        answer = _rule(name, text)
        if answer:
            return answer, name
    return None, None


# ---- comparison ---------------------------------------------------------------------------------------
def _strip_latex(answer: str) -> str:
    s = answer.strip()
    for _ in range(3):
        s = s.strip().strip("$").strip()
        if s.startswith("\\(") and s.endswith("\\)"):
            s = s[2:-2]
        if s.startswith("\\[") and s.endswith("\\]"):
            s = s[2:-2]
        boxed = _last_boxed(s)
        if boxed is not None and s.startswith(("\\boxed", "\\fbox")):
            s = boxed
    s = _LATEX_SPACES.sub("", s).replace("{,}", ",").replace("\\left", "").replace("\\right", "")
    s = _TEXT.sub(lambda m: " " + m.group(1) + " ", s)
    s = s.replace("\\%", "%").replace("\\$", "$").replace("^\\circ", "").replace("^{\\circ}", "").replace("°", "")
    return s.strip().rstrip(".").strip()


def parse_plain_number(answer: str) -> Fraction | None:
    """A plain number, read forgivingly: ``"1,234"``, ``"$18"``, ``"18 dollars"``, ``"10%"``,
    ``"x = 5"``, ``"\\frac{3}{4}"``, ``"0.50"``; anything else (an expression, a tuple) ``None``."""
    s = _strip_latex(answer)
    s = re.sub(r"^[A-Za-z]\s*=\s*", "", s)  # "x = 5"
    s = s.replace("$", "").replace("%", "").replace("\u2212", "-").strip()  # U+2212: the minus sign
    s = re.sub(r"^\+\s*(?=[\d.])", "", s)  # "+5"
    s = re.sub(r"^(?:USD|US\$|EUR|€|£)\s*", "", s).strip()
    mixed = _MIXED.match(s)
    if mixed and (value := _mixed_number(mixed.group())) is not None:
        s = f"{value.numerator}/{value.denominator}{s[mixed.end():]}"  # "3 1/2 cups" -> "7/2 cups"
    m = _UNIT_TAIL.match(s)
    if m:
        s = m.group(1)
    m = _TIMES_TEN.match(s)  # 6.02 \times 10^{23}: scientific notation
    if m:
        s = f"{m.group(1)}e{m.group(2) or m.group(3)}"
    frac = _FRAC.match(s) or _FRAC_SHORT.match(s)
    if frac:
        sign, num, den = frac.groups()
        value = to_fraction(f"{num.lstrip('-')}/{den.lstrip('-')}")
        if value is None:  # n/0, or too large
            return None
        negative = bool(sign) ^ num.startswith("-") ^ den.startswith("-")
        return -value if negative else value
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    if not _PLAIN.match(s):
        return None
    return to_fraction(s)  # None for a number too large to spell exactly (1e999999999)


def _mixed_number(text: str) -> Fraction | None:
    """``"3 1/2"`` as 7/2; ``None`` unless the fraction is proper ("4 3/2" is no mixed number)."""
    whole, num, den = re.split(r"[ /]", text.lstrip("-"))
    if not 0 < int(num) < int(den):
        return None
    value = int(whole) + Fraction(int(num), int(den))
    return -value if text.startswith("-") else value


def _normal_text(answer: str) -> str:
    s = _strip_latex(answer).lower()
    s = re.sub(r"\s+", "", s).strip("$").strip()
    return s[1] if re.fullmatch(r"\([a-j]\)", s) else s


@lru_cache(maxsize=8192)
def _parsed(expression: str, timeout: int | None) -> tuple[Any, ...]:
    from math_verify import parse

    text = expression if "$" in expression or "\\boxed" in expression else f"${expression}$"
    try:
        return tuple(parse(text, parsing_timeout=timeout))
    except Exception:
        return ()


_WORDS = re.compile(r"[A-Za-z]{2,}(?:\s+[A-Za-z]+)*")
_CLOCK_OR_DATE = re.compile(r"\d:\d\d|\d/\d+/\d")  # 1:45 P.M., 05/01/2021


def math_equal(answer: str, reference: str, rel_tol: float = 1e-6, timeout: int | None = 5) -> tuple[bool, str]:
    """Whether two final answers are equal, and how it was decided: ``numeric`` (both plain
    numbers: whole numbers exactly, others within ``rel_tol``), ``text`` (equal after normalisation) or ``math-verify``."""
    a, b = parse_plain_number(answer), parse_plain_number(reference)
    if a is not None and b is not None:
        if a.denominator == 1 and b.denominator == 1:  # whole numbers: exactly (1450001 is not 1450000)
            return a == b, "numeric"
        return a == b or numbers_close(a, b, rel_tol, 1e-9), "numeric"
    if _normal_text(answer) == _normal_text(reference):
        return True, "text"
    if _WORDS.fullmatch(answer.strip()) and _WORDS.fullmatch(reference.strip()):
        # Words, not algebra: math-verify reads "rbye" as the product r*b*y*e, equal to "rbey".
        return False, "text"
    if _is_prose(reference) or any(_CLOCK_OR_DATE.search(s) for s in (answer, reference)):
        # A sentence, a time or a date: math-verify reads "... then subtracting 2." as 2, "1:45 P.M."
        # as 1:15 P.M.'s equal and 01/02/2020 as 1/4040, the value of 02/04/2020.
        return False, "text"
    if threading.current_thread() is not threading.main_thread():
        timeout = None  # math-verify times out with SIGALRM, which only the main thread may use
    gold, pred = _parsed(reference, timeout), _parsed(answer, timeout)
    if not gold or not pred:
        return False, "math-verify"
    from math_verify import verify

    try:
        return bool(verify(list(gold), list(pred), timeout_seconds=timeout)), "math-verify"
    except Exception:
        return False, "math-verify"


class MathVerifier:
    """Extract the final answer (``extract``: rules in order, see the module) and compare it
    with the reference: numbers within ``rel_tol``, else symbolically with math-verify (each
    parse and comparison stops after ``timeout`` seconds in the main thread). A recorded answer
    (a replayed sample's) is used as it is. A plain number is returned in one spelling
    (:func:`~budgetlab.verifiers.canonical_number`) so that votes for equal numbers pool; the
    answer as written is kept in ``details["as_written"]``. Without a reference the verdict is
    unknown."""

    name = "math"
    verify_threads = 0  # math-verify's timeouts are signal alarms: main thread only (runner/_off_loop.py)
    needs_reference = True  # it judges nothing without one: a run of it on problems with none is refused

    def __init__(self, extract: str = "auto", rel_tol: float = 1e-6, timeout: int = 5) -> None:
        try:
            import math_verify
        except ImportError:
            raise pip_dependency_error("the math verifier", "math-verify", extra="math") from None
        unknown = [r for r in _rules(extract, None) if r not in EXTRACTION_RULES]
        if unknown or not _rules(extract, None):
            raise InputError(
                f"math verifier extract={extract!r} names unknown rules {unknown}; use auto or rules from "
                f"{', '.join(EXTRACTION_RULES)} joined with +, e.g. math:extract=boxed+last_number"
            )
        if not (isinstance(rel_tol, (int, float)) and rel_tol >= 0):
            raise InputError(f"math verifier rel_tol={rel_tol!r} must be a number >= 0; e.g. math:rel_tol=1e-6")
        self.extract = extract
        self.rel_tol = float(rel_tol)
        self.timeout = int(timeout) if timeout else None
        self.max_seconds = 2.0 * (self.timeout or 5)

    def verify(self, problem: Problem, completion: Completion) -> Verdict:
        rule = "recorded"
        answer = completion.answer
        if answer is None:
            answer, rule = extract_final_answer(completion.text, self.extract, problem.reference)
        if answer is None:
            return Verdict(answer=None, correct=None if problem.reference is None else False, details={"rule": None})
        details: dict[str, Any] = {"rule": rule}
        number = parse_plain_number(answer)
        if number is not None and canonical_number(number) != answer:
            # Votes count answers as written: "1/2", "0.50" and "\frac{1}{2}" must be one answer.
            details["as_written"] = answer
            answer = canonical_number(number)
        if problem.reference is None:
            return Verdict(answer=answer, correct=None, details=details)
        correct, details["method"] = math_equal(answer, problem.reference, self.rel_tol, self.timeout)
        return Verdict(answer=answer, correct=correct, details=details)
