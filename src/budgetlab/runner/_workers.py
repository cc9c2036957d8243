"""Worker identity and liveness, so a resumed run can take back the claims of a dead worker."""

from __future__ import annotations

import os
import socket
import time
import uuid

__all__ = ["new_worker_id", "worker_is_dead"]


def new_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """A killed process stays a zombie until its parent reaps it (a second or so after
    ``kill -9``, when the parent is a shell's ``timeout``); signal 0 still reaches it, but it will
    never finish its claims. Linux only (``/proc``); elsewhere a process that answers is alive."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # pid (comm) state ...: the state follows the last ')' (comm may itself hold one)
            return stat.read().rpartition(b")")[2].split()[0] == b"Z"
    except (OSError, IndexError):
        return False


def worker_is_dead(worker: str, heartbeat: float, stale_after: float, now: float | None = None) -> bool:
    """A worker on this host is dead when its process is gone; any worker is presumed dead when
    its heartbeat is older than ``stale_after`` seconds (it may be on another machine)."""
    now = time.time() if now is None else now
    if now - heartbeat > stale_after:
        return True
    host, _, rest = worker.partition(":")
    pid_text = rest.partition(":")[0]
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        return pid != os.getpid() and not _pid_alive(pid)
    return False
