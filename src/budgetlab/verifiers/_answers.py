"""Extract a final answer from free text and compare answers, exactly or numerically."""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["extract_answer", "normalize_answer", "parse_number", "answers_match"]

_ANSWER_IS = re.compile(r"answer is\s*[:\"'$]*\s*(.+?)\s*(?:\.(?:\s|$)|$)", re.IGNORECASE | re.MULTILINE)
_BOXED = re.compile(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?|-?\.\d+")


def extract_answer(text: str | None) -> str | None:
    """The final answer in ``text``: the last ``\\boxed{...}``, else the last "the answer is X",
    else the last number, else the stripped text if it is a single short line."""
    if not text:
        return None
    boxed = _BOXED.findall(text)
    if boxed:
        return boxed[-1].strip()
    stated = _ANSWER_IS.findall(text)
    if stated:
        return stated[-1].strip().rstrip(".").strip("\"'$ ")
    numbers = _NUMBER.findall(text)
    if numbers:
        return numbers[-1]
    stripped = text.strip()
    return stripped if stripped and "\n" not in stripped and len(stripped) <= 100 else None


def normalize_answer(answer: str) -> str:
    """Case, surrounding space, a final period, and dollar signs do not change an answer."""
    return answer.strip().strip("$").strip().rstrip(".").strip().lower()


def parse_number(answer: str) -> Fraction | float | None:
    """``"1,234"``, ``"-3.5"``, ``"2/3"`` as numbers; anything else ``None``."""
    text = normalize_answer(answer).replace(",", "")
    if not _NUMBER.fullmatch(text):
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        try:
            return float(text)
        except ValueError:
            return None


def answers_match(answer: str, reference: str, rel_tol: float = 1e-6) -> bool:
    """Equal after normalisation, or equal as numbers within ``rel_tol``."""
    if normalize_answer(answer) == normalize_answer(reference):
        return True
    a, b = parse_number(answer), parse_number(reference)
    if a is None or b is None:
        return False
    return math.isclose(float(a), float(b), rel_tol=rel_tol, abs_tol=1e-12)
