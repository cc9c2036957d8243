"""Run untrusted Python programs, one fresh process per program, under the strongest isolation
this machine offers. See docs/sandbox.md for what each level protects against.

Levels, strongest first (``isolation="auto"`` takes the first one that works here):

* ``bwrap``: bubblewrap (when installed) makes new PID, network, IPC, UTS (and, when not root,
  user) namespaces, a read-only root, tmpfs over /tmp, /var/tmp, /root, /home, /run and the home
  directory, a minimal /dev and its own /proc; the program runs as a user id of its own.
* ``namespaces``: the same, built by our launcher with ``unshare(2)`` (root, or a user allowed
  to create user namespaces).
* ``uid``: root without namespaces: a user id of its own and resource limits only (no network
  or /tmp isolation).
* ``rlimits``: resource limits, a private directory and process clean-up only (same user).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import math
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budgetlab.errors import InputError

__all__ = ["ISOLATION_LEVELS", "Limits", "Sandbox", "SandboxResult", "available_isolation", "protects"]

ISOLATION_LEVELS = ("bwrap", "namespaces", "uid", "rlimits")
_CONTAINED_EVERYWHERE = {"memory", "time", "output", "kill-parent", "stray-processes"}
_PROTECTS = {
    "bwrap": _CONTAINED_EVERYWHERE | {"processes", "write-system", "write-tmp", "read-home", "network"},
    "namespaces": _CONTAINED_EVERYWHERE | {"processes", "write-system", "write-tmp", "read-home", "network"},
    "uid": _CONTAINED_EVERYWHERE | {"processes", "write-system", "read-home"},
    "rlimits": _CONTAINED_EVERYWHERE | {"processes"},
}


def protects(level: str, threat: str) -> bool:
    """Whether ``level`` contains ``threat`` on this machine (docs/sandbox.md has the table):
    ``processes`` (fork bombs), ``memory``, ``time``, ``output``, ``kill-parent``,
    ``stray-processes``, ``write-system`` (files the program's user may not write: /root, the
    repository), ``write-tmp`` (the shared /tmp), ``read-home`` (the real home, /root) and
    ``network``. ``rlimits`` is never used by root (root ignores ``RLIMIT_NPROC`` and may signal
    and write anything): root gets ``uid`` at least."""
    return threat in _PROTECTS[level]
_LAUNCHER = (Path(__file__).with_name("_launcher.py")).read_bytes()
# The launcher's source travels on stdin ahead of the header; its command line stays short and
# carries a marker and the owner's pid (``ps`` shows "... budgetlab-sandbox 4242").
_BOOTSTRAP = "import sys;exec(compile(sys.stdin.buffer.read(int(sys.argv[1])),'<launcher>','exec'))"
MARKER = "budgetlab-sandbox"
_UID_BASE = 1 << 30  # sandbox user ids: _UID_BASE + (pid mod 2**22) * 64 + slot, unused by real accounts
_SLOTS_PER_PROCESS = 64
_GRACE = 5.0  # seconds the parent waits beyond the limit for the launcher's own report
_HIDDEN = ("/tmp", "/var/tmp", "/root", "/home", "/run")
# At the uid level the interpreter's own files may be unreadable to the sandbox user (a Python
# under /root, mode 0700): these modules are loaded before the user id changes.
_PREIMPORT = (
    "abc array bisect calendar cmath collections collections.abc contextlib copy dataclasses datetime "
    "decimal enum fractions functools glob hashlib heapq io itertools json math numbers operator pathlib "
    "random re shutil statistics string struct tempfile textwrap threading time typing unicodedata"
).split()


@dataclass(frozen=True)
class Limits:
    """What one program may use. ``timeout`` is wall-clock seconds (the CPU limit, a backstop, is
    one second more, rounded up: a program spinning on one core meets the wall clock first, so
    it always reads "timed out"); ``memory_mb`` is address space (``RLIMIT_AS``)."""

    timeout: float = 10.0
    memory_mb: int = 1024
    processes: int = 32
    file_mb: int = 16
    open_files: int = 64
    output_kb: int = 1024
    tmp_mb: int = 64

    def __post_init__(self) -> None:
        for name in ("timeout", "memory_mb", "processes", "file_mb", "open_files", "output_kb", "tmp_mb"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or not math.isfinite(value):
                raise InputError(f"sandbox limit {name}={value!r} must be a positive number; e.g. code:{name}=10")
        if self.memory_mb < 64:
            raise InputError(f"sandbox limit memory_mb={self.memory_mb} is too small for Python; give at least 64")
        if self.open_files < 16:
            raise InputError(f"sandbox limit open_files={self.open_files} is too small; give at least 16")

    def to_header(self) -> dict[str, Any]:
        return {
            "timeout": float(self.timeout),
            "cpu": math.ceil(self.timeout) + 1,
            "memory": int(self.memory_mb) << 20,
            "processes": int(self.processes),
            "file_size": int(self.file_mb) << 20,
            "open_files": int(self.open_files),
            "output": int(self.output_kb) << 10,
        }


@dataclass(frozen=True)
class SandboxResult:
    """How one program ran. ``status`` is ``passed``, ``failed`` (an exception, a non-zero exit,
    a signal, processes left behind), ``timeout`` (wall or CPU), ``output`` (printed too much) or
    ``error`` (the sandbox itself failed: not the program's fault, never cached)."""

    status: str
    reason: str
    isolation: str
    seconds: float
    stdout: str = ""
    stderr: str = ""
    error: str | None = None
    message: str | None = None
    line: int | None = None
    stray: int = 0

    @property
    def passed(self) -> bool:
        return self.status == "passed"


# ---- what this machine offers -----------------------------------------------------------------------
_probe_lock = threading.Lock()
_probed: dict[tuple[str, str | None], tuple[str, ...]] = {}
_interpreters: dict[str, list[str]] = {}


def _interpreter_dirs(python: str) -> list[str]:
    """The directories ``python`` loads its standard library and packages from."""
    if python not in _interpreters:
        if os.path.realpath(python) == os.path.realpath(sys.executable):
            dirs = [sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix]
        else:
            code = "import json,sys;print(json.dumps([sys.prefix,sys.base_prefix,sys.exec_prefix,sys.base_exec_prefix]))"
            out = subprocess.run([python, "-I", "-c", code], capture_output=True, text=True, timeout=30, check=True)
            dirs = json.loads(out.stdout)
        dirs.append(os.path.dirname(os.path.realpath(python)))
        _interpreters[python] = sorted({os.path.realpath(d) for d in dirs})
    return _interpreters[python]


def _readable_by_others(path: str) -> bool:
    """Whether a user with no special rights can read ``path`` (every ancestor searchable)."""
    p = Path(path)
    for part in [*reversed(p.parents), p]:
        try:
            if not os.stat(part).st_mode & stat.S_IXOTH:
                return False
        except OSError:
            return False
    return True


def _real_home() -> str | None:
    home = os.path.realpath(os.path.expanduser("~"))
    if home in ("/", "") or any(home == h or home.startswith(h + "/") for h in _HIDDEN):
        return None
    return home


def available_isolation(python: str | None = None, bwrap: str | None = None) -> tuple[str, ...]:
    """The isolation levels that work on this machine, strongest first (each is tried once per
    process by running a trivial program under it)."""
    python = python or sys.executable
    bwrap = bwrap if bwrap is not None else (shutil.which("bwrap") or "")
    key = (python, bwrap)
    with _probe_lock:
        if key not in _probed:
            found = []
            for level in ISOLATION_LEVELS:
                if level == "bwrap" and not bwrap:
                    continue
                if (level == "uid") != (os.geteuid() == 0) and level in ("uid", "rlimits"):
                    continue  # uid needs root; rlimits would leave untrusted code running as root
                if level == "rlimits" or _probe(level, python, bwrap):
                    found.append(level)
            _probed[key] = tuple(found)
        return _probed[key]


def _probe(level: str, python: str, bwrap: str) -> bool:
    box = Sandbox(level, Limits(timeout=20), workers=1, python=python, bwrap=bwrap or None, _probing=True)
    try:
        return box.run("import json\n").passed
    except Exception:
        return False


# ---- slots: a user id per concurrent program ----------------------------------------------------------
class _Slots:
    def __init__(self, n: int) -> None:
        self._free = list(range(n))
        self._lock = threading.Lock()

    def take(self) -> int | None:
        with self._lock:
            return self._free.pop(0) if self._free else None

    def give(self, slot: int) -> None:
        with self._lock:
            self._free.append(slot)


_SLOTS = _Slots(_SLOTS_PER_PROCESS)


def sandbox_uid(slot: int) -> int:
    return _UID_BASE + (os.getpid() % (1 << 22)) * _SLOTS_PER_PROCESS + slot


# ---- the sandbox ----------------------------------------------------------------------------------------
class Sandbox:
    """Runs Python programs, each in a fresh process, at most ``workers`` at once (default: the
    number of CPUs). ``isolation`` is a level name or ``"auto"`` (the strongest available)."""

    def __init__(
        self,
        isolation: str = "auto",
        limits: Limits | None = None,
        workers: int | None = None,
        python: str | None = None,
        bwrap: str | None = None,
        _probing: bool = False,
    ) -> None:
        if not sys.platform.startswith("linux"):
            raise InputError(
                f"the code sandbox needs Linux (namespaces, prctl, /proc), not {sys.platform}; verify code on a Linux machine"
            )
        if isolation != "auto" and isolation not in ISOLATION_LEVELS:
            raise InputError(
                f"unknown sandbox isolation {isolation!r}; use auto or one of: {', '.join(ISOLATION_LEVELS)}"
            )
        if workers is not None and (not isinstance(workers, int) or workers < 0 or workers > _SLOTS_PER_PROCESS):
            raise InputError(f"sandbox workers={workers!r} must be 0 (one per CPU) to {_SLOTS_PER_PROCESS}")
        self.limits = limits or Limits()
        self.workers = workers or os.cpu_count() or 1
        self.python = python or sys.executable
        self._bwrap = bwrap
        self._requested = isolation
        self._level: str | None = isolation if _probing else None
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore] = (
            weakref.WeakKeyDictionary()
        )

    @property
    def isolation(self) -> str:
        """The level programs run under (probing this machine the first time it is asked)."""
        if self._level is None:
            bwrap = self._bwrap if self._bwrap is not None else (shutil.which("bwrap") or "")
            found = available_isolation(self.python, bwrap)
            if not found:
                raise InputError(
                    f"the code sandbox cannot run programs here: as root it needs namespaces (unshare) or at least "
                    f"setuid to another user id, and {self.python} must run; run budgetlab as a non-root user, or "
                    "allow CAP_SYS_ADMIN / CAP_SETUID (see docs/sandbox.md)"
                )
            if self._requested == "auto":
                self._level = found[0]
                if self._level in ("uid", "rlimits"):
                    warnings.warn(
                        f"the code sandbox runs at isolation level {self._level!r}: no network or file-system "
                        "isolation (see docs/sandbox.md); install bubblewrap or allow namespaces for more",
                        RuntimeWarning,
                        stacklevel=2,
                    )
            elif self._requested == "rlimits" and os.geteuid() == 0:
                raise InputError(
                    "sandbox isolation 'rlimits' would run untrusted code as root; use isolation=uid or "
                    "stronger (isolation=auto picks the strongest available)"
                )
            elif self._requested in found:
                self._level = self._requested
            else:
                raise InputError(
                    f"sandbox isolation {self._requested!r} is not available on this machine (available: "
                    f"{', '.join(found)}); use isolation=auto"
                    + ("; install bubblewrap (apt-get install bubblewrap)" if self._requested == "bwrap" else "")
                )
        return self._level

    # -- running -------------------------------------------------------------------------------------
    def run(self, program: str) -> SandboxResult:
        """Run one program and wait for it (from synchronous code)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self.arun(program))
        with concurrent.futures.ThreadPoolExecutor(1) as pool:  # called from inside an event loop
            return pool.submit(asyncio.run, self.arun(program)).result()

    async def arun(self, program: str) -> SandboxResult:
        """Run one program; at most ``workers`` run at once, each in its own process."""
        level = self.isolation
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.workers)
        async with semaphore:
            slot = _SLOTS.take()
            while slot is None:  # more programs at once in this process than user ids: wait
                await asyncio.sleep(0.01)
                slot = _SLOTS.take()
            try:
                return await self._run(level, slot, program)
            finally:
                _SLOTS.give(slot)

    async def _run(self, level: str, slot: int, program: str) -> SandboxResult:
        started = time.perf_counter()
        root = os.geteuid() == 0
        uid = sandbox_uid(slot) if root and level != "rlimits" else None
        hostdir = None
        if level in ("uid", "rlimits"):
            hostdir = tempfile.mkdtemp(prefix="budgetlab-sandbox-")
            if uid is not None:
                os.chown(hostdir, uid, uid)
        workdir = hostdir or "/tmp/work"
        try:
            header = self._header(level, uid, workdir, program)
            argv = self._argv(level)
            source = header.pop("_program")
            payload = _LAUNCHER + json.dumps(header).encode() + b"\n" + source
            proc = await asyncio.create_subprocess_exec(
                *argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env={"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"},
                start_new_session=True,
            )
        except BaseException:
            if hostdir:
                _remove_tree(hostdir)
            raise
        try:
            out, err = await asyncio.wait_for(self._talk(proc, payload), self.limits.timeout + _GRACE)
            outcome = None
        except TimeoutError:
            out, err, outcome = b"", b"", "timeout"
        finally:
            try:
                if proc.returncode is None:
                    try:
                        proc.kill()
                    except ProcessLookupError:
                        pass
                    await proc.wait()
            finally:  # also when cancelled: a few milliseconds, so done in place
                self._clean_up(level, uid, proc.pid, hostdir)
        seconds = time.perf_counter() - started
        if outcome == "timeout":
            return SandboxResult("timeout", f"timed out after {self.limits.timeout:g} s (wall-clock limit)", level, seconds)
        return self._result(level, proc.returncode, out, err, seconds)

    @staticmethod
    async def _talk(proc: asyncio.subprocess.Process, payload: bytes) -> tuple[bytes, bytes]:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None

        async def feed() -> None:
            try:
                proc.stdin.write(payload)
                await proc.stdin.drain()
                proc.stdin.close()
            except (BrokenPipeError, ConnectionResetError):
                pass

        async def read(stream: asyncio.StreamReader, cap: int) -> bytes:
            data = b""
            while chunk := await stream.read(65536):
                if len(data) < cap:
                    data += chunk[: cap - len(data)]
            return data

        _, out, err = await asyncio.gather(feed(), read(proc.stdout, 1 << 20), read(proc.stderr, 1 << 16))
        await proc.wait()
        return out, err

    def _result(self, level: str, returncode: int | None, out: bytes, err: bytes, seconds: float) -> SandboxResult:
        line = out.strip().splitlines()[-1] if out.strip() else b""
        try:
            data = json.loads(line)
        except ValueError:
            data = None
        if (not isinstance(data, dict) or "status" not in data) and returncode is not None and returncode < 0:
            name = signal.Signals(-returncode).name if -returncode in signal.Signals._value2member_map_ else returncode
            why = f"the sandbox monitor was killed by {name} (by the program, or out of memory)"
            return SandboxResult("failed", why, level, seconds)
        if not isinstance(data, dict) or "status" not in data:
            detail = err.decode("utf-8", "replace").strip().splitlines()
            why = detail[-1] if detail else f"exit status {returncode}"
            return SandboxResult("error", f"sandbox launcher failed ({why})", level, seconds)
        if data["status"] == "passed" and returncode != 0:
            # The monitor exits 0 right after it writes its verdict. A pass followed by anything
            # else is a line the program wrote into the launcher's output itself (it shares a uid
            # with the launcher when budgetlab is not root) before killing the monitor.
            why = f"a pass was reported but the sandbox monitor did not finish cleanly (exit status {returncode})"
            return SandboxResult("failed", why, level, seconds)
        return SandboxResult(
            status=str(data["status"]),
            reason=str(data.get("reason") or data["status"]),
            isolation=level,
            seconds=seconds,
            stdout=str(data.get("stdout") or ""),
            stderr=str(data.get("stderr") or ""),
            error=data.get("error"),
            message=data.get("message"),
            line=data.get("line") if isinstance(data.get("line"), int) else None,
            stray=int(data.get("stray") or 0),
        )

    # -- building the launch ---------------------------------------------------------------------------
    def _header(self, level: str, uid: int | None, workdir: str, program: str) -> dict[str, Any]:
        source = program.encode("utf-8", "surrogatepass")
        keep = _interpreter_dirs(self.python)
        header: dict[str, Any] = {
            "mode": level,
            "size": len(source),
            "_program": source,
            "uid": uid,
            "gid": uid,
            "workdir": workdir,
            "limits": self.limits.to_header(),
            "keep": keep,
            "env": {
                "HOME": workdir,
                "TMPDIR": workdir,
                "PATH": "/usr/local/bin:/usr/bin:/bin",
                "LANG": "C.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1",
            },
        }
        if level == "namespaces":
            home = _real_home()
            header["hide"] = [*_HIDDEN, *([home] if home else [])]
            header["tmp_size"] = int(self.limits.tmp_mb) << 20
        if level == "uid" and uid is not None and not all(_readable_by_others(d) for d in keep):
            header["preimport"] = _PREIMPORT
        return header

    def _argv(self, level: str) -> list[str]:
        launcher = [self.python, "-I", "-c", _BOOTSTRAP, str(len(_LAUNCHER)), MARKER, str(os.getpid())]
        if level != "bwrap":
            return launcher
        bwrap = self._bwrap or shutil.which("bwrap")
        if not bwrap:
            raise InputError("sandbox isolation 'bwrap' needs bubblewrap; install it with: apt-get install bubblewrap")
        args = [bwrap, "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
        args += ["--unshare-uts", "--hostname", "sandbox", "--unshare-cgroup-try"]
        if os.geteuid() != 0:
            args.append("--unshare-user")
        args += ["--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc"]
        args += ["--perms", "1777", "--size", "1048576", "--tmpfs", "/dev/shm"]
        hidden = []
        home = _real_home()
        for d in (*_HIDDEN, *([home] if home else [])):
            if os.path.isdir(d) and not os.path.islink(d):
                args += ["--perms", "0755", "--size", "1048576", "--tmpfs", d]  # empty, read-only below
                hidden.append(d)
        args += ["--perms", "0700", "--size", str(int(self.limits.tmp_mb) << 20), "--tmpfs", "/tmp/work"]
        made: set[str] = set()
        keeps = _interpreter_dirs(self.python)
        for keep in keeps:
            if any(keep != k and keep.startswith(k + "/") for k in keeps):
                continue  # inside another kept directory
            top = next((h for h in hidden if keep == h or keep.startswith(h + "/")), None)
            if top is None:
                continue
            for parent in [p for p in reversed(Path(keep).parents) if str(p).startswith(top + "/")]:
                if str(parent) not in made:
                    args += ["--perms", "0755", "--dir", str(parent)]
                    made.add(str(parent))
            args += ["--ro-bind", keep, keep]
        for d in hidden:
            args += ["--remount-ro", d]
        return args + ["--chdir", "/", "--", *launcher]

    # -- after the program ------------------------------------------------------------------------------
    @staticmethod
    def _clean_up(level: str, uid: int | None, pid: int, hostdir: str | None) -> None:
        """Whatever the launcher could not kill (it was killed itself): by user id or by session."""
        if level == "uid" and uid is not None:
            kill_user(uid)
            from budgetlab.verifiers._code._launcher import remove_ipc

            remove_ipc(uid)  # System V shared memory it left, also when the launcher was killed first
        elif level == "rlimits":
            for _ in range(3):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except OSError:
                    break
                time.sleep(0.005)
        if hostdir:
            _remove_tree(hostdir)


def kill_user(uid: int, rounds: int = 200) -> int:
    """SIGKILL every process whose real user id is ``uid`` (root only); how many were seen."""
    seen: set[int] = set()
    for _ in range(rounds):
        pids = [pid for pid, owner in _processes() if owner == uid]
        if not pids:
            break
        for pid in pids:
            seen.add(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.002)
    return len(seen)


def _processes() -> list[tuple[int, int]]:
    """(pid, real uid) of every live (not zombie) process."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/status") as f:
                text = f.read()
        except OSError:
            continue
        uid = state = None
        for row in text.splitlines():
            if row.startswith("Uid:"):
                uid = int(row.split()[1])
            elif row.startswith("State:"):
                state = row.split()[1]
        if uid is not None and state not in ("Z", "X"):
            out.append((int(name), uid))
    return out


def _remove_tree(path: str) -> None:
    def unlock(func: Any, target: str, _exc: Any) -> None:
        try:
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
            func(target)
        except OSError:
            pass

    shutil.rmtree(path, onerror=unlock)
