"""Worker identity and liveness, so a resumed run can take back the claims of a dead worker."""

from __future__ import annotations

import os
import socket
import time
import uuid

__all__ = ["STALE_AFTER", "new_worker_id", "worker_is_dead"]

# Seconds without a heartbeat after which a worker that cannot be checked otherwise (on another
# machine) is taken for dead, and its claims drawn again.
STALE_AFTER = 120.0


def new_worker_id() -> str:
    """``HOST:PID:TAG``; on Linux the tag starts with the process's start time (``TICKS-HEX``), so
    that a later process that reuses the PID is told apart from this one."""
    tag = uuid.uuid4().hex[:8]
    started = _start_ticks(os.getpid())
    return f"{socket.gethostname()}:{os.getpid()}:{tag if started is None else f'{started}-{tag}'}"


def _start_ticks(pid: int) -> int | None:
    """When process ``pid`` started, in clock ticks since boot (``/proc/PID/stat`` field 22);
    None where there is no ``/proc`` or no such process."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            # pid (comm) state ppid ...: field 22 is the 20th after the last ')'
            return int(stat.read().rpartition(b")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None


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
    """A worker on this host is dead when its process is gone, and alive while that very process
    runs (its start time recorded in the id matches), however old its heartbeat: a request may
    take longer than ``stale_after``, and taking its claims would draw (and pay for) its samples
    twice. Any other worker (on another machine, or whose process cannot be identified) is
    presumed dead when its heartbeat is older than ``stale_after`` seconds."""
    now = time.time() if now is None else now
    host, _, rest = worker.partition(":")
    pid_text, _, tag = rest.partition(":")
    if host == socket.gethostname() and pid_text.isdigit():
        pid = int(pid_text)
        if pid != os.getpid() and not _pid_alive(pid):
            return True
        started = tag.partition("-")[0] if "-" in tag else ""
        if started.isdigit():
            running = _start_ticks(pid)
            if running is not None:
                return running != int(started)  # another process has taken the PID since
    return now - heartbeat > stale_after
