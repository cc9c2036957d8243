"""Problems from a JSONL file: one ``{"id", "prompt", "reference", ...}`` object per line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from budgetlab.core import Problem
from budgetlab.core.jsonl import iter_jsonl
from budgetlab.errors import InputError

__all__ = ["load_problems", "problem_from_json"]

_FORMAT = '{"id": str, "prompt": str, "reference": str} (also "messages", "metadata")'


def problem_from_json(obj: Any, where: str) -> Problem:
    """One parsed line as a problem (``answer`` stands for ``reference``); ``where`` names the
    line in the error."""
    if not isinstance(obj, dict):
        raise InputError(f"{where}: expected a JSON object, got {type(obj).__name__} {obj!r:.40}; each line must be {_FORMAT}")
    if obj.get("id") in (None, ""):
        raise InputError(f"{where}: field 'id' is missing or empty; each line must be {_FORMAT}")
    if "reference" not in obj and "answer" in obj:
        obj = {**obj, "reference": obj["answer"]}
    for key, kind, types in (("prompt", "a string", str), ("metadata", "an object", dict), ("messages", "a list of messages", list)):
        if obj.get(key) is not None and not isinstance(obj[key], types):
            raise InputError(
                f"{where}: field {key!r} must be {kind}, got {type(obj[key]).__name__} {obj[key]!r:.40}; each line must be {_FORMAT}"
            )
    return Problem.from_dict(obj)


def load_problems(path: str | Path) -> list[Problem]:
    """The problems of a JSONL file, one ``{"id", "prompt", "reference", ...}`` object per line
    (``answer`` stands for ``reference``); ids must be unique, and errors name the line."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"problems file {path} is a directory; give a JSONL file in it, e.g. {path / 'problems.jsonl'}")
    if not path.is_file():
        raise InputError(f"problems file {path} does not exist; give a JSONL file with one {_FORMAT} per line")
    problems: list[Problem] = []
    seen: set[str] = set()
    for lineno, obj in iter_jsonl(path, _FORMAT):
        problem = problem_from_json(obj, f"{path}:{lineno}")
        if problem.id in seen:
            raise InputError(f"{path}:{lineno}: problem id {problem.id!r} appears twice; ids must be unique")
        seen.add(problem.id)
        problems.append(problem)
    if not problems:
        raise InputError(f"problems file {path} is empty; give one {_FORMAT} per line")
    return problems
