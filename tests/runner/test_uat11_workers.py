"""Several workers on one store, and crashes (UAT 11): a worker whose requests outlast the
heartbeat's staleness keeps its claims (no sample drawn and paid twice), a worker with nothing
left to draw does not mark the run complete while another still draws its samples (and takes
them over if that one dies), and store errors from a full disk, a held lock or a dangling link
are one line that names the fix."""

from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import WrappedReplay, check_store_consistent, create_replay_run, write_replay  # noqa: E402

from budgetlab.core import Budget, SampleState, Spend  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.errors import StoreError  # noqa: E402
from budgetlab.policies import FixedK, Proposal  # noqa: E402
from budgetlab.runner import execute  # noqa: E402
from budgetlab.runner._workers import new_worker_id, worker_is_dead  # noqa: E402
from budgetlab.stores import SQLiteStore  # noqa: E402
from budgetlab.verifiers import make_verifier  # noqa: E402

CONFIGS = ("cfg-a",)
N_PROBLEMS = 4
K = 2
PLANNED = N_PROBLEMS * len(CONFIGS) * K


@pytest.fixture
def replay_run(tmp_path: Path):
    path = tmp_path / "recorded.jsonl"
    write_replay(path, N_PROBLEMS, CONFIGS, per_pair=K, seed=3)
    db = tmp_path / "store.db"
    with SQLiteStore(db) as store:
        create_replay_run(store, "r", path, seed=1)
    return path, db


def _draws(*backends: WrappedReplay) -> dict:
    seen: dict = {}
    for b in backends:
        for key, seeds in b.seeds_seen.items():
            seen.setdefault(key, []).extend(seeds)
    return seen


def test_a_request_longer_than_stale_after_keeps_its_claims(replay_run) -> None:
    """Worker A's requests take longer than ``stale_after``; worker B starts meanwhile. A beats
    while it waits for its requests, so B does not take it for dead: every sample is drawn (and
    paid for) once, and A's results are kept. Before the fix A beat only between settled
    batches; B released A's claims and drew them again, and A's results were thrown away."""
    path, db = replay_run
    slow, fast = WrappedReplay(path, delay=1.5), WrappedReplay(path)
    # Ids of another machine: only the heartbeat can tell that they are alive.
    a_id, b_id = "other-host:11:aaaa", "other-host:12:bbbb"

    async def both() -> list:
        a_store, b_store = SQLiteStore(db), SQLiteStore(db)
        try:
            a = asyncio.ensure_future(execute(a_store, "r", slow, FixedK(k=K), make_verifier("auto"), Budget(),
                                              worker=a_id, heartbeat_every=0.1, stale_after=0.5))  # fmt: skip
            await asyncio.sleep(0.9)  # A has claimed everything and is waiting for its requests
            b = await execute(b_store, "r", fast, FixedK(k=K), make_verifier("auto"), Budget(),
                              worker=b_id, heartbeat_every=0.1, stale_after=0.5)  # fmt: skip
            return [await a, b]
        finally:
            a_store.close()
            b_store.close()

    a_out, b_out = asyncio.run(both())
    seen = _draws(slow, fast)
    assert len(seen) == PLANNED
    assert all(len(seeds) == 1 for seeds in seen.values()), f"drawn twice: {[k for k, v in seen.items() if len(v) > 1]}"
    assert a_out.drawn == PLANNED and b_out.drawn == 0
    with SQLiteStore(db) as store:
        info = store.get_run("r")
        assert info.state is RunState.DONE and info.spent.samples == PLANNED
    check_store_consistent(db, "r")


def test_a_live_local_worker_is_alive_however_old_its_heartbeat() -> None:
    """A worker on this host whose process still runs is alive even when its heartbeat is old (a
    long request); a process that took its PID later is told apart by its start time."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        me = new_worker_id()
        assert not worker_is_dead(me, time.time() - 1000, stale_after=120)
        if os.path.exists(f"/proc/{child.pid}/stat"):
            ticks = Path(f"/proc/{child.pid}/stat").read_bytes().rpartition(b")")[2].split()[19].decode()
            host = socket.gethostname()
            assert not worker_is_dead(f"{host}:{child.pid}:{ticks}-abcd1234", time.time() - 1000, stale_after=120)
            # the same PID with another start time: a process that reused the PID of a dead worker
            assert worker_is_dead(f"{host}:{child.pid}:{int(ticks) + 1}-abcd1234", time.time(), stale_after=120)
    finally:
        child.kill()
        child.wait()
    # with no start time in the id, or on another machine, the heartbeat decides as before
    assert worker_is_dead("otherhost:1:abcd1234", time.time() - 500, stale_after=120)
    assert not worker_is_dead("otherhost:1:abcd1234", time.time(), stale_after=120)


def _claim_as(db: Path, worker: str, keys) -> None:
    with SQLiteStore(db) as store:
        store.heartbeat("r", worker)
        result = store.claim("r", worker, keys, [Spend(1, 100, 0.1)] * len(keys), Budget())
        assert len(result.claimed) == len(keys)


def test_a_worker_with_nothing_left_waits_for_a_peer_and_takes_over_when_it_dies(replay_run) -> None:
    """Worker B (a live process on this host) holds claims; worker A draws the rest. A must not
    mark the run complete while B's samples are still running: it waits, and when B dies it
    takes B's claims back and draws them, so the run ends done with every sample. Before the fix
    A marked the run done at once, with B's samples left running (and, B killed, never drawn)."""
    path, db = replay_run
    with SQLiteStore(db) as store:
        cfg = store.configs("r")[0].id
        held = store.add_pending("r", [Proposal("p00000", cfg, K)])
    peer = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        ticks = Path(f"/proc/{peer.pid}/stat").read_bytes().rpartition(b")")[2].split()[19].decode() \
            if os.path.exists(f"/proc/{peer.pid}/stat") else None  # fmt: skip
        b_id = f"{socket.gethostname()}:{peer.pid}:" + (f"{ticks}-beef" if ticks else "beef")
        _claim_as(db, b_id, [s.key for s in held])
        threading.Timer(1.0, peer.kill).start()  # B dies while A waits for it
        backend = WrappedReplay(path)
        with SQLiteStore(db) as store:
            outcome = asyncio.run(execute(store, "r", backend, FixedK(k=K), make_verifier("auto"), Budget(),
                                          heartbeat_every=0.2))  # fmt: skip
            info = store.get_run("r")
            running = store.samples("r", [SampleState.RUNNING])
    finally:
        peer.kill()
        peer.wait()
    assert running == []
    assert outcome.state is RunState.DONE and info.state is RunState.DONE
    assert outcome.drawn == PLANNED and info.spent.samples == PLANNED
    assert all(len(v) == 1 for v in backend.seeds_seen.values()) and len(backend.seeds_seen) == PLANNED
    check_store_consistent(db, "r")


def test_a_worker_does_not_call_the_run_complete_while_a_peer_still_draws(replay_run) -> None:
    """A peer on another machine holds claims and then shows no sign of life (its heartbeat is
    not stale yet): the worker that has nothing left to draw says so, and leaves the run running
    rather than done with samples still in flight."""
    path, db = replay_run
    with SQLiteStore(db) as store:
        cfg = store.configs("r")[0].id
        held = store.add_pending("r", [Proposal("p00000", cfg, K)])
    _claim_as(db, "other-host:7:cafe", [s.key for s in held])
    with SQLiteStore(db) as store:
        outcome = asyncio.run(execute(store, "r", WrappedReplay(path), FixedK(k=K), make_verifier("auto"), Budget(),
                                      heartbeat_every=0.1))  # fmt: skip
        info = store.get_run("r")
        assert len(store.samples("r", [SampleState.RUNNING])) == K  # the peer's claims are left alone
    assert outcome.drawn == PLANNED - K
    assert outcome.state is RunState.RUNNING and info.state is RunState.RUNNING
    assert "other-host:7" in info.stopped_because and f"{K} samples" in info.stopped_because


def test_a_full_disk_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    try:
        from budgetlab.core.run import RunSpec
        from budgetlab.core import Problem, SamplingConfig

        store._conn.execute("PRAGMA max_page_count = 12")  # the file may not grow: as on a full disk
        with pytest.raises(StoreError) as err:
            store.create_run(RunSpec(name="r", backend="replay:x"), [Problem(f"p{i}", "x" * 2000) for i in range(50)],
                             [SamplingConfig(model="m", backend="replay")])  # fmt: skip
    finally:
        store.close()
    message = str(err.value)
    assert "\n" not in message and "no space left" in message and "free space" in message and "s.db" in message


def test_a_store_locked_for_too_long_is_one_line_naming_the_fix(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    store = SQLiteStore(db, timeout=0.2)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError) as err:
            store.heartbeat("r", "w")
    finally:
        other.close()
        store.close()
    message = str(err.value)
    assert "\n" not in message and "locked" in message and "0.2 s" in message and "run the same command again" in message


def test_a_link_to_a_missing_folder_is_named_as_such(tmp_path: Path) -> None:
    link = tmp_path / "store.db"
    link.symlink_to(tmp_path / "gone" / "store.db")
    with pytest.raises(StoreError, match="is a link to .*whose folder does not exist"):
        SQLiteStore(link)
    ok = tmp_path / "ok.db"
    ok.symlink_to(tmp_path / "target.db")  # a link to a new file in an existing folder is a new store
    SQLiteStore(ok).close()
    assert (tmp_path / "target.db").exists()
