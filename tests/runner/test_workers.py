"""Worker liveness: a dead worker's claims go back to pending when a run resumes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from budgetlab.runner._workers import new_worker_id, worker_is_dead


def _worker_of(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:abcd1234"


def test_a_running_process_is_alive_and_a_killed_unreaped_one_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not worker_is_dead(_worker_of(child.pid), time.time(), stale_after=120)
        child.kill()
        time.sleep(0.5)  # killed but not waited for: a zombie, which signal 0 still reaches
        if os.path.exists(f"/proc/{child.pid}/stat"):
            assert worker_is_dead(_worker_of(child.pid), time.time(), stale_after=120)
    finally:
        child.kill()
        child.wait()
    assert worker_is_dead(_worker_of(child.pid), time.time(), stale_after=120)  # reaped: gone


def test_this_process_is_never_dead_and_a_stale_heartbeat_is() -> None:
    me = new_worker_id()
    assert not worker_is_dead(me, time.time(), stale_after=120)
    assert worker_is_dead("otherhost:1:abcd1234", time.time() - 500, stale_after=120)
    assert not worker_is_dead("otherhost:1:abcd1234", time.time(), stale_after=120)
