"""Hostile programs against the code sandbox, at every isolation level this machine offers.

Each program must be contained (judged not passed, with a clear reason) and leave the machine
and the run unharmed: no process of it survives, no file it wrote outside its directory exists,
its temporary directory is gone, and the next program runs normally. A level is only held to
the threats it claims to contain (``protects``, the table in docs/sandbox.md); the others are
skipped, not run, so a weak level never gets to write /tmp/pwned on the test machine.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import pytest

import budgetlab
from budgetlab.verifiers._code import Limits, Sandbox, available_isolation, protects
from budgetlab.verifiers._code._sandbox import MARKER, sandbox_uid

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the code sandbox needs Linux")

LEVELS = list(available_isolation()) if sys.platform.startswith("linux") else []
REPO = Path(budgetlab.__file__).resolve().parents[2]
TAG = uuid.uuid4().hex[:10]


def _sandbox_processes() -> list[str]:
    """Live processes of this test process's sandboxes: a launcher's command line (it names its
    owner's pid), or one of the user ids this process gives its programs."""
    marker = f"{MARKER} {os.getpid()}"
    first_uid = sandbox_uid(0)
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("State", "").split()[:1] in (["Z"], ["X"]):
            continue
        uid = int(fields["Uid"].split()[0])
        if marker in cmdline or first_uid <= uid < first_uid + 64 or TAG in cmdline:
            found.append(f"{name}: uid {uid} {cmdline[:80]}")
    return found


def _leftover_dirs() -> list[str]:
    """The private directories of sandboxes (as root: only this process's, by their owner's
    user id, so another test run on the same machine does not disturb the count)."""
    mine = range(sandbox_uid(0), sandbox_uid(0) + 64) if os.geteuid() == 0 else None
    out = []
    for p in Path(tempfile.gettempdir()).glob("budgetlab-sandbox-*"):
        try:
            owner = p.stat().st_uid
        except OSError:
            continue
        if mine is None or owner in mine:
            out.append(p.name)
    return sorted(out)


@pytest.fixture(scope="module")
def secrets():
    """A secret in a HOME-like directory we own (0700, under /tmp) and one in the real home."""
    home_like = Path(tempfile.mkdtemp(prefix=f"budgetlab-home-{TAG}-"))
    os.chmod(home_like, 0o700)
    (home_like / ".ssh").mkdir(mode=0o700)
    fake = home_like / ".ssh" / "id_secret"
    fake.write_text(f"SECRET-{TAG}-fake-home")
    fake.chmod(0o600)
    real = Path.home() / f".budgetlab-secret-{TAG}"
    real.write_text(f"SECRET-{TAG}-real-home")
    real.chmod(0o600)
    yield {"fake": str(fake), "real": str(real)}
    real.unlink(missing_ok=True)
    for p in sorted(home_like.rglob("*"), reverse=True):
        p.unlink() if p.is_file() else p.rmdir()
    home_like.rmdir()


@pytest.fixture()
def listener():
    """A TCP listener on 127.0.0.1 that records every connection it accepts."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.1)
    accepted: list[object] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            accepted.append(conn)
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield server.getsockname()[1], accepted
    stop.set()
    thread.join()
    server.close()


def _run(level: str, program: str, timeout: float = 3.0):
    box = Sandbox(level, Limits(timeout=timeout, memory_mb=512, processes=24), workers=2)
    before = _leftover_dirs()
    result = box.run(program)
    assert result.isolation == level
    assert _sandbox_processes() == [], "processes survived the sandbox"
    assert _leftover_dirs() == before, "the sandbox's temporary directory was left behind"
    # the run is unharmed: the next program is judged normally
    assert box.run("assert sum(range(4)) == 6\n").passed
    return result


def _needs(level: str, threat: str) -> None:
    if not protects(level, threat):
        pytest.skip(f"isolation level {level!r} does not claim to contain {threat!r} (docs/sandbox.md)")


@pytest.fixture(params=LEVELS)
def level(request) -> str:
    return request.param


# ---- the hostile programs ----------------------------------------------------------------------------
FORK_BOMB = """
import os
while True:
    try:
        os.fork()
    except OSError:
        pass
"""

FORK_BOMB_THAT_GIVES_UP = """
import os
while True:
    os.fork()
"""


@pytest.mark.parametrize("program", [FORK_BOMB, FORK_BOMB_THAT_GIVES_UP], ids=["persistent", "gives-up"])
def test_fork_bomb(level: str, program: str) -> None:
    _needs(level, "processes")
    result = _run(level, program, timeout=2.0)
    assert not result.passed
    assert result.status in ("timeout", "failed"), result
    assert "timed out" in result.reason or "BlockingIOError" in result.reason or "process" in result.reason


def test_allocate_50_gb(level: str) -> None:
    _needs(level, "memory")
    result = _run(level, "blob = bytearray(50 * 2**30)\nassert blob\n")
    assert result.status == "failed" and result.error == "MemoryError"
    assert "out of memory (limit 512 MiB)" in result.reason


def test_allocate_gradually(level: str) -> None:
    _needs(level, "memory")
    result = _run(level, "chunks = []\nwhile True:\n    chunks.append(bytearray(2**24))\n")
    assert result.status == "failed" and "out of memory" in result.reason


FORKS_THAT_EACH_STAY_UNDER_THE_LIMIT = """
import os, time
for _ in range(4):
    if os.fork() == 0:
        blob = b"x" * (200 << 20)  # written, so resident: 4 x 200 MiB together pass 512 MiB
        time.sleep(30)
        os._exit(0)
time.sleep(30)
"""


def test_forked_processes_together_over_the_memory_limit(level: str) -> None:
    _needs(level, "memory")
    started = time.monotonic()
    result = _run(level, FORKS_THAT_EACH_STAY_UNDER_THE_LIMIT, timeout=20.0)
    assert result.status == "failed" and result.error == "MemoryError", result
    assert "processes together held more than 512 MiB" in result.reason
    assert time.monotonic() - started < 15  # stopped by the memory count, not the wall clock


def test_forked_processes_under_the_memory_limit_together_pass(level: str) -> None:
    program = "import os\npids = [os.fork() for _ in range(1)]\nblob = b'x' * (100 << 20)\nif pids[0] == 0:\n    os._exit(0)\nos.waitpid(pids[0], 0)\nimport time\ntime.sleep(0.3)\n"
    assert _run(level, program).passed


def _write_targets() -> list[tuple[str, str]]:
    return [
        ("write-tmp", f"/tmp/pwned-{TAG}"),
        ("write-tmp", f"/var/tmp/pwned-{TAG}"),
        ("write-system", f"/root/x-{TAG}"),
        ("write-system", str(REPO / f"pwned-{TAG}")),
        ("write-system", str(Path(budgetlab.__file__).parent / f"pwned-{TAG}.py")),
    ]


@pytest.mark.parametrize("threat,path", _write_targets(), ids=lambda v: str(v).replace("/", "_"))
def test_write_outside_its_directory(level: str, threat: str, path: str) -> None:
    _needs(level, threat)
    if threat == "write-system" and level == "uid" and os.stat(Path(path).parent).st_mode & 0o002:
        pytest.skip(f"{Path(path).parent} is world-writable on this machine; a user id cannot protect it")
    program = f"with open({path!r}, 'w') as f:\n    f.write('pwned')\n"
    try:
        result = _run(level, program)
        assert not result.passed
        assert result.error in ("PermissionError", "OSError", "FileNotFoundError"), result
        assert not Path(path).exists()
    finally:
        if Path(path).exists():  # only if the sandbox failed: leave the machine clean anyway
            Path(path).unlink()


def test_the_program_may_write_its_own_directory(level: str) -> None:
    program = (
        "import os, tempfile\n"
        "with open('out.txt', 'w') as f:\n    f.write('ok')\n"
        "with open(os.path.join(os.environ['HOME'], 'h.txt'), 'w') as f:\n    f.write('ok')\n"
        "with tempfile.NamedTemporaryFile() as f:\n    f.write(b'ok')\n"
        "print(os.getcwd())\n"
    )
    result = _run(level, program)
    assert result.passed, result
    workdir = result.stdout.strip()
    if level in ("uid", "rlimits"):
        assert not Path(workdir).exists(), "the private directory was not removed"


@pytest.mark.parametrize("which", ["fake", "real"])
def test_read_a_secret_in_a_home(level: str, secrets: dict[str, str], which: str) -> None:
    _needs(level, "read-home")
    result = _run(level, f"print(open({secrets[which]!r}).read())\n")
    assert not result.passed
    assert result.error in ("PermissionError", "FileNotFoundError"), result
    assert f"SECRET-{TAG}" not in result.stdout + result.stderr


def test_list_root(level: str) -> None:
    _needs(level, "read-home")
    result = _run(level, "import os\nprint(os.listdir('/root'))\nassert False, 'listed /root'\n")
    assert not result.passed
    secret_name = f".budgetlab-secret-{TAG}"
    assert secret_name not in result.stdout


def test_the_environment_is_not_inherited(level: str, monkeypatch) -> None:
    monkeypatch.setenv("BUDGETLAB_TEST_API_KEY", f"KEY-{TAG}")
    result = _run(level, "import os\nprint(dict(os.environ))\n")
    assert result.passed and f"KEY-{TAG}" not in result.stdout


def test_network(level: str, listener) -> None:
    _needs(level, "network")
    port, accepted = listener
    program = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'exfiltrate')\n"
    )
    result = _run(level, program)
    assert not result.passed
    assert result.error in ("ConnectionRefusedError", "OSError", "TimeoutError"), result
    time.sleep(0.2)
    assert accepted == [], "the sandbox reached a listener on the host's loopback"


def test_sleep_forever(level: str) -> None:
    _needs(level, "time")
    started = time.monotonic()
    result = _run(level, "import time\ntime.sleep(10**6)\n", timeout=1.0)
    assert result.status == "timeout" and "timed out after 1 s" in result.reason
    assert time.monotonic() - started < 8


def test_spin_forever(level: str) -> None:
    _needs(level, "time")
    result = _run(level, "while True:\n    pass\n", timeout=1.0)
    assert result.status == "timeout"


def test_print_a_gigabyte(level: str) -> None:
    _needs(level, "output")
    program = "import sys\nchunk = 'x' * 2**20\nfor _ in range(1024):\n    sys.stdout.write(chunk)\n"
    started = time.monotonic()
    result = _run(level, program)
    assert result.status == "output" and "output limit" in result.reason
    assert len(result.stdout) < 20_000
    assert time.monotonic() - started < 10


def test_kill_the_parent(level: str) -> None:
    _needs(level, "kill-parent")
    program = (
        "import os, signal, time\n"
        "os.kill(os.getppid(), signal.SIGKILL)\n"
        "time.sleep(0.3)\n"
        "raise AssertionError('still here')\n"
    )
    result = _run(level, program)
    assert not result.passed and result.reason


def test_kill_everything(level: str) -> None:
    _needs(level, "kill-parent")
    program = "import os, signal, time\nos.kill(-1, signal.SIGKILL)\ntime.sleep(0.2)\nassert False, 'survived'\n"
    result = _run(level, program)
    assert not result.passed
    assert os.getpid() > 0  # this test process is still here


BACKGROUND = f"""
import os, time
pid = os.fork()
if pid == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(987654)  # {TAG}
    os._exit(0)
os.waitpid(pid, 0)
"""


def test_background_processes_are_killed(level: str) -> None:
    _needs(level, "stray-processes")
    result = _run(level, BACKGROUND)
    assert result.status == "failed" and "left 1 process(es) running" in result.reason, result


def test_exit_zero_is_not_a_pass(level: str) -> None:
    for program in ("import os\nos._exit(0)\nassert False\n", "import sys\nsys.exit(0)\n", "exit()\n"):
        result = _run(level, program)
        assert not result.passed, (program, result)


def test_hostile_programs_at_once_do_not_disturb_a_normal_one() -> None:
    """The strongest level, several hostile programs and normal ones in parallel on 2 workers."""
    box = Sandbox("auto", Limits(timeout=2.0, memory_mb=512, processes=24), workers=2)
    programs = [FORK_BOMB, "import time\ntime.sleep(10**6)\n", "bytearray(50 * 2**30)\n", BACKGROUND,
                "import sys\nfor _ in range(2000):\n    sys.stdout.write('y' * 2**20)\n"]
    good = "def f(x):\n    return x * 2\nassert f(21) == 42\n"

    async def main():
        return await asyncio.gather(*[box.arun(p) for p in programs], *[box.arun(good) for _ in range(4)])

    results = asyncio.run(main())
    assert [r.passed for r in results] == [False] * len(programs) + [True] * 4, results
    assert _sandbox_processes() == []


def test_a_pass_is_only_believed_from_a_monitor_that_finished_cleanly() -> None:
    """A program running as the launcher's own user (budgetlab not root, bwrap) can write a pass
    into the launcher's output and then kill the monitor: that line comes with a nonzero exit."""
    box = Sandbox("auto", Limits(timeout=2.0))
    forged = box._result("bwrap", 137, b'{"status": "failed"}\n{"status": "passed", "reason": "passed"}\n', b"", 0.1)
    assert forged.status == "failed" and "did not finish cleanly (exit status 137)" in forged.reason
    honest = box._result("bwrap", 0, b'{"status": "passed", "reason": "passed"}\n', b"", 0.1)
    assert honest.passed


def test_the_memory_count_finds_every_descendant_at_the_rlimits_level() -> None:
    from budgetlab.verifiers._code import _launcher

    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # a child that forks a grandchild, both holding 50 MiB
        blob = b"x" * (50 << 20)
        if os.fork() == 0:
            os.write(write, b"g")
            time.sleep(30)
            os._exit(0)
        time.sleep(30)
        os._exit(len(blob) and 0)
    try:
        assert os.read(read, 1) == b"g"
        time.sleep(0.2)
        pids = _launcher._program_pids({"mode": "rlimits"}, child)
        assert child in pids and len(pids) >= 2
        assert _launcher._memory_in_use(pids) > 80 << 20
    finally:
        for pid in _launcher._program_pids({"mode": "rlimits"}, child):
            os.kill(pid, 9)
        os.waitpid(child, 0)
