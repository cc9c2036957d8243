"""Shared helpers of the runner tests: replay files with known content, backends that wrap the
replay backend (slow, flaky, counting), and store checks.

Imported by the test modules through ``sys.path`` (pytest runs with ``--import-mode=importlib``).
"""

from __future__ import annotations

import asyncio
import collections
import json
import random
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from budgetlab.backends import DrawRequest, ReplayBackend
from budgetlab.core import Completion, Problem, SamplingConfig, Spend, derive_seed
from budgetlab.core.run import RunSpec
from budgetlab.stores import BaseStore, SQLiteStore

ANSWERS = ("7", "12", "x")


def write_replay(
    path: Path,
    n_problems: int,
    configs: Sequence[str] = ("cfg-a", "cfg-b"),
    per_pair: int = 8,
    seed: int = 0,
    interleave: bool = False,
) -> dict[tuple[str, str], list[dict]]:
    """Write a samples-format replay file; return the records per (problem, config name) in file
    order. Costs are multiples of 1/1024 so that float sums are exact in any order."""
    rng = random.Random(seed)
    records: dict[tuple[str, str], list[dict]] = {}
    lines = []
    for p in range(n_problems):
        for c in configs:
            for _ in range(per_pair):
                rec = {
                    "problem": f"p{p:05d}",
                    "config": c,
                    "answer": rng.choice(ANSWERS),
                    "correct": rng.random() < 0.4,
                    "prompt_tokens": rng.randint(5, 50),
                    "completion_tokens": rng.randint(1, 200),
                    "cost": rng.randint(1, 64) / 1024,
                }
                records.setdefault((rec["problem"], c), []).append(rec)
                lines.append(rec)
    if interleave:  # file order per pair is kept; pairs are interleaved
        rng.shuffle(lines)
        records = {}
        for rec in lines:
            records.setdefault((rec["problem"], rec["config"]), []).append(rec)
    path.write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return records


def config_ids(names: Iterable[str]) -> dict[str, str]:
    """Config name -> the id the replay backend gives it (SamplingConfig content hash)."""
    return {n: SamplingConfig(model=n, backend="replay").id for n in names}


def create_replay_run(store: BaseStore, name: str, path: Path, **spec_kw) -> RunSpec:
    backend = ReplayBackend(path)
    spec = RunSpec(name=name, backend=f"replay:{path}", **spec_kw)
    store.create_run(spec, backend.problems(), backend.configs())
    return spec


def replay_run_store(folder: Path, problems: int, per_pair: int) -> tuple[SQLiteStore, Path]:
    """A store in ``folder`` holding run "r" (seed 7) over a replay file of ``problems`` problems,
    one configuration, ``per_pair`` recorded samples each; and the file's path. Close the store."""
    path = folder / "recorded.jsonl"
    write_replay(path, problems, ("cfg-a",), per_pair=per_pair, seed=5)
    db = SQLiteStore(folder / "store.db")
    create_replay_run(db, "r", path, seed=7)
    return db, path


class WrappedReplay:
    """A Backend (protocol) over a ReplayBackend that can be slowed down, made to fail for some
    problems, inflate its reservations, and records concurrency and the seeds it was asked for."""

    name = "wrapped-replay"

    def __init__(
        self,
        path: Path,
        *,
        delay: float = 0.0,
        jitter: float = 0.0,
        reserve_factor: int = 1,
        fail: Callable[[DrawRequest], BaseException | None] | None = None,
        hang: Callable[[DrawRequest], bool] | None = None,
    ) -> None:
        self.inner = ReplayBackend(path)
        self.delay = delay
        self.jitter = jitter
        self._rng = random.Random(1234)
        self.reserve_factor = reserve_factor
        self.fail = fail
        self.hang = hang
        self.in_flight = 0
        self.max_in_flight = 0
        self.draws = 0
        self.seeds_seen: dict[tuple[str, str, int], list[int]] = collections.defaultdict(list)

    def check(self, problems: Sequence[Problem], configs: Sequence[SamplingConfig]) -> None:
        self.inner.check(problems, configs)

    def estimate(self, request: DrawRequest) -> list[Spend]:
        f = self.reserve_factor
        return [Spend(s.samples, s.tokens * f, s.dollars * f) for s in self.inner.estimate(request)]

    async def draw(self, request: DrawRequest) -> list[Completion]:
        n = len(request.samples)
        self.in_flight += n
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        self.draws += 1
        for s in request.samples:
            self.seeds_seen[(s.problem, s.config, s.index)].append(s.seed)
        try:
            if self.hang is not None and self.hang(request):
                await asyncio.Event().wait()  # until cancelled
            if self.delay:
                # With jitter, requests finish one by one rather than all in the same instant.
                await asyncio.sleep(self.delay * (1 + self.jitter * self._rng.random()))
            if self.fail is not None:
                exc = self.fail(request)
                if exc is not None:
                    raise exc
            return await self.inner.draw(request)
        finally:
            self.in_flight -= n

    async def aclose(self) -> None:
        await self.inner.aclose()


def check_store_consistent(db: Path, run: str) -> dict:
    """Invariants that must hold at every instant, even right after a SIGKILL; read with plain
    sqlite3. Returns a few counts."""
    con = sqlite3.connect(str(db))
    try:
        row = con.execute(
            "SELECT spent_samples, spent_tokens, spent_dollars, reserved_samples, reserved_tokens, reserved_dollars "
            "FROM runs WHERE name = ?",
            (run,),
        ).fetchone()
        if row is None:
            return {"finished": 0, "running": 0}
        sums = con.execute(
            "SELECT COALESCE(SUM(state = 'done'), 0), COALESCE(SUM(prompt_tokens + completion_tokens), 0), "
            "COALESCE(SUM(cost), 0) FROM samples WHERE run = ? AND state IN ('done', 'failed')",
            (run,),
        ).fetchone()
        res = con.execute(
            "SELECT COUNT(*), COALESCE(SUM(res_tokens), 0), COALESCE(SUM(res_dollars), 0) FROM samples "
            "WHERE run = ? AND state = 'running'",
            (run,),
        ).fetchone()
        dup = con.execute(
            "SELECT COUNT(*) FROM (SELECT problem, config, idx FROM samples WHERE run = ? "
            "GROUP BY problem, config, idx HAVING COUNT(*) > 1)",
            (run,),
        ).fetchone()[0]
        finished = con.execute(
            "SELECT COUNT(*) FROM samples WHERE run = ? AND state IN ('done', 'failed')", (run,)
        ).fetchone()[0]
    finally:
        con.close()
    assert dup == 0
    assert (row[0], row[1], row[2]) == (sums[0], sums[1], sums[2]), "spent != sum over finished samples"
    assert (row[3], row[4], row[5]) == (res[0], res[1], res[2]), "reserved != sum over running samples"
    return {"finished": finished, "running": res[0]}


def expected_seed(run_seed: int, problem: str, config: str, index: int) -> int:
    return derive_seed(run_seed, problem, config, index)
