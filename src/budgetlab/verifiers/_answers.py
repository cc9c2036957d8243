"""Extract a final answer from free text and compare answers, exactly or numerically."""

from __future__ import annotations

import re
from fractions import Fraction

__all__ = [
    "after_thinking", "answers_match", "canonical_number", "extract_answer", "normalize_answer", "numbers_close",
    "parse_number", "to_fraction", "vote_form",
]  # fmt: skip

_ANSWER_IS = re.compile(r"answer is\s*[:\"'$]*\s*(.+?)\s*(?:\.(?:\s|$)|$)", re.IGNORECASE | re.MULTILINE)
_BOXED = re.compile(r"\\boxed\{([^{}]*(?:\{[^{}]*\}[^{}]*)*)\}")
_NUMBER = re.compile(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?|-?\d+(?:\.\d+)?(?:/\d+)?|-?\.\d+")


#: Where a reasoning model's thinking ends (DeepSeek-R1, Qwen3, s1 and budget forcing's default).
THINK_END = "</think>"


def after_thinking(text: str) -> str:
    """The part of ``text`` after the last ``</think>``: the answer a reasoning model gives once
    it has thought, not the candidates it weighed while thinking. Text without it is returned whole."""
    at = text.rfind(THINK_END)
    return text if at < 0 else text[at + len(THINK_END) :]


def extract_answer(text: str | None) -> str | None:
    """The final answer in ``text`` (after its thinking, see :func:`after_thinking`): the last
    ``\\boxed{...}``, else the last "the answer is X", else the last number, else the stripped
    text if it is a single short line."""
    text = after_thinking(text) if text else text
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


# A number an answer may spell exactly: numerator and denominator of at most this many bits
# (~1200 digits). Beyond it a model's "1e999999999" would take minutes and gigabytes to expand,
# and Python refuses to print integers of more than 4300 digits.
_MAX_BITS = 4000
_EXPONENT = re.compile(r"[eE]([+-]?\d+)$")


def to_fraction(text: str) -> Fraction | None:
    """``Fraction(text)`` for a number of reasonable size (see ``_MAX_BITS``), else ``None``
    (also when ``text`` is not a number)."""
    exponent = _EXPONENT.search(text)
    if exponent and (len(exponent.group(1)) > 6 or abs(int(exponent.group(1))) > _MAX_BITS):
        return None
    if len(text) > _MAX_BITS:
        return None
    try:
        value = Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None
    if value.numerator.bit_length() > _MAX_BITS or value.denominator.bit_length() > _MAX_BITS:
        return None
    return value


def numbers_close(a: Fraction | float, b: Fraction | float, rel_tol: float, abs_tol: float) -> bool:
    """``math.isclose`` computed exactly: no overflow for numbers beyond a float's range."""
    try:
        x, y = Fraction(a), Fraction(b)
    except (OverflowError, ValueError):  # inf, nan
        return a == b
    return abs(x - y) <= max(Fraction(rel_tol) * max(abs(x), abs(y)), Fraction(abs_tol))


def parse_number(answer: str) -> Fraction | float | None:
    """``"1,234"``, ``"-3.5"``, ``"2/3"`` as numbers; anything else ``None``."""
    text = normalize_answer(answer).replace(",", "")
    if not _NUMBER.fullmatch(text):
        return None
    value = to_fraction(text)
    if value is not None:
        return value
    try:  # too long to spell exactly ("2/0" is no number)
        return float(text)
    except ValueError:
        return None


def canonical_number(value: Fraction) -> str:
    """One spelling per number, so that votes for ``"1/2"``, ``"0.50"`` and ``"\\frac{1}{2}"``
    pool: a whole number as an integer, a terminating decimal in shortest decimal form, any
    other fraction as ``p/q`` (never rounded: ``0.333`` and ``1/3`` stay apart)."""
    if value.denominator == 1:
        return str(value.numerator)
    rest = value.denominator
    twos = fives = 0
    while rest % 2 == 0:
        rest, twos = rest // 2, twos + 1
    while rest % 5 == 0:
        rest, fives = rest // 5, fives + 1
    if rest != 1:
        return f"{value.numerator}/{value.denominator}"
    digits = max(twos, fives)
    scaled = abs(value.numerator) * 10**digits // value.denominator
    whole, frac = divmod(scaled, 10**digits)
    return f"{'-' if value < 0 else ''}{whole}.{frac:0{digits}d}".rstrip("0")


def vote_form(answer: str | None) -> str | None:
    """The answer as votes count it: a number in its canonical spelling, else unchanged."""
    if answer is None:
        return None
    number = parse_number(answer)
    return canonical_number(number) if isinstance(number, Fraction) else answer


def answers_match(answer: str, reference: str, rel_tol: float = 1e-6) -> bool:
    """Equal after normalisation, or equal as numbers within ``rel_tol``."""
    if normalize_answer(answer) == normalize_answer(reference):
        return True
    a, b = parse_number(answer), parse_number(reference)
    if a is None or b is None:
        return False
    return numbers_close(a, b, rel_tol, 1e-12)
