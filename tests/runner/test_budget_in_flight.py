"""The budget holds with many requests in flight: spend is reserved when a sample is claimed and
settled when it returns, so no limit is ever passed, not mid-batch, not with reservations larger
than the real spend, not after a resume, not with two workers on one run."""

from __future__ import annotations

import asyncio
import collections
import sqlite3
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import WrappedReplay, check_store_consistent, config_ids, create_replay_run, write_replay  # noqa: E402

from budgetlab.core import Budget, Completion, Problem, SampleState, Spend, Verdict  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.policies import FixedK  # noqa: E402
from budgetlab.runner import Progress, execute, run  # noqa: E402
from budgetlab.stores import SQLiteStore  # noqa: E402
from budgetlab.verifiers import make_verifier  # noqa: E402

N_PROBLEMS = 120
K = 4
CONFIGS = ("cfg-a",)
PLANNED = N_PROBLEMS * K * len(CONFIGS)


@pytest.fixture
def replay(tmp_path: Path) -> tuple[Path, dict]:
    path = tmp_path / "recorded.jsonl"
    return path, write_replay(path, N_PROBLEMS, CONFIGS, per_pair=K, seed=3)


def _totals(records: dict) -> Spend:
    recs = [r for rs in records.values() for r in rs]
    return Spend(len(recs), sum(r["prompt_tokens"] + r["completion_tokens"] for r in recs), sum(r["cost"] for r in recs))


def _limit_for(kind: str, records: dict) -> Budget:
    """A limit that runs out in the middle of the run, with 64 requests in flight, and leaves room
    for 64 reservations even at 3x the real spend."""
    total = _totals(records)
    if kind == "samples":
        return Budget(samples=150)
    if kind == "tokens":
        return Budget(tokens=int(total.tokens * 0.6))
    return Budget(dollars=total.dollars * 0.6 + 0.001)


def _max_sample(kind: str, records: dict) -> float:
    recs = [r for rs in records.values() for r in rs]
    if kind == "samples":
        return 1
    if kind == "tokens":
        return max(r["prompt_tokens"] + r["completion_tokens"] for r in recs)
    return max(r["cost"] for r in recs)


class _Watch:
    """An on_progress callback that checks the budget at every report, in the loop's own figures
    and in the store's (spent + reserved)."""

    def __init__(self, store: SQLiteStore, run_name: str, budget: Budget) -> None:
        self.store, self.run_name, self.budget = store, run_name, budget
        self.reports = 0
        self.max_in_flight = 0

    def __call__(self, p: Progress) -> None:
        self.reports += 1
        self.max_in_flight = max(self.max_in_flight, p.in_flight)
        assert self.budget.first_exceeded(p.spent) is None, p.spent
        info = self.store.get_run(self.run_name)
        assert self.budget.first_exceeded(info.spent) is None, info.spent
        assert self.budget.first_exceeded(info.spent + info.reserved) is None, (info.spent, info.reserved)


@pytest.mark.parametrize("reserve_factor", [1, 3], ids=["exact-reservation", "reservation-3x-real"])
@pytest.mark.parametrize("kind", ["samples", "tokens", "dollars"])
@pytest.mark.parametrize("max_batch", [1, 8])
def test_spend_never_exceeds_limit_with_64_in_flight(
    tmp_path: Path, replay: tuple[Path, dict], kind: str, reserve_factor: int, max_batch: int
) -> None:
    path, records = replay
    db = tmp_path / "store.db"
    budget = _limit_for(kind, records)
    limit = budget.limits()[kind]
    with SQLiteStore(db) as store:
        create_replay_run(store, "r", path, budget=budget)
        backend = WrappedReplay(path, delay=0.02, jitter=1.0, reserve_factor=reserve_factor)
        watch = _Watch(store, "r", budget)
        outcome = asyncio.run(
            execute(store, "r", backend, FixedK(k=K), make_verifier("auto"), budget,
                    concurrency=64, max_batch=max_batch, on_progress=watch)
        )  # fmt: skip
        info = store.get_run("r")
        running = store.samples("r", [SampleState.RUNNING])
        finished = store.samples("r", [SampleState.DONE, SampleState.FAILED])

    assert backend.max_in_flight == 64  # 64 samples really were in flight at once
    assert watch.max_in_flight >= 64 - max_batch  # as reported after a settled request
    assert watch.reports > 2
    assert outcome.state is RunState.STOPPED and info.state is RunState.STOPPED
    assert f"budget: {kind} limit" in outcome.stopped_because
    assert info.stopped_because == outcome.stopped_because
    spent = getattr(info.spent, kind)
    assert spent <= limit
    # It stopped because the budget ran out, not early: the next sample's reservation no longer fit.
    assert spent > limit - reserve_factor * _max_sample(kind, records)
    assert info.spent.samples < PLANNED
    assert outcome.spent == info.spent and outcome.drawn == len(finished)
    assert running == [] and info.reserved == Spend()
    check_store_consistent(db, "r")
    assert info.spent.tokens == sum(s.prompt_tokens + s.completion_tokens for s in finished)


def test_verify_seconds_budget_holds_with_64_in_flight(tmp_path: Path, replay: tuple[Path, dict]) -> None:
    path, _ = replay

    class SlowJudge:
        """Each judgement takes 0.02 s (reported in the verdict) and at most 0.05 s."""

        name = "slow-judge"
        max_seconds = 0.05

        def verify(self, problem: Problem, completion: Completion) -> Verdict:
            return Verdict(answer=completion.answer, correct=completion.correct, seconds=0.02)

    budget = Budget(verify_seconds=0.5)  # room for 25 judgements
    with SQLiteStore(tmp_path / "store.db") as store:
        create_replay_run(store, "r", path, budget=budget)
        backend = WrappedReplay(path, delay=0.02)
        outcome = asyncio.run(
            execute(store, "r", backend, FixedK(k=K), SlowJudge(), budget, concurrency=64, max_batch=1)
        )
    assert outcome.state is RunState.STOPPED
    assert outcome.spent.verify_seconds <= 0.5 + 1e-9, outcome.spent


def test_resumed_run_with_raised_budget_draws_more(tmp_path: Path, replay: tuple[Path, dict]) -> None:
    path, records = replay
    db = str(tmp_path / "store.db")
    first = run("r", f"replay:{path}", store=db, policy="fixed", policy_args={"k": K}, budget=Budget(samples=50), concurrency=16)
    assert first.state is RunState.STOPPED and first.spent.samples == 50 and first.drawn == 50
    assert "samples" in first.stopped_because

    same = run("r", store=db, budget=Budget(samples=50))
    assert same.state is RunState.STOPPED and same.drawn == 0 and same.spent.samples == 50

    raised = run("r", store=db, budget=Budget(samples=130))
    assert raised.state is RunState.STOPPED and raised.drawn == 80 and raised.spent.samples == 130

    with SQLiteStore(db) as store:
        assert store.get_run("r").spec.budget == Budget(samples=130)  # the raised budget is recorded
        check_store_consistent(Path(db), "r")

    unlimited = run("r", store=db, budget=Budget())
    assert unlimited.state is RunState.DONE and unlimited.drawn == PLANNED - 130
    assert unlimited.spent == Spend(PLANNED, _totals(records).tokens, _totals(records).dollars, unlimited.spent.verify_seconds)

    name_of = {v: k for k, v in config_ids(CONFIGS).items()}
    with SQLiteStore(db) as store:
        samples = store.samples("r")
        info = store.get_run("r")
    assert len(samples) == PLANNED == len({s.key for s in samples})
    assert all(s.state is SampleState.DONE for s in samples)
    by_pair = collections.defaultdict(list)
    for s in samples:
        by_pair[(s.problem, s.config)].append(s.index)
        rec = records[(s.problem, name_of[s.config])][s.index]
        assert (s.answer, s.correct, s.cost) == (rec["answer"], rec["correct"], rec["cost"])
    assert all(sorted(v) == list(range(K)) for v in by_pair.values())
    assert info.reserved == Spend()


def _two_workers(db: Path, path: Path, budget: Budget, k: int = K, delay: float = 0.02) -> list:
    """Run ``execute`` twice at once on the same run, each on its own store connection and with
    its own worker id; return their outcomes (re-raising any error of either)."""
    outcomes: list = [None, None]
    errors: list[BaseException] = []
    barrier = threading.Barrier(2)

    def work(i: int) -> None:
        try:
            with SQLiteStore(db) as store:
                watch = _Watch(store, "r", budget)
                barrier.wait(timeout=10)
                outcomes[i] = asyncio.run(
                    execute(store, "r", WrappedReplay(path, delay=delay, reserve_factor=1 + i), FixedK(k=k),
                            make_verifier("auto"), budget, concurrency=32, max_batch=1, on_progress=watch,
                            worker=f"test-worker-{i}")
                )  # fmt: skip
        except BaseException as exc:  # noqa: BLE001 - surfaced in the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads)
    if errors:
        raise errors[0]
    return outcomes


@pytest.mark.parametrize("kind", ["samples", "tokens", "dollars"])
def test_two_workers_on_one_run_keep_the_budget(tmp_path: Path, replay: tuple[Path, dict], kind: str) -> None:
    path, records = replay
    db = tmp_path / "store.db"
    budget = _limit_for(kind, records)
    with SQLiteStore(db) as store:
        create_replay_run(store, "r", path, budget=budget)

    outcomes = _two_workers(db, path, budget)

    # The worker that hits the limit stops; the other may end as "done" in its own view (see the
    # xfail test below: workers do not see each other's proposals).
    assert {o.state for o in outcomes} <= {RunState.STOPPED, RunState.DONE}, outcomes
    assert RunState.STOPPED in {o.state for o in outcomes}, outcomes
    assert all(o.drawn > 0 for o in outcomes)  # both workers really drew
    con = sqlite3.connect(str(db))
    dups = con.execute(
        "SELECT COUNT(*) FROM (SELECT 1 FROM samples GROUP BY run, problem, config, idx HAVING COUNT(*) > 1)"
    ).fetchone()[0]
    con.close()
    assert dups == 0
    with SQLiteStore(db) as store:
        info = store.get_run("r")
        finished = store.samples("r", [SampleState.DONE, SampleState.FAILED])
        assert store.samples("r", [SampleState.RUNNING]) == []
        assert store.workers("r") == {}
    assert getattr(info.spent, kind) <= budget.limits()[kind]
    assert info.reserved == Spend()
    assert sum(o.drawn for o in outcomes) == len(finished)  # each sample settled by exactly one worker
    check_store_consistent(db, "r")


class _Small(FixedK):
    """FixedK that proposes at most 16 samples at a time (a policy may always propose less)."""

    def propose(self, view, limit):
        return super().propose(view, min(limit, 16))


def test_two_workers_draw_exactly_k_per_pair(tmp_path: Path, replay: tuple[Path, dict]) -> None:
    """Two workers interleaved deterministically in one event loop (each on its own connection,
    with its own worker id): together they must draw what one worker would, k per pair. The
    policy proposes at most 16 samples at a time, so the run takes many proposal rounds."""
    path, _ = replay
    db = tmp_path / "store.db"
    with SQLiteStore(db) as store:
        create_replay_run(store, "r", path)

    async def both() -> list:
        stores = [SQLiteStore(db), SQLiteStore(db)]
        try:
            return await asyncio.gather(*(
                execute(st, "r", WrappedReplay(path, delay=0.001), _Small(k=K), make_verifier("auto"), Budget(),
                        concurrency=32, max_batch=1, worker=f"test-worker-{i}")
                for i, st in enumerate(stores)
            ))  # fmt: skip
        finally:
            for st in stores:
                st.close()

    outcomes = asyncio.run(both())
    assert all(o.state is RunState.DONE for o in outcomes)
    with SQLiteStore(db) as store:
        samples = store.samples("r")
    counts = collections.Counter((s.problem, s.config) for s in samples)
    assert len(samples) == PLANNED, f"{len(samples)} samples drawn for {PLANNED} planned"
    assert set(counts.values()) == {K}
