"""Verifiers judge completions: exact/numeric answers and recorded verdicts (built in)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from budgetlab.core.spec import check_arguments
from budgetlab.errors import InputError
from budgetlab.verifiers._answers import answers_match, extract_answer, normalize_answer, parse_number
from budgetlab.verifiers._base import Verifier
from budgetlab.verifiers._exact import AutoVerifier, ExactVerifier, RecordedVerifier

__all__ = [
    "VERIFIERS",
    "AutoVerifier",
    "ExactVerifier",
    "RecordedVerifier",
    "Verifier",
    "answers_match",
    "extract_answer",
    "make_verifier",
    "normalize_answer",
    "parse_number",
]

VERIFIERS: dict[str, Callable[..., Verifier]] = {
    "auto": AutoVerifier,
    "exact": ExactVerifier,
    "recorded": RecordedVerifier,
}


def make_verifier(name: str, options: Mapping[str, Any] | None = None) -> Verifier:
    factory = VERIFIERS.get(name)
    if factory is None:
        raise InputError(f"unknown verifier {name!r}; use one of: {', '.join(sorted(VERIFIERS))}")
    check_arguments(factory, options, f"verifier {name}", "exact:rel_tol=1e-6")
    return factory(**dict(options or {}))
