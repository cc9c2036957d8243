"""Code verification: run a candidate program against its unit tests in a sandbox."""

from budgetlab.verifiers._code._cache import VerdictCache
from budgetlab.verifiers._code._program import build_program, extract_code
from budgetlab.verifiers._code._sandbox import (
    ISOLATION_LEVELS,
    Limits,
    Sandbox,
    SandboxResult,
    available_isolation,
    protects,
)
from budgetlab.verifiers._code._verifier import CodeVerifier

__all__ = [
    "ISOLATION_LEVELS",
    "CodeVerifier",
    "Limits",
    "Sandbox",
    "SandboxResult",
    "VerdictCache",
    "available_isolation",
    "build_program",
    "extract_code",
    "protects",
]
