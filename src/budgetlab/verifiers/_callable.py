"""The ``callable`` verifier: your own Python function, named by its import path."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from budgetlab.core import Completion, Problem, Verdict
from budgetlab.errors import BudgetlabError, InputError

__all__ = ["CallableVerifier", "load_callable"]


def load_callable(path: str) -> Callable[..., Any]:
    """``"package.module:function"`` (or ``"package.module.function"``, or
    ``"/path/file.py:function"``) -> the function."""
    if ":" in path and not (len(path) > 1 and path[1] == ":"):
        module_name, _, attr = path.rpartition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr:
        raise InputError(f"callable verifier path {path!r} names no function; write module:function, e.g. callable:path=mypkg.checks:is_correct")
    try:
        if module_name.endswith(".py"):
            file = Path(module_name).expanduser()
            spec = importlib.util.spec_from_file_location(file.stem, file)
            if spec is None or spec.loader is None or not file.is_file():
                raise ImportError(f"no file {file}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise InputError(
            f"callable verifier cannot import {module_name!r} ({exc}); put the module on PYTHONPATH or give a file, "
            "e.g. callable:path=checks.py:is_correct"
        ) from None
    func = getattr(module, attr, None)
    if not callable(func):
        raise InputError(f"callable verifier: {module_name!r} has no function {attr!r}; check the name in {path!r}")
    return func


class CallableVerifier:
    """Calls ``function(problem, completion)`` (a plain or ``async`` function, given by ``path``)
    and reads what it returns: a :class:`Verdict` as it is; ``True``/``False`` as the verdict; a
    number as the score (correct when it is at least ``threshold``, unknown without one); a
    pair ``(answer, correct)``. ``max_seconds`` is what one call may take, for the budget.

    A plain function seen to be slow is called on a worker thread, off the run's event loop, one
    call at a time; ``threads`` allows that many at once (for a function safe to call
    concurrently), and ``threads=0`` keeps it on the event loop (for one that needs the main
    thread, e.g. math-verify's signal-based timeouts)."""

    name = "callable"

    def __init__(self, path: str, threshold: float | None = None, max_seconds: float = 1.0, threads: int = 1) -> None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise InputError(
                f"callable verifier threads={threads!r} must be a whole number >= 0: how many calls of a slow function "
                "may run at once off the event loop (0: none, on the loop); e.g. callable:path=checks.py:is_correct,threads=4"
            )
        self.path = str(path)
        self.function = load_callable(self.path)
        self.threshold = threshold
        self.max_seconds = float(max_seconds)
        self.verify_threads = threads
        self._async = inspect.iscoroutinefunction(self.function)
        if self._async:
            # Only then: a plain function is called through verify, which the run loop moves off its
            # event loop once it is slow (an averify calling it would hold the loop up).
            self.averify = self._averify

    def verify(self, problem: Problem, completion: Completion) -> Verdict:
        if self._async:
            import asyncio

            return self._read(asyncio.run(self._call_async(problem, completion)), problem)
        try:
            out = self.function(problem, completion)
        except Exception as exc:
            raise self._error(problem, exc) from exc
        return self._read(out, problem)

    async def _averify(self, problem: Problem, completion: Completion) -> Verdict:
        return self._read(await self._call_async(problem, completion), problem)

    async def _call_async(self, problem: Problem, completion: Completion) -> Any:
        try:
            return await self.function(problem, completion)
        except Exception as exc:
            raise self._error(problem, exc) from exc

    def _error(self, problem: Problem, exc: Exception) -> BudgetlabError:
        return BudgetlabError(
            f"verifier function {self.path} raised {type(exc).__name__}: {exc} on problem {problem.id!r}; fix the function"
        )

    def _read(self, out: Any, problem: Problem) -> Verdict:
        if isinstance(out, Verdict):
            return out
        if isinstance(out, bool) or out is None:
            return Verdict(correct=out)
        if isinstance(out, (int, float)):
            correct = None if self.threshold is None else float(out) >= float(self.threshold)
            return Verdict(correct=correct, score=float(out))
        if isinstance(out, tuple) and len(out) == 2:
            answer, correct = out
            return Verdict(answer=None if answer is None else str(answer), correct=None if correct is None else bool(correct))
        raise BudgetlabError(
            f"verifier function {self.path} returned {type(out).__name__} for problem {problem.id!r}; return a Verdict, "
            "a bool, a number or (answer, correct)"
        )
