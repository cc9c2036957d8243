"""Acceptance test: a real ``budgetlab run`` process, SIGKILLed at random points, then resumed
to completion, leaves exactly the samples a single uninterrupted run would have drawn: none
lost, none counted twice, every replayed verdict in place and the spend exact."""

from __future__ import annotations

import collections
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import check_store_consistent, config_ids, expected_seed, write_replay  # noqa: E402

from budgetlab.core import SampleState  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.stores import SQLiteStore  # noqa: E402

N_PROBLEMS = 3000
CONFIGS = ("cfg-a", "cfg-b")
K = 8
TOTAL = N_PROBLEMS * len(CONFIGS) * K  # 48,000 samples: one uninterrupted run takes ~3-5 s on 2 cores
RUN = "r"


def _cmd(replay: Path, db: Path) -> list[str]:
    return [
        sys.executable, "-m", "budgetlab", "run", "--backend", f"replay:{replay}", "--name", RUN,
        "-k", str(K), "--store", str(db), "--no-progress",
    ]  # fmt: skip


def _finished(db: Path) -> int:
    """Finished samples so far, read without disturbing the writer (WAL readers never block)."""
    if not db.exists() or db.stat().st_size == 0:
        return 0
    try:
        con = sqlite3.connect(str(db), timeout=5)
        try:
            return con.execute(
                "SELECT COUNT(*) FROM samples WHERE run = ? AND state IN ('done', 'failed')", (RUN,)
            ).fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # schema not created yet
        return 0


def _kill(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    rc = proc.wait(timeout=30)
    assert rc == -signal.SIGKILL, f"the run ended on its own (rc={rc}) before it could be killed"


def _check_after_kill(db: Path) -> int:
    """The store of a killed run opens, and its totals agree with its samples."""
    if not db.exists():
        return 0
    with SQLiteStore(db) as store:  # opens (and recovers the WAL) without error
        info = store.find_run(RUN)
        if info is None:  # killed before the run was created
            return 0
        done = store.samples(RUN, [SampleState.DONE])
        failed = store.samples(RUN, [SampleState.FAILED])
        assert info.spent.samples == len(done)
        assert info.spent.tokens == sum(s.prompt_tokens + s.completion_tokens for s in done + failed)
        assert info.spent.dollars == sum(s.cost for s in done + failed)
    return check_store_consistent(db, RUN)["finished"]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_sigkill_at_random_points_then_resume_completes_exactly(tmp_path: Path) -> None:
    replay = tmp_path / "recorded.jsonl"
    records = write_replay(replay, N_PROBLEMS, CONFIGS, per_pair=K, seed=11, interleave=True)
    db = tmp_path / "store.db"
    rng = random.Random(20240917)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    kills = 0
    progress = [0]
    # First kill at a random instant after start: it may land in start-up (imports, reading the
    # replay file, creating the run) or early in drawing.
    proc = subprocess.Popen(_cmd(replay, db), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(rng.uniform(0.05, 1.5))
    _kill(proc)
    kills += 1
    progress.append(_check_after_kill(db))

    # Then kills at seeded random points of the drawing, each a little after a random number of
    # samples have been settled (so every kill lands mid-run, with requests in flight).
    for _ in range(4):
        remaining = TOTAL - progress[-1]
        target = progress[-1] + rng.randint(remaining // 10, remaining // 3)
        proc = subprocess.Popen(_cmd(replay, db), cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while _finished(db) < target:
            assert proc.poll() is None, f"run ended early: rc={proc.returncode} {proc.stderr.read()!r}"
            assert time.monotonic() < deadline, "no progress within 60 s"
            time.sleep(0.005)
        time.sleep(rng.uniform(0.0, 0.05))
        _kill(proc)
        kills += 1
        finished = _check_after_kill(db)
        assert finished >= target > progress[-1]
        progress.append(finished)
    assert kills >= 4
    assert progress == sorted(progress)  # nothing drawn is ever lost
    assert progress[-1] < TOTAL  # the last kill still left work to resume

    # Resume to completion.
    done_proc = subprocess.run(_cmd(replay, db), cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done_proc.returncode == 0, done_proc.stderr

    ids = config_ids(CONFIGS)
    name_of = {v: k for k, v in ids.items()}
    with SQLiteStore(db) as store:
        info = store.get_run(RUN)
        samples = store.samples(RUN)
        workers = store.workers(RUN)
    assert info.state is RunState.DONE
    assert len(samples) == TOTAL
    assert all(s.state is SampleState.DONE for s in samples)
    assert len({s.key for s in samples}) == TOTAL  # no duplicate (problem, config, index)
    per_pair: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
    for s in samples:
        per_pair[(s.problem, s.config)].append(s.index)
    assert len(per_pair) == N_PROBLEMS * len(CONFIGS)
    assert all(sorted(idx) == list(range(K)) for idx in per_pair.values())
    for s in samples:
        # Replay draw order is file order: sample i of a pair is the pair's i-th recording.
        rec = records[(s.problem, name_of[s.config])][s.index]
        assert (s.answer, s.correct) == (rec["answer"], rec["correct"]), s.key
        assert (s.prompt_tokens, s.completion_tokens, s.cost) == (
            rec["prompt_tokens"], rec["completion_tokens"], rec["cost"],
        ), s.key  # fmt: skip
        assert s.seed == expected_seed(0, s.problem, s.config, s.index)
        assert s.error is None
    assert info.spent.samples == TOTAL
    assert info.spent.tokens == sum(s.prompt_tokens + s.completion_tokens for s in samples)
    assert info.spent.dollars == sum(s.cost for s in samples)  # exact: costs are k/1024
    assert info.spent.verify_seconds == pytest.approx(sum(s.verify_seconds for s in samples), rel=1e-9, abs=1e-12)
    assert info.spent.tokens == sum(r["prompt_tokens"] + r["completion_tokens"] for rs in records.values() for r in rs)
    assert info.reserved.samples == 0 and info.reserved.tokens == 0 and info.reserved.dollars == 0
    assert info.reserved.verify_seconds == 0
    assert workers == {}  # the dead workers' claims were taken back, the last worker left cleanly
    check_store_consistent(db, RUN)
