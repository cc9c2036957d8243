"""Verifiers judge completions: exact/numeric answers, recorded verdicts, math answers
(math-verify), code in a sandbox, regular expressions, your own function, a judge model."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from budgetlab.core.spec import check_arguments, parse_spec
from budgetlab.errors import InputError
from budgetlab.verifiers._answers import (
    answers_match,
    canonical_number,
    extract_answer,
    normalize_answer,
    parse_number,
    vote_form,
)
from budgetlab.verifiers._base import Verifier
from budgetlab.verifiers._callable import CallableVerifier
from budgetlab.verifiers._code import (
    CodeVerifier,
    Limits,
    Sandbox,
    SandboxResult,
    available_isolation,
)
from budgetlab.verifiers._exact import AutoVerifier, ExactVerifier, RecordedVerifier
from budgetlab.verifiers._judge import JudgeVerifier, parse_grade
from budgetlab.verifiers._math import MathVerifier, extract_final_answer, math_equal
from budgetlab.verifiers._regex import RegexVerifier

__all__ = [
    "VERIFIERS",
    "AutoVerifier",
    "CallableVerifier",
    "CodeVerifier",
    "ExactVerifier",
    "JudgeVerifier",
    "Limits",
    "MathVerifier",
    "RecordedVerifier",
    "RegexVerifier",
    "Sandbox",
    "SandboxResult",
    "Verifier",
    "answers_match",
    "available_isolation",
    "canonical_number",
    "extract_answer",
    "extract_final_answer",
    "make_verifier",
    "math_equal",
    "normalize_answer",
    "parse_grade",
    "parse_number",
    "vote_form",
]

# Each factory imports its heavy dependency (math-verify, httpx) only when a verifier is built.
VERIFIERS: dict[str, Callable[..., Verifier]] = {
    "auto": AutoVerifier,
    "exact": ExactVerifier,
    "recorded": RecordedVerifier,
    "math": MathVerifier,
    "code": CodeVerifier,
    "regex": RegexVerifier,
    "callable": CallableVerifier,
    "judge": JudgeVerifier,
}


def make_verifier(name: str, options: Mapping[str, Any] | None = None) -> Verifier:
    """A verifier by name, with ``options``; or from a spec ``"NAME:key=value,..."`` as a run
    stores it (e.g. ``"code:timeout=5"``, ``"callable:path=mypkg.checks:is_correct"``)."""
    if ":" in name and options is None:
        name, options = parse_spec(name, "verifier")
    factory = VERIFIERS.get(name)
    if factory is None:
        raise InputError(f"unknown verifier {name!r}; use one of: {', '.join(sorted(VERIFIERS))}")
    example = _EXAMPLES.get(name, "exact:rel_tol=1e-6")
    check_arguments(factory, options, f"verifier {name}", example)
    missing = [
        p.name
        for p in inspect.signature(factory).parameters.values()
        if p.default is inspect.Parameter.empty
        and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        and p.name not in (options or {})
    ]
    if missing:
        raise InputError(f"verifier {name} needs {', '.join(f'{m}=...' for m in missing)}; e.g. --verifier {example}")
    return factory(**dict(options or {}))


_EXAMPLES = {
    "math": "math:extract=boxed+answer_is+last_number",
    "code": "code:timeout=10,memory_mb=1024",
    "regex": "'regex:pattern=answer: (\\d+)'",
    "callable": "callable:path=mypkg.checks:is_correct",
    "judge": "judge:backend=openai:http://127.0.0.1:8000/v1,model=gpt-4o-mini",
}
