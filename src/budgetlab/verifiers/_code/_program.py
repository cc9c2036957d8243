"""Assemble the program a sandbox runs from a problem (HumanEval / MBPP format) and a completion.

The program is ``prompt + completion + test + check(entry_point)``, as in HumanEval's harness.
A completion that is a whole function (a chat model's answer, often in a Markdown code block)
is appended after the prompt, so it replaces the prompt's stub and keeps its imports.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from budgetlab.core import Problem
from budgetlab.errors import InputError

__all__ = ["Program", "build_program", "extract_code"]

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)(?:```|\Z)", re.DOTALL)


@dataclass(frozen=True)
class Program:
    """The source to run and where each part starts (1-based lines), to place an error."""

    source: str
    parts: tuple[tuple[str, int], ...]  # (part name, first line), in order
    test_error: str | None = None  # the problem's test does not compile: why

    def locate(self, line: int | None) -> str:
        if line is None:
            return ""
        name, first = self.parts[0]
        for part, start in self.parts:
            if line >= start:
                name, first = part, start
        return f"line {line - first + 1} of the {name}"


def extract_code(text: str, entry_point: str | None = None) -> str:
    """The code in a completion: the Markdown code block that defines ``entry_point`` (else the
    longest Python one) when there are blocks, else the text itself."""
    blocks = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
    if not blocks:
        return text
    python = [body for lang, body in blocks if lang in ("", "python", "py", "python3")] or [b for _, b in blocks]
    if entry_point:
        defining = [b for b in python if re.search(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", b, re.MULTILINE)]
        if defining:
            return defining[0]
    return max(python, key=len)


@lru_cache(maxsize=4096)
def _test_compiles(test: str) -> str | None:
    try:
        compile(test, "<test>", "exec")
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None)
        return f"{type(exc).__name__}: {getattr(exc, 'msg', exc)}" + (f" (line {line} of the test)" if line else "")
    return None


def build_program(problem: Problem, completion_text: str | None) -> Program:
    """The program for one sample. Raises :class:`InputError` when the problem has no test (a
    task-file problem, the same for every sample)."""
    meta = problem.metadata
    test = meta.get("test")
    if not isinstance(test, str) or not test.strip():
        raise InputError(
            f"problem {problem.id!r} has no unit test for the code verifier; give it metadata 'test' (HumanEval/MBPP "
            "format: a check(candidate) function, or plain asserts) and 'entry_point', e.g. --task humaneval"
        )
    entry = meta.get("entry_point")
    if entry is not None and (not isinstance(entry, str) or not entry.isidentifier()):
        raise InputError(
            f"problem {problem.id!r} has entry_point {entry!r}, which is not a Python name; give the name of the "
            "function the test checks"
        )
    prompt = meta.get("code_prompt", problem.prompt) or ""
    code = extract_code(completion_text or "", entry)
    whole = entry is not None and re.search(rf"^def\s+{re.escape(entry)}\s*\(", code, re.MULTILINE) is not None
    head = prompt + ("\n" if whole and prompt and not prompt.endswith("\n") else "")
    if whole and prompt:
        head += "\n"
    parts = [("prompt", 1)]
    completion_start = head.count("\n") + 1
    body = head + code
    if not body.endswith("\n"):
        body += "\n"
    body += "\n\n"
    candidate = entry
    if entry == "check":
        # The test's own check(candidate) would replace the function under test (MBPP has one
        # named check), and check(check) would recurse: keep the candidate under another name.
        candidate = "_budgetlab_candidate"
        body += f"{candidate} = check\n\n"
    test_start = body.count("\n") + 1
    source = body + test + ("\n" if not test.endswith("\n") else "")
    if entry is not None:
        source += f"\n\ncheck({candidate})\n"
    parts = [("prompt", 1), ("completion", completion_start), ("test", test_start)]
    if entry is not None:
        parts.append(("check call", source.count("\n")))
    return Program(source, tuple(parts), _test_compiles(test))
