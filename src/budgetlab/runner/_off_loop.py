"""Where a verifier's plain ``verify`` runs: on the run loop's event loop while it is fast, on a
worker thread of the verifier's own once it is seen to be slow."""

from __future__ import annotations

import asyncio
import concurrent.futures
import queue
import threading
import time
import weakref
from typing import Any

from budgetlab.core import Completion, Problem
from budgetlab.errors import BudgetlabError
from budgetlab.verifiers import Verifier

__all__ = ["call_verify", "plugin_name"]


def plugin_name(plugin: object) -> str:
    return str(getattr(plugin, "name", None) or type(plugin).__name__)


# A plain ``verify`` runs on the run loop's event loop, where a slow one (a test suite, a model
# called synchronously) holds up every request in flight, an HTTP backend's included. Sending every
# call to a thread would cost the fast ones (exact, regex: microseconds) more than they take, so a
# verifier's calls run inline until _SLOW_CALLS in a row have each taken over _SLOW_SECONDS (not
# one, nor two apart: a first call that imports something, a garbage collection, or a loaded
# machine pausing the process for a while are not a slow verifier, and once off the loop it stays
# off); from then on they run on worker threads of that verifier's own: one, unless it
# declares ``verify_threads`` (0 keeps it inline; more than 1 says verify is safe to call
# concurrently), so a function never called concurrently before is not now either. budgetlab's own
# sync verifiers declare ``verify_threads = 0``: they are fast, and math's timeouts are signal
# alarms, which work only in the main thread. The threads are daemons: a verify stuck in a user's function neither
# delays an interrupted run (its result is dropped) nor keeps the interpreter from exiting.
_SLOW_SECONDS = 0.005
_SLOW_CALLS = 2


class _SyncCalls:
    """Where one verifier's plain ``verify`` runs: inline until it is seen to be slow, then on its
    worker threads. The threads stop once the verifier (and with it this) is collected."""

    def __init__(self, verifier: Verifier, forget: Any) -> None:
        try:
            self.verifier: Any = weakref.ref(verifier, forget)
        except TypeError:  # __slots__ without __weakref__: kept (and its threads idle) while the process lives
            self.verifier = lambda: verifier
        self.threads = _declared_threads(verifier)
        self.slow_in_a_row = 0
        self.off_loop = False
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._started = False
        self._name = f"budgetlab-verify-{plugin_name(verifier)}"

    def seen_slow(self) -> None:
        self.slow_in_a_row += 1
        self.off_loop = self.threads > 0 and self.slow_in_a_row >= _SLOW_CALLS

    def in_thread(self, verify: Any, problem: Problem, completion: Completion) -> asyncio.Future[tuple[Any, float]]:
        """``verify(problem, completion)`` and the seconds it took, from a worker thread. Cancelled
        before a thread takes it up, it is never called."""
        if not self._started:
            self._started = True
            for _ in range(self.threads):
                threading.Thread(target=_serve, args=(self._jobs,), name=self._name, daemon=True).start()
            weakref.finalize(self, _stop, self._jobs, self.threads)
        job: concurrent.futures.Future[tuple[Any, float]] = concurrent.futures.Future()
        self._jobs.put((job, verify, problem, completion))
        return asyncio.wrap_future(job)


def _serve(jobs: queue.SimpleQueue[Any]) -> None:
    while (job := jobs.get()) is not None:
        future, verify, problem, completion = job
        if future.set_running_or_notify_cancel():
            started = time.perf_counter()
            try:
                verdict = verify(problem, completion)
            except BaseException as exc:  # noqa: BLE001 - raised where the verdict is awaited, as inline
                future.set_exception(exc)
            else:
                future.set_result((verdict, time.perf_counter() - started))
        # Hold nothing between calls: the bound verify keeps the verifier, which would never be collected.
        del job, future, verify, problem, completion


def _stop(jobs: queue.SimpleQueue[Any], threads: int) -> None:
    for _ in range(threads):
        jobs.put(None)


def _declared_threads(verifier: Verifier) -> int:
    threads = getattr(verifier, "verify_threads", 1)
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise BudgetlabError(
            f"verifier {plugin_name(verifier)!r} has verify_threads={threads!r}; it must be a whole number >= 0: "
            "0 keeps verify on the event loop, 1 runs a slow one on a worker thread, more if it is safe to call concurrently"
        )
    return threads


_sync_calls: dict[int, _SyncCalls] = {}


def _sync_calls_of(verifier: Verifier) -> _SyncCalls:
    key = id(verifier)
    calls = _sync_calls.get(key)
    if calls is None or calls.verifier() is not verifier:

        def forget(ref: Any) -> None:
            if (known := _sync_calls.get(key)) is not None and known.verifier is ref:
                del _sync_calls[key]

        calls = _sync_calls[key] = _SyncCalls(verifier, forget)
    return calls



async def call_verify(verifier: Verifier, problem: Problem, completion: Completion) -> tuple[Any, float]:
    """What ``verifier.verify(problem, completion)`` returned, and the seconds it took."""
    calls = _sync_calls_of(verifier)
    if calls.off_loop:
        return await calls.in_thread(verifier.verify, problem, completion)
    started = time.perf_counter()
    verdict = verifier.verify(problem, completion)
    seconds = time.perf_counter() - started
    if seconds > _SLOW_SECONDS:
        calls.seen_slow()
    elif calls.slow_in_a_row:
        calls.slow_in_a_row = 0
    return verdict, seconds
