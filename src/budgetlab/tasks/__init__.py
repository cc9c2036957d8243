"""Problem sets: generated tasks and problem files. ``load_task`` picks one from a spec."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from budgetlab.core import Problem
from budgetlab.core.spec import check_arguments, parse_spec
from budgetlab.errors import InputError
from budgetlab.tasks._arithmetic import arithmetic_problems
from budgetlab.tasks._jsonl import load_problems

__all__ = ["TASKS", "arithmetic_problems", "load_problems", "load_task"]

# name -> factory(**arguments) returning problems
TASKS: dict[str, Callable[..., list[Problem]]] = {
    "arithmetic": arithmetic_problems,
}


def load_task(spec: str) -> list[Problem]:
    """``"arithmetic:n=50,digits=2"`` (a named task with arguments) or a path to a JSONL file."""
    name, args = parse_spec(spec, "task") if ":" in spec or spec in TASKS else (spec, {})
    factory = TASKS.get(name)
    if factory is not None:
        check_arguments(factory, args, f"task {name}", f"{name}:n=50")
        return factory(**args)
    if Path(spec).suffix in (".jsonl", ".gz") or Path(spec).exists():
        return load_problems(spec)
    raise InputError(f"unknown task {spec!r}; use one of: {', '.join(sorted(TASKS))}, or the path of a JSONL problems file")
