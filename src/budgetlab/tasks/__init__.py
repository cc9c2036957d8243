"""Problem sets: generated tasks, standard benchmarks (GSM8K, MATH-500, HumanEval, MBPP) and
problem files (JSONL, CSV). ``load_task`` picks one from a spec."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path

from budgetlab.core import Problem
from budgetlab.core.spec import check_arguments, parse_spec
from budgetlab.errors import InputError
from budgetlab.tasks._arithmetic import arithmetic_problems
from budgetlab.tasks._benchmarks import (
    gsm8k_gold,
    gsm8k_problems,
    humaneval_problems,
    math500_problems,
    mbpp_problems,
)
from budgetlab.tasks._jsonl import load_problems
from budgetlab.tasks._table import table_problems

__all__ = [
    "TASKS",
    "checked_problems",
    "arithmetic_problems",
    "gsm8k_gold",
    "gsm8k_problems",
    "humaneval_problems",
    "load_problems",
    "load_task",
    "math500_problems",
    "mbpp_problems",
    "table_problems",
]

# name -> factory(**arguments) returning problems
TASKS: dict[str, Callable[..., list[Problem]]] = {
    "arithmetic": arithmetic_problems,
    "gsm8k": gsm8k_problems,
    "math500": math500_problems,
    "humaneval": humaneval_problems,
    "mbpp": mbpp_problems,
    "file": table_problems,
}


def load_task(spec: str) -> list[Problem]:
    """``"arithmetic:n=50,digits=2"`` (a named task with arguments), ``"gsm8k:/data/test.jsonl"``
    (a task whose first argument is a path), or a path to a JSONL or CSV problems file."""
    name, _, rest = spec.partition(":")
    if name in TASKS:
        first, sep, more = rest.partition(",")
        if first.strip() and "=" not in first:  # "gsm8k:/data/test.jsonl[,n=50]": a positional path
            if "path" not in inspect.signature(TASKS[name]).parameters:  # "arithmetic:n": a key without its value
                raise InputError(f"task {name}: argument {first.strip()!r} needs a value; write it as KEY=VALUE, e.g. {name}:n=50")
            rest = f"path={first.strip()}" + (sep + more if more else "")
        name, args = parse_spec(f"{name}:{rest}", "task")
    else:
        name, args = spec, {}
    factory = TASKS.get(name)
    asked = spec.partition(":")[0]
    if factory is None and ":" in spec and re.fullmatch(r"[A-Za-z][\w-]+", asked) and not Path(spec).exists():
        # "aime:/data/aime.jsonl": a task name we do not have, not a file named "aime:/data/...".
        raise InputError(f"unknown task {asked!r} in {spec!r}; use one of: {', '.join(sorted(TASKS))} (e.g. "
                         f"math500:/data/{asked}.jsonl for a file of MATH-style problems), or give the file itself")  # fmt: skip
    if factory is not None:
        check_arguments(factory, args, f"task {name}", f"{name}:path=/data/{name}.jsonl,n=50" if name != "arithmetic" else f"{name}:n=50")
        return checked_problems(factory(**args), f"task {name}")
    if Path(spec).suffix == ".csv" or spec.endswith(".csv.gz"):
        return table_problems(spec)
    if Path(spec).suffix in (".jsonl", ".gz") or Path(spec).exists():
        return load_problems(spec)
    raise InputError(
        f"unknown task {spec!r}; use one of: {', '.join(sorted(TASKS))}, or the path of a JSONL or CSV problems file"
    )


def checked_problems(made: object, source: str = "problems") -> list[Problem]:
    """``made`` as a list of problems with unique, non-empty string ids and JSON metadata, or one
    error naming ``source`` (a factory registered in :data:`TASKS` by a user, or a list given to
    ``budgetlab.run``, may hold anything; a duplicate id would otherwise surface as a database
    constraint error when the run is recorded)."""
    def not_problems(value: object, which: str) -> InputError:
        got = f"{type(value).__name__} {value!r:.40}"
        if source == "problems":  # given to budgetlab.run
            return InputError(f"problems must be Problem objects, a task spec or a problems file, got {got}{which}; "
                              "e.g. problems='arithmetic:n=50' or problems=load_problems('problems.jsonl')")  # fmt: skip
        return InputError(f"{source} returned {got}{which}, not a list of problems; its factory in "
                          "budgetlab.tasks.TASKS must return a list of budgetlab.Problem(id=..., prompt=..., reference=...)")  # fmt: skip

    if isinstance(made, (str, bytes, Problem)) or not isinstance(made, Iterable):
        raise not_problems(made, "")
    problems = list(made)
    seen: set[str] = set()
    for i, problem in enumerate(problems):
        if not isinstance(problem, Problem):
            raise not_problems(problem, f" (item {i})")
        if not isinstance(problem.id, str) or not problem.id:
            raise InputError(f"{source}: problem {i} has id {problem.id!r}; ids must be non-empty strings (a run stores "
                             f"them as text, so {problem.id!r} would not match itself when the run resumes)")  # fmt: skip
        if problem.id in seen:
            raise InputError(f"{source}: problem id {problem.id!r} appears twice; ids must be unique")
        seen.add(problem.id)
        try:
            json.dumps(problem.to_dict())
        except (TypeError, ValueError) as exc:
            raise InputError(f"{source}: problem {problem.id!r} holds a value a run cannot record ({exc}); give its "
                             "metadata as JSON values (strings, numbers, lists, dicts)") from None  # fmt: skip
    return problems
