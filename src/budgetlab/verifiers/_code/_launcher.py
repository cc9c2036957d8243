# budgetlab-sandbox-launcher
"""Run ONE untrusted Python program under the isolation the parent chose; report one JSON line.

This file is executed as its own interpreter (``python -I -c BOOTSTRAP N``, the bootstrap reading
these N bytes of source from stdin): standard library only, no budgetlab import, so it also runs
inside a bubblewrap sandbox that cannot see the package.

Protocol. stdin: this source, one JSON header line, then ``header["size"]`` bytes of program.
stdout: one JSON result line, written by the monitor once the program has finished (or was
stopped) and what it left behind is dead or about to be. The program never sees this stdout.

Processes:
  * ``namespaces``: this process (L0) unshares the mount, PID, network, IPC and UTS namespaces
    (and a user namespace when not root) and forks L1, PID 1 of the new PID namespace. L1 builds
    the file-system view (everything read-only, tmpfs over /tmp, /root, /home, ..., a minimal
    /dev, its own /proc) and is the monitor. When L1 exits the kernel kills the whole namespace.
  * ``bwrap``: bubblewrap built the namespaces and the view; this process is the monitor.
  * ``uid`` / ``rlimits``: no namespaces; this process is the monitor and a child subreaper, and
    kills what the program left behind itself (by user id, or by descent).
The monitor forks W, the worker, which sets the resource limits, drops privileges (another user
id, no capabilities, no new privileges) and runs the program in-process. W reports to the monitor
through a pipe; a pass also needs a nonce the monitor gave it, so a program that merely exits
with status 0 before its tests ran is not a pass.
"""

import ctypes
import json
import os
import resource
import select
import signal
import sys
import time

EXIT_OK = 0  # the result line was written
_MEMORY_POLL = 0.05  # seconds between two counts of the program's memory, all its processes together
EXIT_ORPHANED = 120  # L0 died before L1 started

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC = 1024, 2048, 4096, 16384
MS_PRIVATE, MS_RELATIME = 1 << 18, 1 << 21
_KEPT_FLAGS = {
    "ro": MS_RDONLY,
    "nosuid": MS_NOSUID,
    "nodev": MS_NODEV,
    "noexec": MS_NOEXEC,
    "noatime": MS_NOATIME,
    "nodiratime": MS_NODIRATIME,
    "relatime": MS_RELATIME,
}
_DEVICES = ("null", "zero", "full", "random", "urandom", "tty")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_libc.unshare.argtypes = [ctypes.c_int]
_IPC_RMID = 0
_SYSV_IPC = (("shm", "shmid"), ("sem", "semid"), ("msg", "msqid"))


def _check(rc, what):
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _prctl(option, value):
    _check(_libc.prctl(option, value, 0, 0, 0), f"prctl({option})")


def _mount(source, target, fstype, flags, data=None):
    enc = lambda s: None if s is None else s.encode()
    _check(_libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _drop_capabilities():
    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, data = Header(0x20080522, 0), (Data * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")


# ---- the file-system view of the namespaces mode (run by L1, PID 1 of the new namespace) ----------
def _mountinfo():
    mounts = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4].encode().decode("unicode_escape")  # \040 for a space, ...
            mounts.append((point, fields[5].split(",")))
    return mounts


def _under(path, roots):
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def _build_view(h):
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing we mount propagates to the host
    keep = {}
    for path in h["keep"]:
        try:
            keep[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
        except OSError:
            pass
    devices = {}
    for name in _DEVICES:
        try:
            devices[name] = os.open("/dev/" + name, os.O_PATH)
        except OSError:
            pass
    for point, options in _mountinfo():  # every mount read-only, no set-user-id
        flags = MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID
        flags |= sum(bit for name, bit in _KEPT_FLAGS.items() if name in options)
        if not _under(point, ["/dev"]):
            flags |= MS_NODEV
        try:
            _mount(None, point, None, flags)
        except OSError:
            if point == "/":
                raise
    hidden = []
    for path in h["hide"]:  # empty and, at the end, read-only
        if os.path.isdir(path) and not os.path.islink(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755,size=1048576")
            hidden.append(path)
    os.makedirs(h["workdir"], 0o700, exist_ok=True)  # the one writable directory
    _mount("tmpfs", h["workdir"], "tmpfs", MS_NOSUID | MS_NODEV, f"mode=0700,size={h['tmp_size']}")
    try:  # a minimal /dev
        _mount("tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536")
        for name, fd in devices.items():
            open("/dev/" + name, "w").close()
            _mount(f"/proc/self/fd/{fd}", "/dev/" + name, None, MS_BIND)
        for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                             ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
            os.symlink(target, "/dev/" + name)
        os.mkdir("/dev/shm")
        _mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=1048576")
        _mount(None, "/dev", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NOEXEC)
    except OSError:
        pass  # the host's /dev stays, read-only
    for path, fd in keep.items():  # the interpreter, where a tmpfs hid it
        if _under(path, hidden):
            os.makedirs(path, 0o755, exist_ok=True)
            _mount(f"/proc/self/fd/{fd}", path, None, MS_BIND | MS_REC)
            _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    for fd in list(keep.values()) + list(devices.values()):
        os.close(fd)
    for path in hidden:
        _mount(None, path, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)
    h["own_proc"] = True
    try:  # a /proc that shows only this namespace's processes
        _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    except OSError:
        h["own_proc"] = False
    try:
        _libc.sethostname(b"sandbox", 7)
    except Exception:
        pass


def _make_workdir(h):
    os.makedirs(h["workdir"], 0o700, exist_ok=True)
    if h.get("uid") is not None:
        os.chown(h["workdir"], h["uid"], h["gid"])


# ---- processes ---------------------------------------------------------------------------------------
def _proc_status(pid):
    """(real uid, parent pid, state) of a process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    info = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    try:
        return int(info["Uid"].split()[0]), int(info["PPid"]), info["State"].split()[0]
    except (KeyError, ValueError, IndexError):
        return None


def _live_pids():
    out = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_status(int(name))
            if st is not None and st[2] not in ("Z", "X"):
                out[int(name)] = st
    return out


def _program_pids(h, worker):
    """The program's live processes, as far as this monitor can tell them apart."""
    me, live = os.getpid(), _live_pids()
    if h["mode"] == "bwrap" or (h["mode"] == "namespaces" and h.get("own_proc")):
        return [p for p in live if p not in (1, me)]  # the namespace holds the program only
    if h["mode"] == "uid":
        return [p for p, st in live.items() if st[0] == h["uid"]]
    if h["mode"] == "namespaces":
        return [worker]  # the host's /proc: its pids are not the namespace's
    children = {}
    for pid, st in live.items():
        children.setdefault(st[1], []).append(pid)
    found, todo = [], [me]  # rlimits: this subreaper inherits every orphan, so descent finds all
    while todo:
        for child in children.get(todo.pop(), ()):
            found.append(child)
            todo.append(child)
    return found


def _memory_in_use(pids):
    """Bytes the processes hold in memory, pages they share counted once (proportional set size;
    resident size where the kernel gives no PSS)."""
    total = 0
    for pid in pids:
        for path, key in ((f"/proc/{pid}/smaps_rollup", "Pss:"), (f"/proc/{pid}/status", "VmRSS:")):
            try:
                with open(path) as f:
                    line = next((line for line in f if line.startswith(key)), None)
            except OSError:
                continue
            if line is not None:
                total += int(line.split()[1]) << 10
                break
    return total


def _reap():
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def _sweep_uid(uid):
    """Kill every process of ``uid`` (a user id only this sandbox uses); how many there were."""
    found = [p for p, st in _live_pids().items() if st[0] == uid]
    initial = list(found)
    for _ in range(200):
        if not found:
            break
        helper = os.fork()
        if helper == 0:
            try:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)
                os.kill(-1, signal.SIGKILL)  # every process this uid may signal: its own
            finally:
                os._exit(0)
        os.waitpid(helper, 0)
        _reap()
        time.sleep(0.002)
        _reap()
        found = [p for p, st in _live_pids().items() if st[0] == uid]
    return initial


def remove_ipc(uid):
    """Remove the System V shared memory segments, semaphore sets and message queues that
    ``uid`` (a user id only one sandboxed program uses) created or owns: they outlive their
    processes in the host's IPC namespace (``uid`` level), holding memory nothing counts.
    How many were removed."""
    removed = 0
    for kind, id_column in _SYSV_IPC:
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                rows = [line.split() for line in f]
        except OSError:
            continue
        if not rows:
            continue
        head = rows[0]
        try:
            at_id, at_uid, at_cuid = head.index(id_column), head.index("uid"), head.index("cuid")
        except ValueError:
            continue
        for row in rows[1:]:
            try:
                ident, owners = int(row[at_id]), {int(row[at_uid]), int(row[at_cuid])}
            except (IndexError, ValueError):
                continue
            if uid not in owners:
                continue
            if kind == "shm":
                rc = _libc.shmctl(ident, _IPC_RMID, None)
            elif kind == "sem":
                rc = _libc.semctl(ident, 0, _IPC_RMID)
            else:
                rc = _libc.msgctl(ident, _IPC_RMID, None)
            removed += rc == 0
    return removed


def _sweep_descendants():
    """Kill the processes this subreaper inherited (and theirs), until it has no child left."""
    me, seen = os.getpid(), set()
    for _ in range(500):
        children = [p for p, st in _live_pids().items() if st[1] == me]
        for pid in children:
            seen.add(pid)
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            pid, _ = os.waitpid(-1, 0 if children else os.WNOHANG)
        except ChildProcessError:
            break
        _reap()
    return seen


class _Tail:
    """The first and last bytes of a stream, and how many there were."""

    def __init__(self, keep=4096):
        self.head, self.tail, self.total, self.keep = b"", b"", 0, keep

    def add(self, data):
        self.total += len(data)
        if len(self.head) < self.keep:
            take = self.keep - len(self.head)
            self.head, data = self.head + data[:take], data[take:]
        if data:
            self.tail = (self.tail + data)[-self.keep:]

    def text(self):
        sep = b"\n...\n" if self.total > len(self.head) + len(self.tail) else b""
        return (self.head + sep + self.tail).decode("utf-8", "replace")


# ---- the worker: limits, identity, then the program ---------------------------------------------------
def _become_sandboxed(h, report_fd):
    if h["mode"] != "rlimits":  # in rlimits mode it stays in the launcher's group, which the parent kills
        os.setsid()
    os.closerange(3, report_fd)
    os.closerange(report_fd + 1, 1 << 16)
    import atexit
    import traceback
    for name in h.get("preimport", ()):  # modules the sandbox user could not read afterwards
        try:
            __import__(name)
        except Exception:
            pass
    lim = h["limits"]
    setrl = resource.setrlimit
    setrl(resource.RLIMIT_CORE, (0, 0))
    setrl(resource.RLIMIT_CPU, (lim["cpu"], lim["cpu"] + 1))
    setrl(resource.RLIMIT_AS, (lim["memory"], lim["memory"]))
    setrl(resource.RLIMIT_FSIZE, (lim["file_size"], lim["file_size"]))
    setrl(resource.RLIMIT_NOFILE, (lim["open_files"], lim["open_files"]))
    processes = lim["processes"]
    if h["mode"] == "rlimits" and os.geteuid() != 0:  # the limit counts all of this user's processes
        processes += sum(1 for st in _live_pids().values() if st[0] == os.getuid())
    setrl(resource.RLIMIT_NPROC, (processes, processes))
    if h.get("uid") is not None:
        os.setgroups([])
        os.setgid(h["gid"])
        os.setuid(h["uid"])
    elif h.get("drop_caps"):
        _drop_capabilities()
    if os.geteuid() == 0 or os.getuid() == 0:
        raise PermissionError("refusing to run the program as root")
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after the identity change, which clears it
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    _prctl(PR_SET_DUMPABLE, 1)
    os.chdir(h["workdir"])
    os.umask(0o077)
    os.environ.clear()
    os.environ.update(h["env"])
    sys.argv = ["program.py"]


def _run_program(program):
    import atexit
    import builtins
    import traceback

    report = {"ok": False}
    try:
        code = compile(program, "<program>", "exec")
    except (SyntaxError, ValueError) as e:
        return {"ok": False, "error": type(e).__name__, "message": getattr(e, "msg", str(e)),
                "line": getattr(e, "lineno", None)}
    try:
        # not "__main__", as in HumanEval's harness: a completion's `if __name__ == "__main__":` demo does not run
        exec(code, {"__name__": "program", "__builtins__": builtins, "__file__": "program.py"})
        report = {"ok": True}
    except SystemExit as e:
        report = {"ok": False, "error": "SystemExit",
                  "message": f"the program called exit({e.code!r}) before its tests finished"}
    except BaseException as e:
        line = None
        tb = e.__traceback__
        while tb is not None:
            if tb.tb_frame.f_code.co_filename == "<program>":
                line = tb.tb_lineno
            tb = tb.tb_next
        try:
            message = str(e)[:500]
        except BaseException:
            message = "(the exception's message could not be read)"
        report = {"ok": False, "error": type(e).__name__, "message": message, "line": line}
        try:
            traceback.print_exc(limit=-8)
        except BaseException:
            pass
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:
            pass
    return report


def _worker(h, program, report_fd, nonce):
    try:
        _become_sandboxed(h, report_fd)
    except BaseException as e:
        os.write(report_fd, json.dumps({"setup": f"{type(e).__name__}: {e}"}).encode() + b"\n")
        os._exit(3)
    report = _run_program(program)
    if report.get("ok"):
        report["nonce"] = nonce
    report["pid"] = os.getpid()  # a forked copy of the worker reports too: the monitor takes W's own
    try:
        os.write(report_fd, json.dumps(report).encode()[:60000] + b"\n")
    except BaseException:
        pass
    os._exit(0 if report.get("ok") else 1)


# ---- the monitor ----------------------------------------------------------------------------------------
def _read_nonblocking(fd, limit):
    os.set_blocking(fd, False)
    data = b""
    while len(data) < limit:
        try:
            chunk = os.read(fd, min(65536, limit - len(data)))
        except (BlockingIOError, OSError):
            break
        if not chunk:
            break
        data += chunk
    return data


def _monitor(h, program):
    lim = h["limits"]
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    rep_r, rep_w = os.pipe()
    nonce = os.urandom(16).hex()
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:
        os.dup2(out_w, 1)
        os.dup2(err_w, 2)
        for fd in (out_r, err_r, rep_r, out_w, err_w):
            os.close(fd)
        _worker(h, program, rep_w, nonce)
    for fd in (out_w, err_w, rep_w):
        os.close(fd)
    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        pidfd = None
    streams = {out_r: _Tail(), err_r: _Tail(8192)}
    open_fds = set(streams)
    status, outcome = None, None
    deadline = started + lim["timeout"]
    next_memory_check = started + _MEMORY_POLL
    while outcome is None:
        now = time.monotonic()
        wait = deadline - now
        if wait <= 0:
            outcome = "timeout"
            break
        if now >= next_memory_check:
            # RLIMIT_AS bounds each process; this bounds them together (a program that forks
            # would otherwise hold processes x memory_mb).
            if _memory_in_use(_program_pids(h, pid)) > lim["memory"]:
                outcome = "memory"
                break
            next_memory_check = now + _MEMORY_POLL
        watch = list(open_fds) + ([pidfd] if pidfd is not None else [])
        pause = min(wait, max(0.0, next_memory_check - now))
        ready, _, _ = select.select(watch, [], [], pause if pidfd is not None else min(pause, 0.01))
        for fd in ready:
            if fd == pidfd:
                continue
            data = os.read(fd, 65536)
            if not data:
                open_fds.discard(fd)
                continue
            streams[fd].add(data)
            if streams[out_r].total + streams[err_r].total > lim["output"]:
                outcome = "output"
        if outcome is None and (pidfd in ready or pidfd is None):
            done, st = os.waitpid(pid, os.WNOHANG)
            if done:
                status = st
                break
    if status is None:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        _, status = os.waitpid(pid, 0)
    seconds = time.monotonic() - started
    room = max(0, lim["output"] - streams[out_r].total - streams[err_r].total) + 1
    for fd in (out_r, err_r):
        if fd in open_fds:
            streams[fd].add(_read_nonblocking(fd, room))
    report_bytes = _read_nonblocking(rep_r, 65536)
    stray = _clean_up(h, pid)
    report = None
    for line in report_bytes.decode("utf-8", "replace").splitlines():
        try:
            candidate = json.loads(line)
        except ValueError:
            continue
        if isinstance(candidate, dict) and (candidate.get("pid") == pid or "setup" in candidate):
            report = candidate
    result = _judge(h, outcome, status, report, nonce, stray)
    result.update(
        seconds=round(seconds, 4),
        stdout=streams[out_r].text(),
        stderr=streams[err_r].text(),
        output_bytes=streams[out_r].total + streams[err_r].total,
        stray=stray,
        own_proc=h.get("own_proc"),
    )
    os.write(1, json.dumps(result).encode() + b"\n")


def _clean_up(h, worker):
    """Count (and kill, where this process must) what the program left running."""
    mode, me = h["mode"], os.getpid()
    if mode == "namespaces":
        _reap()
        if not h.get("own_proc"):
            return 0
        return len([p for p in _live_pids() if p != me])  # they die with this PID 1
    if mode == "bwrap":
        # bwrap reports the exit before its PID 1 has torn the namespace down: kill them here,
        # and wait until they are gone, so that nothing outlives the launcher.
        left = [p for p in _live_pids() if p not in (1, me)]
        stray = len(left)
        deadline = time.monotonic() + 5
        while left and time.monotonic() < deadline:
            try:
                os.kill(-1, signal.SIGKILL)  # every process of this namespace but PID 1 and this one
            except OSError:
                pass
            time.sleep(0.001)
            left = [p for p in _live_pids() if p not in (1, me)]
        return stray
    if mode == "uid":
        stray = len(_sweep_uid(h["uid"]))
        remove_ipc(h["uid"])  # the other levels have an IPC namespace of their own, gone with them
        return stray
    return len(_sweep_descendants() - {worker})


def _judge(h, outcome, status, report, nonce, stray):
    lim = h["limits"]
    if outcome == "timeout":
        return {"status": "timeout", "reason": f"timed out after {lim['timeout']:g} s (wall-clock limit)"}
    if outcome == "output":
        return {"status": "output", "reason": f"printed more than {lim['output']} bytes (output limit)"}
    if outcome == "memory":
        return {"status": "failed", "error": "MemoryError",
                "reason": f"out of memory: its processes together held more than {lim['memory'] >> 20} MiB (memory limit)"}  # fmt: skip
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXCPU:
            return {"status": "timeout", "reason": f"used more than {lim['cpu']} s of CPU time (CPU limit)"}
        if sig == signal.SIGXFSZ:
            return {"status": "failed", "reason": f"wrote a file larger than {lim['file_size']} bytes (file-size limit)"}
        return {"status": "failed", "reason": f"killed by {name}", "signal": sig}
    code = os.WEXITSTATUS(status)
    if report is None:
        return {"status": "failed", "reason": f"exited with status {code} before its tests finished", "exit": code}
    if "setup" in report:
        return {"status": "error", "reason": f"sandbox setup failed: {report['setup']}"}
    if report.get("ok") and report.get("nonce") == nonce and code == 0:
        if stray:
            return {"status": "failed", "reason": f"left {stray} process(es) running after it finished (killed)"}
        return {"status": "passed", "reason": "passed"}
    if report.get("ok"):
        return {"status": "failed", "reason": "reported a pass the sandbox did not issue"}
    out = {"status": "failed", "error": report.get("error"), "message": report.get("message"), "line": report.get("line")}
    if report.get("error") == "MemoryError":
        out["message"] = f"out of memory (limit {lim['memory'] >> 20} MiB)"
    out["reason"] = f"{out['error']}: {out['message']}" if out["message"] else str(out["error"])
    return out


# ---- entry points ---------------------------------------------------------------------------------------
def _namespaces(h, program):
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
    uid, gid = os.getuid(), os.getgid()
    userns = os.geteuid() != 0
    if userns:
        flags |= CLONE_NEWUSER
    _check(_libc.unshare(flags), "unshare")
    if userns:
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        h["drop_caps"] = True
    alive_r, alive_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # L1: PID 1 of the new namespace
        os.close(alive_w)
        _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if select.select([alive_r], [], [], 0)[0]:
            os._exit(EXIT_ORPHANED)
        os.close(alive_r)
        try:
            _build_view(h)
            _make_workdir(h)
        except OSError as e:
            os.write(1, json.dumps({"status": "error", "reason": f"sandbox setup failed: {e}"}).encode() + b"\n")
            os._exit(EXIT_OK)
        _monitor(h, program)
        os._exit(EXIT_OK)
    os.close(alive_r)
    _, status = os.waitpid(pid, 0)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def main():
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # budgetlab killed: so is this launcher, and with it the namespace
    header = json.loads(sys.stdin.buffer.readline())
    program = sys.stdin.buffer.read(header["size"]).decode("utf-8", "replace")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    mode = header["mode"]
    if mode == "probe":
        os.write(1, b'{"status": "passed"}\n')
        os._exit(EXIT_OK)
    if mode == "rlimits" and os.geteuid() == 0:
        os.write(1, b'{"status": "error", "reason": "refused: rlimits mode would run the program as root"}\n')
        os._exit(EXIT_OK)
    if mode == "namespaces":
        _namespaces(header, program)
    if mode == "bwrap":
        _make_workdir(header)
    else:  # uid, rlimits: this process reaps (and kills) whatever the program orphans
        _prctl(PR_SET_CHILD_SUBREAPER, 1)
    _prctl(PR_SET_DUMPABLE, 0)
    _monitor(header, program)
    os._exit(EXIT_OK)


if __name__ == "__main__":  # run by the bootstrap (python -c); imported by tests for its helpers
    main()
