"""Problems from a JSONL file: one ``{"id", "prompt", "reference", ...}`` object per line."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from budgetlab.core import Problem
from budgetlab.errors import InputError

__all__ = ["load_problems"]

_FORMAT = '{"id": str, "prompt": str, "reference": str} (also "messages", "metadata")'


def load_problems(path: str | Path) -> list[Problem]:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"problems file {path} does not exist; give a JSONL file with one {_FORMAT} per line")
    opener = gzip.open if path.suffix == ".gz" else open
    problems: list[Problem] = []
    seen: set[str] = set()
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{lineno}: not valid JSON ({exc.msg}); each line must be {_FORMAT}") from None
            if not isinstance(obj, dict) or obj.get("id") is None:
                raise InputError(f"{path}:{lineno}: field 'id' is missing; each line must be {_FORMAT}")
            if "reference" not in obj and "answer" in obj:
                obj["reference"] = obj["answer"]
            problem = Problem.from_dict(obj)
            if problem.id in seen:
                raise InputError(f"{path}:{lineno}: problem id {problem.id!r} appears twice; ids must be unique")
            seen.add(problem.id)
            problems.append(problem)
    if not problems:
        raise InputError(f"problems file {path} is empty; give one {_FORMAT} per line")
    return problems
