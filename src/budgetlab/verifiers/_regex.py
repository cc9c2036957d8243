"""The ``regex`` verifier: a pattern with a capture group finds the answer, compared with the
reference; a pattern without groups must match the whole completion."""

from __future__ import annotations

import re

from budgetlab.core import Completion, Problem, Verdict
from budgetlab.errors import InputError
from budgetlab.verifiers._answers import answers_match, vote_form

__all__ = ["RegexVerifier"]

_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


class RegexVerifier:
    """``pattern`` with a capture group: the answer is the first group of its last match in the
    completion, compared with the reference (after normalisation, or as numbers within
    ``rel_tol``); no match is wrong, no reference is unknown. ``pattern`` without a group: the
    completion (stripped) must match it entirely; the reference is not used. ``flags``: any of
    ``imsx``. In a spec a pattern cannot hold a comma (the spec's separator): use ``\\x2c``."""

    name = "regex"
    max_seconds = 0.01
    verify_threads = 0  # microseconds: a thread hop would cost more (runner/_off_loop.py)

    def __init__(self, pattern: str, flags: str = "", rel_tol: float = 1e-6) -> None:
        bad = [f for f in str(flags) if f not in _FLAGS]
        if bad:
            raise InputError(f"regex verifier flags={flags!r} has unknown flags {bad}; use any of imsx, e.g. regex:flags=i")
        try:
            self.pattern = re.compile(str(pattern), sum(_FLAGS[f] for f in str(flags)))
        except re.error as exc:
            raise InputError(f"regex verifier pattern {pattern!r} is not a valid regular expression ({exc}); fix the pattern") from None
        self.rel_tol = float(rel_tol)

    def verify(self, problem: Problem, completion: Completion) -> Verdict:
        text = completion.text or ""
        if self.pattern.groups == 0:
            stripped = text.strip()
            return Verdict(answer=stripped[:200], correct=self.pattern.fullmatch(stripped) is not None)
        matches = list(self.pattern.finditer(text))
        if not matches:
            return Verdict(answer=None, correct=None if problem.reference is None else False)
        answer = vote_form(next((g for g in matches[-1].groups() if g is not None), ""))
        if problem.reference is None:
            return Verdict(answer=answer, correct=None)
        return Verdict(answer=answer, correct=answers_match(answer, problem.reference, self.rel_tol))
