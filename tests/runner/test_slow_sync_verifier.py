"""A verifier with only a plain ``verify`` (a plug-in, or ``callable:path=...`` over a plain
function) that is slow: once seen to be slow it runs off the event loop, so requests in flight
keep going while it works; its calls stay one at a time unless it declares ``verify_threads``;
what it raises stops the run as before, with the paid samples kept unjudged; Ctrl-C stops a run
whose verify is stuck, and the process exits."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import WrappedReplay, check_store_consistent, replay_run_store, write_replay  # noqa: E402

from budgetlab.core import Budget, Completion, Problem, Sample, SampleState  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.errors import BudgetlabError, InputError  # noqa: E402
from budgetlab.policies import FixedK  # noqa: E402
from budgetlab.runner import execute  # noqa: E402
from budgetlab.runner._draw import judge  # noqa: E402
from budgetlab.stores import SQLiteStore  # noqa: E402
from budgetlab.verifiers import make_verifier  # noqa: E402

K = 2
INLINE_CALLS = 2  # the calls that show a verifier is slow run on the loop, as before


class SlowVerifier:
    """Judges by the recorded verdict after ``seconds`` of blocking work (a test suite, a model
    called synchronously); records when each call ran, on which thread, and how many at once."""

    name = "slow"
    max_seconds = 1.0

    def __init__(self, seconds: float, fail_on: str | None = None, threads: int | None = None) -> None:
        self.seconds, self.fail_on = seconds, fail_on
        if threads is not None:
            self.verify_threads = threads
        self.inner = make_verifier("auto")
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.calls: list[tuple[float, float, str, str]] = []  # start, end, problem, thread

    def verify(self, problem, completion):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        started = time.perf_counter()
        try:
            time.sleep(self.seconds)
            if problem.id == self.fail_on:
                raise KeyError("score")
            return self.inner.verify(problem, completion)
        finally:
            with self.lock:
                self.now -= 1
                self.calls.append((started, time.perf_counter(), problem.id, threading.current_thread().name))


async def _ticking(work):
    """Await ``work`` while a coroutine on the same loop ticks every 10 ms; the tick times."""
    ticks: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        while not done.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    ticker = asyncio.ensure_future(tick())
    try:
        result = await work
    finally:
        done.set()
        await ticker
    return result, ticks


def _ticks_within(ticks: list[float], start: float, end: float) -> int:
    return sum(start < t < end for t in ticks)


@pytest.fixture
def store(tmp_path: Path):
    db, path = replay_run_store(tmp_path, 4, K)
    yield db, path
    db.close()


def _execute(db, backend, verifier, concurrency):
    return execute(db, "r", backend, FixedK(k=K), verifier, Budget(), concurrency=concurrency, max_batch=K)


def test_a_slow_sync_verifier_leaves_the_loop_free_one_call_at_a_time(store) -> None:
    """0.2 s per verdict, two requests in flight: after the calls that show it is slow, the loop
    ticks on while it works (it ticked not at all before), its calls never overlap, and a verdict's
    verify_seconds is its own time, not the time it waited for the one before."""
    db, path = store
    verifier = SlowVerifier(0.2)
    outcome, ticks = asyncio.run(_ticking(_execute(db, WrappedReplay(path), verifier, concurrency=2 * K)))
    assert outcome.state is RunState.DONE and outcome.drawn == 4 * K
    samples = db.samples("r")
    assert all(s.state is SampleState.DONE and s.correct is not None and "unjudged" not in s.details for s in samples)
    calls = sorted(verifier.calls)
    assert len(calls) == 4 * K
    off_loop = calls[INLINE_CALLS:]
    assert all(thread != threading.main_thread().name for *_, thread in off_loop), calls
    seen = [_ticks_within(ticks, start, end) for start, end, *_ in off_loop]
    assert min(seen) >= 5, seen  # about 20 in 0.2 s; none while the loop is held up
    assert verifier.most == 1
    assert all(0.19 <= s.verify_seconds < 0.35 for s in samples), [s.verify_seconds for s in samples]


def _samples(n: int) -> list[tuple[Sample, Problem, Completion]]:
    return [
        (Sample("r", f"p{i}", "c", 0, seed=i), Problem(f"p{i}", prompt="?", reference="7"), Completion(text="7", answer="7"))
        for i in range(n)
    ]


@pytest.mark.parametrize("threads,most", [(None, 1), (3, 3)], ids=["undeclared-one-at-a-time", "declared-3"])
def test_judging_many_samples_at_once_calls_a_verifier_concurrently_only_as_declared(threads, most) -> None:
    """``judge`` (the run loop's and ``budgetlab judge``'s) over samples all in flight at once."""
    verifier = SlowVerifier(0.05, threads=threads)
    items = _samples(8)

    async def all_at_once():
        return await asyncio.gather(*(judge(verifier, s, p, c) for s, p, c in items))

    judged = asyncio.run(all_at_once())
    assert [s.correct for s in judged] == [True] * 8
    assert verifier.most == most


def test_a_slow_verifier_that_raises_off_the_loop_keeps_the_paid_samples_unjudged(store) -> None:
    db, path = store
    broken = db.problems("r")[3].id  # one request at a time: it comes after the calls inline
    verifier = SlowVerifier(0.02, fail_on=broken)
    with pytest.raises(BudgetlabError, match=rf"verifier 'slow' failed on problem '{broken}' \(KeyError: 'score'\)"):
        asyncio.run(_execute(db, WrappedReplay(path), verifier, concurrency=K))
    assert [thread for *_, problem, thread in verifier.calls if problem == broken] == ["budgetlab-verify-slow"]
    info = db.get_run("r")
    assert info.state is RunState.FAILED and "fix the verifier, then run the same command again" in info.stopped_because
    unjudged = [s for s in db.samples("r") if s.problem == broken]
    assert len(unjudged) == K and all(s.state is SampleState.DONE and s.correct is None and s.cost for s in unjudged)
    assert all("unjudged" in s.details for s in unjudged)


CHECKS = """
import threading, time
calls = []

def check(problem, completion):
    calls.append((time.perf_counter(), threading.current_thread().name))
    time.sleep(0.2)
    return completion.answer == "7"
"""


def test_a_callable_verifier_over_a_slow_plain_function_leaves_the_loop_free(tmp_path: Path) -> None:
    (tmp_path / "checks.py").write_text(CHECKS)
    verifier = make_verifier(f"callable:path={tmp_path / 'checks.py'}:check")
    items = _samples(5)

    async def one_by_one():
        return [await judge(verifier, s, p, c) for s, p, c in items]

    judged, ticks = asyncio.run(_ticking(one_by_one()))
    assert [s.correct for s in judged] == [True] * 5
    calls = verifier.function.__globals__["calls"]
    assert [thread for _, thread in calls[INLINE_CALLS:]] == ["budgetlab-verify-callable"] * 3
    seen = [_ticks_within(ticks, start, start + 0.2) for start, _ in calls[INLINE_CALLS:]]
    assert min(seen) >= 5, seen


def test_a_callable_verifier_with_threads_0_stays_on_the_loop_and_bad_threads_say_the_fix(tmp_path: Path) -> None:
    """threads=0: for a function that needs the main thread (math-verify's signal-based timeouts)."""
    (tmp_path / "checks.py").write_text(CHECKS.replace("0.2", "0.01"))
    verifier = make_verifier(f"callable:path={tmp_path / 'checks.py'}:check,threads=0")
    items = _samples(4)

    async def one_by_one():
        return [await judge(verifier, s, p, c) for s, p, c in items]

    assert [s.correct for s in asyncio.run(one_by_one())] == [True] * 4
    assert {thread for _, thread in verifier.function.__globals__["calls"]} == {threading.main_thread().name}
    with pytest.raises(InputError, match=r"callable verifier threads=-1 must be a whole number >= 0.*threads=4"):
        make_verifier(f"callable:path={tmp_path / 'checks.py'}:check,threads=-1")


STUCK = """
import os, threading, time
from pathlib import Path
calls = 0

def check(problem, completion):
    global calls
    calls += 1
    if calls <= 40:
        time.sleep(0.01)  # slow enough to be sent to a worker thread
        return completion.correct
    Path(os.environ["STUCK_MARK"]).touch()
    threading.Event().wait()  # stuck for good: a hung test suite
"""


@pytest.mark.timeout(60)
def test_ctrl_c_stops_a_run_whose_verify_is_stuck_in_a_worker_thread_and_the_process_exits(tmp_path: Path) -> None:
    """The worker thread is a daemon: neither the interrupted run nor the interpreter's exit waits
    for the stuck function; the samples judged before are kept."""
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 100, ("cfg-a",), per_pair=4, seed=9)
    (tmp_path / "checks.py").write_text(STUCK)
    db, mark = tmp_path / "store.db", tmp_path / "stuck"
    args = ["run", "--backend", f"replay:{path}", "--name", "r", "-k", "4", "--store", str(db), "--no-progress",
            "--concurrency", "4", "--verifier", f"callable:path={tmp_path / 'checks.py'}:check"]  # fmt: skip
    slow_cli = str(Path(__file__).parent / "_slow_cli.py")
    env = {**os.environ, "BUDGETLAB_TEST_DRAW_DELAY": "0.001", "STUCK_MARK": str(mark)}
    proc = subprocess.Popen([sys.executable, slow_cli, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while not mark.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(0.2)
    asked = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, (out, err)
    assert time.monotonic() - asked < 10
    with SQLiteStore(db) as s:
        info = s.get_run("r")
        assert info.state is RunState.INTERRUPTED
        assert s.samples("r", [SampleState.RUNNING]) == []
        assert len(s.samples("r", [SampleState.DONE])) == 40  # the requests judged before it got stuck
    check_store_consistent(db, "r")


@pytest.mark.parametrize("spec", ["exact", "recorded", "regex:pattern=(\\d+)", "math"])
def test_budgetlabs_own_sync_verifiers_stay_on_the_loop_even_when_slow(spec: str, monkeypatch) -> None:
    """They are fast, and math-verify's timeouts are signal alarms, which work only in the main
    thread: a slow machine must not move them to a worker thread."""
    if spec == "math":
        pytest.importorskip("math_verify", reason="the math verifier's symbolic path needs math-verify")
    verifier = make_verifier(spec)
    plain = type(verifier).verify
    threads: list[str] = []

    def slow(self, problem, completion):  # as on a loaded machine: every call over the threshold
        time.sleep(0.01)
        threads.append(threading.current_thread().name)
        return plain(self, problem, completion)

    monkeypatch.setattr(type(verifier), "verify", slow)
    items = _samples(4)

    async def one_by_one():
        return [await judge(verifier, s, p, c) for s, p, c in items]

    asyncio.run(one_by_one())
    assert threads == [threading.main_thread().name] * 4
