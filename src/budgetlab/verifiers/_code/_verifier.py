"""The ``code`` verifier: run the completion against the problem's unit tests in the sandbox."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from typing import Any

from budgetlab.core import Completion, Problem, Verdict
from budgetlab.verifiers._code._cache import CachedVerdict, VerdictCache, cache_key
from budgetlab.verifiers._code._program import Program, build_program
from budgetlab.verifiers._code._sandbox import Limits, Sandbox, SandboxResult

__all__ = ["CodeVerifier"]


class CodeVerifier:
    """Passes a completion when ``prompt + completion + test + check(entry_point)`` runs to the
    end in the sandbox (HumanEval / MBPP format; the problem's metadata gives ``test`` and
    ``entry_point``).

    ``timeout`` (wall seconds), ``memory_mb``, ``processes``: limits per program. ``isolation``:
    ``auto`` (the strongest available) or a level (docs/sandbox.md). ``workers``: programs run
    at once (0: one per CPU). ``cache``: a SQLite file that keeps verdicts across runs (always
    cached in memory). The verdict's answer is ``"passed"`` or ``"failed: <reason>"``; its
    ``seconds`` is the time spent judging (a cached verdict costs only the lookup), and its
    ``details`` name the isolation level.
    """

    name = "code"

    def __init__(
        self,
        timeout: float = 10.0,
        memory_mb: int = 1024,
        processes: int = 32,
        isolation: str = "auto",
        workers: int = 0,
        cache: str | None = None,
    ) -> None:
        self.limits = Limits(timeout=timeout, memory_mb=memory_mb, processes=processes)
        self.sandbox = Sandbox(isolation, self.limits, workers=workers or None)
        self.cache = VerdictCache(cache)
        self.max_seconds = float(timeout) + 5.0
        self._in_flight: dict[tuple[int, str], asyncio.Future[Verdict]] = {}

    @property
    def isolation(self) -> str:
        return self.sandbox.isolation

    def verify(self, problem: Problem, completion: Completion) -> Verdict:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.averify(problem, completion))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, self.averify(problem, completion)).result()

    async def averify(self, problem: Problem, completion: Completion) -> Verdict:
        started = time.perf_counter()
        program = build_program(problem, completion.text)
        if program.test_error is not None:
            reason = f"the test of problem {problem.id!r} does not compile ({program.test_error}); fix the task file"
            return Verdict(f"failed: {reason}", False, seconds=time.perf_counter() - started,
                           details={"status": "error", "cached": False})
        if not (completion.text or "").strip():
            return Verdict("failed: the completion is empty", False, seconds=time.perf_counter() - started,
                           details={"status": "failed", "cached": False})
        key = cache_key(program.source, self.limits)
        hit = self.cache.get(key)
        if hit is not None:
            return self._from_cache(hit, started)
        slot = (id(asyncio.get_running_loop()), key)
        waiting = self._in_flight.get(slot)
        if waiting is not None:  # the same program is being judged right now: wait for that verdict
            await asyncio.shield(waiting)
            hit = self.cache.get(key)
            if hit is not None:  # judged once: the wait is the first sample's cost, not this one's
                return self._from_cache(hit, time.perf_counter())
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._in_flight[slot] = future
        try:
            result = await self.sandbox.arun(program.source)
            verdict = self._verdict(program, result)
            if result.status != "error":  # the sandbox's own failure is not the program's verdict
                self.cache.put(key, CachedVerdict(result.passed, verdict.answer or "", result.status,
                                                  result.isolation, result.seconds))
            future.set_result(verdict)
            return verdict
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._in_flight[slot]

    @staticmethod
    def _from_cache(hit: CachedVerdict, started: float) -> Verdict:
        details: dict[str, Any] = {"isolation": hit.isolation, "status": hit.status, "cached": True}
        return Verdict(hit.answer, hit.passed, seconds=time.perf_counter() - started, details=details)

    @staticmethod
    def _verdict(program: Program, result: SandboxResult) -> Verdict:
        details: dict[str, Any] = {"isolation": result.isolation, "status": result.status, "cached": False}
        if result.passed:
            return Verdict("passed", True, seconds=result.seconds, details=details)
        reason = result.reason
        where = program.locate(result.line)
        if where:
            reason += f" (at {where})"
        if result.status == "error":
            details["stderr"] = result.stderr[-2000:]
        return Verdict(f"failed: {reason}", False, seconds=result.seconds, details=details)
