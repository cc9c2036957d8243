"""The one contract suite every store passes (see the docstring of ``budgetlab.stores._base``).

Each test runs against every store: SQLiteStore on a file and in memory, SQLAlchemyStore on an
SQLite file, and SQLAlchemyStore on PostgreSQL when ``BUDGETLAB_TEST_POSTGRES_URL`` names a
database (each test then works in a schema of its own, dropped afterwards).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import multiprocessing
import os
import random
import sqlite3
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from budgetlab.core import BILLED_ESTIMATE, Budget, Problem, Sample, SampleKey, SampleState, SamplingConfig, Spend, derive_seed
from budgetlab.core.run import RunInfo, RunSpec, RunState
from budgetlab.errors import BudgetlabError, InputError, RunNotFound, StoreError
from budgetlab.stores import BaseStore, ClaimResult, Proposal, SQLiteStore, open_store

sys.path.insert(0, str(Path(__file__).parent))
import _store_workers  # noqa: E402

PENDING, RUNNING, DONE, FAILED = SampleState.PENDING, SampleState.RUNNING, SampleState.DONE, SampleState.FAILED
PG_URL = os.environ.get("BUDGETLAB_TEST_POSTGRES_URL")
NO_PG = pytest.mark.skipif(
    not PG_URL, reason="set BUDGETLAB_TEST_POSTGRES_URL=postgresql+psycopg://user@host/db to test the PostgreSQL store"
)

C1 = SamplingConfig(model="m1")
C2 = SamplingConfig(model="m2", params={"temperature": 0.7}, template="Q: {prompt}", label="warm")


# ---- the stores ---------------------------------------------------------------------------------
@dataclass
class Backend:
    """One kind of store, opened as often as a test likes (all closed at the end)."""

    kind: str
    target: str  # what open() opens: a path or a URL (with any password)
    durable: bool  # reopening finds the same data
    where: str | None = None  # what its error messages call it: the file, or the URL
    execute: Callable[[str], None] | None = None  # runs SQL on the database directly
    opened: list[BaseStore] = field(default_factory=list)

    def open(self) -> BaseStore:
        if self.kind == "sqlite-memory":
            store: BaseStore = SQLiteStore(":memory:")
        else:
            store = _store_workers.open_store(self.kind, self.target)
        self.opened.append(store)
        return store


def _sqlite_execute(path: Path) -> Callable[[str], None]:
    def execute(sql: str) -> None:
        conn = sqlite3.connect(path)
        with conn:
            conn.execute(sql)
        conn.close()

    return execute


@pytest.fixture
def _postgres() -> Iterator[tuple[str, Callable[[str], None]]]:
    """A fresh schema in the test database: (URL that works in it, SQL runner), dropped after."""
    sa = pytest.importorskip("sqlalchemy")
    base = sa.make_url(PG_URL)
    schema = f"budgetlab_test_{uuid.uuid4().hex[:12]}"
    url = base.update_query_dict({"options": f"-csearch_path={schema}"})
    admin = sa.create_engine(base)
    with admin.begin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    engine = sa.create_engine(url)

    def execute(sql: str) -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(sql)

    try:
        yield url.render_as_string(hide_password=False), execute
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def _make_backend(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    path = tmp_path / "store.db"
    if kind == "sqlite-file":
        return Backend(kind, str(path), True, str(path), _sqlite_execute(path))
    if kind == "sqlite-memory":
        return Backend(kind, ":memory:", False)
    pytest.importorskip("sqlalchemy")
    if kind == "sqlalchemy-sqlite":
        return Backend(kind, f"sqlite:///{path}", True, str(path), _sqlite_execute(path))
    assert kind == "postgres"
    url, execute = request.getfixturevalue("_postgres")
    return Backend(kind, url, True, None, execute)


ALL = ["sqlite-file", "sqlite-memory", "sqlalchemy-sqlite", pytest.param("postgres", marks=NO_PG)]
DURABLE = ["sqlite-file", "sqlalchemy-sqlite", pytest.param("postgres", marks=NO_PG)]
FILES = ["sqlite-file", "sqlalchemy-sqlite"]


def _backend_fixture(kinds: list) -> Callable:
    @pytest.fixture(params=kinds)
    def fixture(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
        backend = _make_backend(request.param, request, tmp_path)
        try:
            yield backend
        finally:
            for store in backend.opened:
                store.close()

    return fixture


backend = _backend_fixture(ALL)
durable_backend = _backend_fixture(DURABLE)
file_backend = _backend_fixture(FILES)


@pytest.fixture
def store(backend: Backend) -> BaseStore:
    return backend.open()


# ---- helpers ------------------------------------------------------------------------------------
def make_run(store: BaseStore, name: str = "r", *, budget: Budget = Budget(), seed: int = 7, problems=("p1", "p2")) -> RunInfo:
    spec = RunSpec(name=name, backend="replay", budget=budget, seed=seed)
    return store.create_run(spec, [Problem(p, prompt=f"what is {p}?") for p in problems], [C1, C2])


def settle(s: Sample, state: SampleState = DONE, *, prompt: int = 3, completion: int = 5, cost: float = 0.1,
           verify: float = 0.5, correct: bool | None = True) -> Sample:  # fmt: skip
    return replace(
        s, state=state, text=None if state is FAILED else "the answer is 42", answer="42", correct=correct, score=1.0,
        prompt_tokens=prompt, completion_tokens=completion, cost=cost, latency=0.25, verify_seconds=verify,
        logprob=-1.5, error="HTTP 500" if state is FAILED else None,
    )  # fmt: skip


def total(samples) -> Spend:
    return sum((s.spend for s in samples), Spend())


def assert_spend(actual: Spend, expected: Spend) -> None:
    assert actual.samples == expected.samples and actual.tokens == expected.tokens, (actual, expected)
    assert actual.dollars == pytest.approx(expected.dollars, abs=1e-9), (actual, expected)
    assert actual.verify_seconds == pytest.approx(expected.verify_seconds, abs=1e-9), (actual, expected)


def assert_spent_exact(store: BaseStore, run: str = "r") -> None:
    assert_spend(store.get_run(run).spent, total(store.samples(run, [DONE, FAILED])))


def snapshot(store: BaseStore, run: str = "r") -> tuple:
    info = store.get_run(run)
    return info.spent, info.reserved, info.state, store.samples(run)


def keys_of(samples) -> list[SampleKey]:
    return [s.key for s in samples]


# ---- runs ---------------------------------------------------------------------------------------
def test_create_run_records_spec_and_returns_fresh_info(store: BaseStore) -> None:
    before = time.time()
    spec = RunSpec(
        name="r", backend="openai", policy="adaptive", policy_args={"k": 3, "alpha": [0.5, 1]}, verifier="exact",
        budget=Budget(samples=100, dollars=2.5), seed=123, concurrency=8,
    )  # fmt: skip
    info = store.create_run(spec, [Problem("p1", prompt="x")], [C1])
    assert info.spec == spec
    assert info.name == "r"
    assert info.state is RunState.CREATED and info.stopped_because is None
    assert info.spent == Spend() and info.reserved == Spend()
    assert before <= info.created_at <= info.updated_at <= time.time()
    assert store.find_run("r") == info == store.get_run("r")
    assert store.samples("r") == []


def test_duplicate_run_name_is_an_input_error_and_changes_nothing(store: BaseStore) -> None:
    make_run(store)
    with pytest.raises(InputError, match="'r'") as exc:
        store.create_run(RunSpec(name="r", backend="other", seed=99), [Problem("other")], [C2])
    assert "--name" in str(exc.value)
    assert "\n" not in str(exc.value)
    assert store.get_run("r").spec.backend == "replay"
    assert [p.id for p in store.problems("r")] == ["p1", "p2"]
    assert store.configs("r") == [C1, C2]
    assert len(store.list_runs()) == 1


def test_creating_the_very_same_run_again_returns_it_unchanged(store: BaseStore) -> None:
    """Workers started with one command at the same instant all find no run and all create it:
    each must join the one run (before, all but one failed with "already exists", and the CLI
    then deleted the store file it thought it had just made, under the worker using it)."""
    first = make_run(store)
    store.add_pending("r", [Proposal("p1", C1.id, 2)])
    again = make_run(store)
    assert again.name == first.name and again.spec == first.spec
    assert len(store.samples("r")) == 2 and len(store.list_runs()) == 1
    for other in (dict(seed=8), dict(budget=Budget(samples=5)), dict(problems=("p1", "p3"))):
        with pytest.raises(InputError, match="already exists"):
            make_run(store, **other)
    assert store.get_run("r").spec == first.spec


def test_missing_run_is_run_not_found_naming_the_run_and_the_fix(store: BaseStore) -> None:
    assert store.find_run("nope") is None
    with pytest.raises(RunNotFound) as exc:
        store.get_run("nope")
    message = str(exc.value)
    assert "'nope'" in message and store.url in message and "no runs yet" in message
    assert "budgetlab runs" in message
    make_run(store, "alpha")
    make_run(store, "beta")
    with pytest.raises(RunNotFound, match="alpha, beta"):
        store.get_run("nope")
    with pytest.raises(RunNotFound, match="'nope'"):
        store.add_pending("nope", [Proposal("p1", C1.id, 1)])
    with pytest.raises(RunNotFound, match="'nope'"):
        store.claim("nope", "w", [], [], Budget())


def test_list_runs_in_creation_order(store: BaseStore) -> None:
    assert store.list_runs() == []
    for name in ("b", "a", "c"):
        make_run(store, name)
    assert [r.name for r in store.list_runs()] == ["b", "a", "c"]
    assert store.list_runs() == [store.get_run(n) for n in ("b", "a", "c")]


def test_update_spec_replaces_the_spec_of_that_run_only(store: BaseStore) -> None:
    first = make_run(store, budget=Budget(samples=10))
    make_run(store, "other", budget=Budget(samples=10))
    raised = RunSpec(name="r", backend="replay", budget=Budget(samples=50, tokens=1000), seed=7, concurrency=3)
    store.update_spec(raised)
    info = store.get_run("r")
    assert info.spec == raised
    assert info.updated_at >= first.updated_at and info.created_at == first.created_at
    assert first.spec.budget == Budget(samples=10)  # returned objects are snapshots
    assert store.get_run("other").spec.budget == Budget(samples=10)


def test_set_run_state(store: BaseStore) -> None:
    make_run(store)
    make_run(store, "other")
    store.set_run_state("r", RunState.RUNNING)
    assert store.get_run("r").state is RunState.RUNNING
    store.set_run_state("r", RunState.STOPPED, "samples")
    info = store.get_run("r")
    assert (info.state, info.stopped_because) == (RunState.STOPPED, "samples")
    store.set_run_state("r", RunState.RUNNING)  # resumed: the old reason goes
    assert (store.get_run("r").state, store.get_run("r").stopped_because) == (RunState.RUNNING, None)
    assert store.get_run("other").state is RunState.CREATED


def test_problems_and_configs_round_trip_in_the_order_given(store: BaseStore) -> None:
    problems = [
        Problem("z9", prompt="last letter first"),
        Problem("a1", messages=({"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}),
                reference="4", metadata={"level": 3, "tags": ["arith"], "unicode": "é∑"}),
        Problem("m5", prompt="", reference="x"),
    ]  # fmt: skip
    configs = [C2, C1, SamplingConfig(model="m3", backend="vllm", params={"top_p": 0.9, "n": None})]
    store.create_run(RunSpec(name="r", backend="replay"), problems, configs)
    store.create_run(RunSpec(name="other", backend="replay"), [Problem("q")], [C1])
    assert store.problems("r") == problems
    assert store.configs("r") == configs
    assert [c.id for c in store.configs("r")] == [c.id for c in configs]
    assert store.problems("other") == [Problem("q")]
    assert store.problems("missing") == [] and store.configs("missing") == []


def test_returned_objects_are_immutable_snapshots(store: BaseStore) -> None:
    info = make_run(store)
    (s,) = store.add_pending("r", [Proposal("p1", C1.id, 1)])
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.state = RunState.DONE  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.state = RunState.DONE  # type: ignore[misc]
    listed = store.samples("r")
    store.claim("r", "w", [s.key], [Spend(tokens=10)], Budget())
    assert info.reserved == Spend() and listed[0].state is PENDING and s.state is PENDING
    assert store.get_run("r").reserved == Spend(1, 10)


# ---- adding samples ----------------------------------------------------------------------------
def test_add_pending_allocates_indexes_from_zero_with_derived_seeds(store: BaseStore) -> None:
    make_run(store, seed=42)
    created = store.add_pending("r", [Proposal("p1", C1.id, 3), Proposal("p2", C1.id, 2), Proposal("p1", C2.id, 0)])
    assert [(s.problem, s.config, s.index) for s in created] == [
        ("p1", C1.id, 0), ("p1", C1.id, 1), ("p1", C1.id, 2), ("p2", C1.id, 0), ("p2", C1.id, 1)
    ]  # fmt: skip
    for s in created:
        assert s.run == "r" and s.state is PENDING
        assert s.seed == derive_seed(42, s.problem, s.config, s.index)
    assert store.samples("r") == sorted(created, key=lambda s: s.key)
    # Later calls continue where the pair left off, also for a pair given twice in one call.
    more = store.add_pending("r", [Proposal("p1", C1.id, 2), Proposal("p2", C2.id, 1), Proposal("p1", C1.id, 1)])
    assert [(s.problem, s.config, s.index) for s in more] == [
        ("p1", C1.id, 3), ("p1", C1.id, 4), ("p2", C2.id, 0), ("p1", C1.id, 5)
    ]  # fmt: skip
    assert all(s.seed == derive_seed(42, s.problem, s.config, s.index) for s in more)
    assert len(store.samples("r")) == 9
    assert store.add_pending("r", []) == []


def test_indexes_continue_after_finished_and_released_samples(store: BaseStore) -> None:
    make_run(store)
    a, b = store.add_pending("r", [Proposal("p1", C1.id, 2)])
    store.claim("r", "w", [a.key, b.key], [Spend(), Spend()], Budget())
    store.finish("r", "w", [settle(a)])
    store.release("r", "w")
    (c,) = store.add_pending("r", [Proposal("p1", C1.id, 1)])
    assert c.index == 2
    # The same pair in another run starts again at 0, with that run's seed.
    make_run(store, "other", seed=8)
    (d,) = store.add_pending("other", [Proposal("p1", C1.id, 1)])
    assert (d.index, d.seed) == (0, derive_seed(8, "p1", C1.id, 0))


# ---- claiming -----------------------------------------------------------------------------------
def test_claim_moves_pending_to_running_and_reserves_exactly(store: BaseStore) -> None:
    make_run(store)
    created = store.add_pending("r", [Proposal("p1", C1.id, 4)])
    reservations = [Spend(tokens=100, dollars=0.1, verify_seconds=1.5), Spend(tokens=7, dollars=0.2), Spend(samples=5)]
    result = store.claim("r", "w1", keys_of(created[:3]), reservations, Budget())
    assert result == ClaimResult(tuple(keys_of(created[:3])), None)
    assert keys_of(store.samples("r", [RUNNING])) == keys_of(created[:3])
    assert keys_of(store.samples("r", [PENDING])) == [created[3].key]
    # One sample each, whatever a reservation says about samples.
    assert_spend(store.get_run("r").reserved, Spend(3, 107, 0.3, 1.5))
    assert store.get_run("r").spent == Spend()
    assert all(s.seed == c.seed for s, c in zip(store.samples("r"), created))


def test_claim_skips_keys_that_are_not_pending(store: BaseStore) -> None:
    make_run(store)
    s0, s1, s2, s3 = store.add_pending("r", [Proposal("p1", C1.id, 4)])
    store.claim("r", "w1", [s0.key, s1.key], [Spend(tokens=1)] * 2, Budget())
    store.finish("r", "w1", [settle(s1)])
    missing = SampleKey("p1", C1.id, 99)
    keys = [s0.key, s1.key, missing, SampleKey("nope", C1.id, 0), s2.key, s2.key, s3.key]
    result = store.claim("r", "w2", keys, [Spend(tokens=1)] * len(keys), Budget())
    assert result == ClaimResult((s2.key, s3.key), None)
    assert {s.key: s.state for s in store.samples("r")} == {s0.key: RUNNING, s1.key: DONE, s2.key: RUNNING, s3.key: RUNNING}
    assert_spend(store.get_run("r").reserved, Spend(3, 3))


@pytest.mark.parametrize(
    ("limit", "budget", "reservation"),
    [
        ("samples", Budget(samples=2), Spend()),
        ("tokens", Budget(tokens=250), Spend(tokens=100)),
        ("dollars", Budget(dollars=0.25), Spend(dollars=0.1)),
        ("verify_seconds", Budget(verify_seconds=2.5), Spend(verify_seconds=1.0)),
    ],
)
def test_claim_stops_at_the_first_reservation_over_the_budget(store: BaseStore, limit, budget, reservation) -> None:
    make_run(store, budget=budget)
    created = store.add_pending("r", [Proposal("p1", C1.id, 4)])
    # The third does not fit; the fourth would (it reserves nothing but a sample, or not even
    # that much of the limit) but a claim stops at the first that does not fit.
    reservations = [reservation, reservation, reservation, Spend()]
    result = store.claim("r", "w", keys_of(created), reservations, budget)
    expected = keys_of(created[:2])
    assert result == ClaimResult(tuple(expected), limit)
    assert keys_of(store.samples("r", [RUNNING])) == expected
    assert_spend(store.get_run("r").reserved, Spend(2) + reservation + reservation)


def test_claim_counts_spent_and_reserved_against_the_budget(store: BaseStore) -> None:
    budget = Budget(samples=10, tokens=100)
    make_run(store, budget=budget)
    s = store.add_pending("r", [Proposal("p1", C1.id, 6)])
    assert store.claim("r", "w", keys_of(s[:2]), [Spend(tokens=40)] * 2, budget).claimed == tuple(keys_of(s[:2]))
    # Real spend (even of a failed sample: tokens count) replaces the reservation.
    store.finish("r", "w", [settle(s[0], prompt=10, completion=20), settle(s[1], FAILED, prompt=5, completion=5)])
    assert_spend(store.get_run("r").spent, Spend(1, 40, 0.2, 1.0))
    assert store.get_run("r").reserved == Spend()
    # Exactly filling a limit is allowed; one token more is not.
    result = store.claim("r", "w", keys_of(s[2:4]), [Spend(tokens=60), Spend(tokens=1)], budget)
    assert result == ClaimResult((s[2].key,), "tokens")
    assert store.claim("r", "w2", [s[3].key], [Spend()], budget) == ClaimResult((s[3].key,), None)


def test_a_key_that_is_no_longer_pending_does_not_block_a_claim(store: BaseStore) -> None:
    budget = Budget(tokens=100)
    make_run(store, budget=budget)
    s = store.add_pending("r", [Proposal("p1", C1.id, 3)])
    store.claim("r", "w1", [s[0].key], [Spend(tokens=80)], budget)
    # w2 still proposes s0 (it lost that race) with a reservation that would not fit: it is
    # skipped, not a budget stop, and the rest is claimed.
    result = store.claim("r", "w2", keys_of(s), [Spend(tokens=80), Spend(tokens=10), Spend(tokens=10)], budget)
    assert result == ClaimResult((s[1].key, s[2].key), None)


def test_claim_is_all_or_nothing_on_bad_arguments(store: BaseStore) -> None:
    make_run(store)
    s = store.add_pending("r", [Proposal("p1", C1.id, 2)])
    with pytest.raises(ValueError):
        store.claim("r", "w", keys_of(s), [Spend()], Budget())
    assert store.samples("r", [RUNNING]) == [] and store.get_run("r").reserved == Spend()


def test_two_workers_claiming_the_same_keys_get_each_key_once(backend: Backend) -> None:
    first = backend.open()
    second = backend.open() if backend.durable else first
    make_run(first)
    created = first.add_pending("r", [Proposal("p1", C1.id, 6), Proposal("p2", C2.id, 4)])
    keys = keys_of(created)
    a = first.claim("r", "w1", keys[:6], [Spend(tokens=1)] * 6, Budget())
    b = second.claim("r", "w2", keys, [Spend(tokens=1)] * 10, Budget())
    c = first.claim("r", "w1", keys[::-1], [Spend(tokens=1)] * 10, Budget())
    assert a.claimed == tuple(keys[:6]) and b.claimed == tuple(keys[6:]) and c.claimed == ()
    running = {s.key for s in second.samples("r", [RUNNING])}
    assert running == set(keys)
    assert_spend(first.get_run("r").reserved, Spend(10, 10))


# ---- finishing ----------------------------------------------------------------------------------
def test_finish_settles_samples_with_their_results(store: BaseStore) -> None:
    make_run(store)
    s = store.add_pending("r", [Proposal("p1", C1.id, 3)])
    store.claim("r", "w", keys_of(s), [Spend(tokens=50, dollars=1.0, verify_seconds=2.0)] * 3, Budget())
    done = settle(s[0], correct=False)
    failed = settle(s[1], FAILED, prompt=4, completion=0, cost=0.05, verify=0.0)
    assert store.finish("r", "w", [done, failed]) == [True, True]
    by_key = {x.key: x for x in store.samples("r")}
    assert by_key[done.key] == done  # every result field round-trips, correct=False included
    assert by_key[failed.key] == failed
    assert by_key[s[2].key].state is RUNNING
    info = store.get_run("r")
    assert_spend(info.spent, Spend(1, 12, 0.15, 0.5))  # a failed sample: tokens and dollars, not a sample
    assert_spend(info.reserved, Spend(1, 50, 1.0, 2.0))
    assert_spent_exact(store)
    nothing = replace(settle(s[2]), correct=None, score=None, logprob=None, answer=None, text="")
    assert store.finish("r", "w", [nothing]) == [True]
    assert {x.key: x for x in store.samples("r")}[s[2].key] == nothing


def test_finish_by_another_worker_or_twice_returns_false_and_changes_nothing(store: BaseStore) -> None:
    make_run(store)
    s = store.add_pending("r", [Proposal("p1", C1.id, 3)])
    store.claim("r", "w1", keys_of(s[:2]), [Spend(tokens=20)] * 2, Budget())
    before = snapshot(store)
    assert store.finish("r", "w2", [settle(s[0])]) == [False]  # another worker's
    assert store.finish("r", "w1", [settle(s[2])]) == [False]  # never claimed
    assert store.finish("r", "w1", [settle(replace(s[0], index=99))]) == [False]  # no such sample
    assert snapshot(store) == before
    assert store.finish("r", "w1", [settle(s[0], prompt=1)]) == [True]
    after = snapshot(store)
    # Twice, even with other results, and in a batch with a good one: only that one is settled.
    assert store.finish("r", "w1", [settle(s[0], FAILED, prompt=9)]) == [False]
    assert snapshot(store) == after
    assert store.finish("r", "w1", [settle(s[1]), settle(s[1], prompt=50), settle(s[0], prompt=7)]) == [True, False, False]
    by_key = {x.key: x for x in store.samples("r")}
    assert by_key[s[0].key] == settle(s[0], prompt=1) and by_key[s[1].key] == settle(s[1])
    assert store.get_run("r").reserved == Spend()
    assert_spent_exact(store)


def test_finish_rejects_unfinished_samples_without_settling_any(store: BaseStore) -> None:
    make_run(store)
    s = store.add_pending("r", [Proposal("p1", C1.id, 2)])
    store.claim("r", "w", keys_of(s), [Spend(tokens=5)] * 2, Budget())
    before = snapshot(store)
    with pytest.raises(ValueError, match="running"):
        store.finish("r", "w", [settle(s[0]), replace(s[1], state=RUNNING)])
    assert snapshot(store) == before


def test_finished_samples_never_change(store: BaseStore) -> None:
    make_run(store)
    (s,) = store.add_pending("r", [Proposal("p1", C1.id, 1)])
    store.claim("r", "w", [s.key], [Spend(tokens=10)], Budget())
    store.finish("r", "w", [settle(s)])
    store.heartbeat("r", "w")
    before = snapshot(store)
    assert store.claim("r", "w", [s.key], [Spend()], Budget()).claimed == ()
    assert store.release("r", "w") == 0
    assert store.finish("r", "w", [settle(s, FAILED)]) == [False]
    with pytest.raises(Exception):  # noqa: B017 - the key exists: an integrity error of the database
        store.import_samples("r", [settle(s, prompt=99)])
    assert snapshot(store) == before


# ---- workers ------------------------------------------------------------------------------------
def test_heartbeat_and_workers(store: BaseStore) -> None:
    make_run(store)
    make_run(store, "other")
    assert store.workers("r") == {}
    t0 = time.time()
    store.heartbeat("r", "w1")
    store.heartbeat("r", "w2")
    store.heartbeat("other", "w3")
    seen = store.workers("r")
    assert set(seen) == {"w1", "w2"} and all(t0 <= t <= time.time() for t in seen.values())
    time.sleep(0.01)
    store.heartbeat("r", "w1")
    again = store.workers("r")
    assert again["w1"] > seen["w1"] and again["w2"] == seen["w2"]
    assert store.workers("other").keys() == {"w3"}


def test_release_returns_a_workers_samples_to_pending_and_frees_its_reservations(store: BaseStore) -> None:
    make_run(store)
    s = store.add_pending("r", [Proposal("p1", C1.id, 5)])
    store.heartbeat("r", "w1")
    store.heartbeat("r", "w2")
    store.claim("r", "w1", keys_of(s[:3]), [Spend(tokens=10, dollars=0.5)] * 3, Budget())
    store.claim("r", "w2", keys_of(s[3:]), [Spend(tokens=1, verify_seconds=2.0)] * 2, Budget())
    store.finish("r", "w1", [settle(s[0])])
    assert store.release("r", "w1") == 2
    states = {x.key: x.state for x in store.samples("r")}
    assert [states[k] for k in keys_of(s)] == [DONE, PENDING, PENDING, RUNNING, RUNNING]
    assert store.workers("r").keys() == {"w2"}
    assert_spend(store.get_run("r").reserved, Spend(2, 2, 0.0, 4.0))
    assert_spent_exact(store)
    # A released sample may be finished by no one until claimed again, with its old seed.
    assert store.finish("r", "w1", [settle(s[1])]) == [False]
    assert store.claim("r", "w3", [s[1].key], [Spend()], Budget()).claimed == (s[1].key,)
    assert {x.key: x for x in store.samples("r")}[s[1].key].seed == s[1].seed
    assert store.release("r", "nobody") == 0
    assert store.release("r", "w2") == 2 and store.release("r", "w3") == 1
    assert store.get_run("r").reserved == Spend()


def test_requeue_failed_returns_only_unbilled_failures_to_pending_with_their_seeds(store: BaseStore) -> None:
    make_run(store)
    s = store.add_pending("r", [Proposal("p1", C1.id, 4)])
    store.claim("r", "w1", keys_of(s), [Spend(tokens=10)] * 4, Budget())
    store.finish("r", "w1", [settle(s[0]), settle(s[1], FAILED, prompt=0, completion=0, cost=0.0, verify=0.0),
                             settle(s[2], FAILED, prompt=7, completion=0, cost=0.0), settle(s[3], FAILED,
                             prompt=0, completion=0, cost=0.002)])  # fmt: skip
    before = store.get_run("r").spent
    assert store.requeue_failed("r") == 1
    after = {x.key: x for x in store.samples("r")}
    assert [after[k].state for k in keys_of(s)] == [DONE, PENDING, FAILED, FAILED]
    again = after[s[1].key]
    assert again.seed == s[1].seed and again.error is None and again.text is None and again.latency == 0
    assert store.get_run("r").spent == before  # nothing it cost is taken back
    assert_spent_exact(store)
    # Drawn again, it is claimed and finished like any pending sample.
    assert store.claim("r", "w2", [s[1].key], [Spend()], Budget()).claimed == (s[1].key,)
    assert store.finish("r", "w2", [settle(again)]) == [True]
    assert store.requeue_failed("r") == 0


def test_requeue_failed_returns_a_failure_that_cost_only_a_timeout_estimate_and_keeps_its_spend(store: BaseStore) -> None:
    make_run(store)
    s = store.add_pending("r", [Proposal("p1", C1.id, 3)])
    store.claim("r", "w1", keys_of(s), [Spend(tokens=10)] * 3, Budget())
    estimate = {"timed_out_attempts": 2, "prompt_tokens": 40, "completion_tokens": 200, "cost": 0.012}
    timed_out = replace(settle(s[0], FAILED, prompt=40, completion=200, cost=0.012), details={BILLED_ESTIMATE: estimate})
    # Timed out once, then answered with a billed error: more than the estimate, so it stays failed.
    billed_too = replace(settle(s[1], FAILED, prompt=45, completion=200, cost=0.013), details={BILLED_ESTIMATE: estimate})
    store.finish("r", "w1", [timed_out, billed_too, settle(s[2])])
    before = store.get_run("r").spent
    assert store.requeue_failed("r") == 1
    after = {x.key: x for x in store.samples("r")}
    assert [after[k].state for k in keys_of(s)] == [PENDING, FAILED, DONE]
    assert after[s[0].key].seed == s[0].seed and after[s[0].key].details == {} and after[s[0].key].cost == 0
    assert store.get_run("r").spent == before  # what the timed-out attempts may have cost stays spent
    assert store.requeue_failed("r") == 0


# ---- reading and importing ----------------------------------------------------------------------
def test_samples_filters_by_state_and_orders_by_problem_config_index(store: BaseStore) -> None:
    # Ids where a collation other than code points would order differently.
    make_run(store, problems=("b", "B", "a_b", "a-b", "ab", "10", "9", "é"))
    props = [Proposal(p, c.id, n) for p in ("é", "b", "9", "B", "a_b", "10", "a-b", "ab") for c, n in ((C2, 1), (C1, 12))]
    created = store.add_pending("r", props)
    expected = sorted(created, key=lambda s: (s.problem, s.config, s.index))
    assert keys_of(store.samples("r")) == keys_of(expected)
    assert [s.index for s in store.samples("r") if s.problem == "b" and s.config == C1.id] == list(range(12))
    running = expected[5:9]
    store.claim("r", "w", keys_of(running), [Spend()] * 4, Budget())
    store.finish("r", "w", [settle(running[0]), settle(running[2], FAILED)])
    assert keys_of(store.samples("r", [DONE])) == [running[0].key]
    assert keys_of(store.samples("r", {FAILED, DONE})) == [running[0].key, running[2].key]
    assert keys_of(store.samples("r", (x for x in [RUNNING]))) == [running[1].key, running[3].key]
    assert keys_of(store.samples("r", ["running", "failed"])) == keys_of(running[1:])
    assert len(store.samples("r", [PENDING])) == len(created) - 4
    assert store.samples("r", []) == []
    assert store.samples("other") == []


def test_import_samples_records_finished_samples_and_adds_their_spend(store: BaseStore) -> None:
    make_run(store)
    (own,) = store.add_pending("r", [Proposal("p1", C1.id, 1)])
    imported = [
        settle(Sample("r", "p1", C2.id, 0, 11), prompt=100, completion=20, cost=0.3),
        settle(Sample("r", "p1", C2.id, 1, 12), FAILED, prompt=7, completion=0, cost=0.01, verify=0.0),
        settle(Sample("r", "p2", C1.id, 0, 13), correct=None),
    ]
    store.import_samples("r", imported)
    assert_spend(store.get_run("r").spent, Spend(2, 7 + 120 + 8, 0.41, 1.0))
    assert store.get_run("r").reserved == Spend()
    by_key = {s.key: s for s in store.samples("r")}
    assert [by_key[s.key] for s in imported] == imported and by_key[own.key] == own
    assert_spent_exact(store)
    (nxt,) = store.add_pending("r", [Proposal("p1", C2.id, 1)])
    assert nxt.index == 2  # new indexes continue after imported ones
    before = snapshot(store)
    with pytest.raises(ValueError):
        store.import_samples("r", [settle(Sample("r", "p3", C1.id, 0, 1)), Sample("r", "p3", C1.id, 1, 2)])
    assert snapshot(store) == before


def test_record_verdicts_replaces_the_verdicts_of_done_samples_and_moves_spent_by_the_difference(store: BaseStore) -> None:
    make_run(store)
    make_run(store, "other")
    s = store.add_pending("r", [Proposal("p1", C1.id, 4), Proposal("p2", C1.id, 1)])
    (twin,) = store.add_pending("other", [Proposal("p1", C1.id, 1)])  # the same key in another run
    store.claim("r", "w", keys_of(s[:4]), [Spend(tokens=100, dollars=1.0, verify_seconds=2.0)] * 4, Budget())
    store.claim("other", "w", [twin.key], [Spend()], Budget())
    unjudged = replace(settle(s[0], verify=0.0), answer=None, correct=None, score=None, details={"unjudged": "broke"})
    wrong = settle(s[1], correct=False, prompt=4, completion=6, cost=0.25, verify=0.5)
    store.finish("r", "w", [unjudged, wrong, settle(s[2], FAILED)])
    store.finish("other", "w", [settle(twin, correct=False)])
    spent, reserved = store.get_run("r").spent, store.get_run("r").reserved
    others = snapshot(store, "other")

    def judged(x: Sample, **changes) -> Sample:
        # A new text, latency and logprob too: the store keeps what drawing gave, not these.
        return replace(x, answer="42", correct=True, score=0.75, details={"rule": "boxed"}, text="changed",
                       latency=9.0, logprob=-9.0, **changes)  # fmt: skip

    verdicts = [
        judged(unjudged, prompt_tokens=3 + 20, completion_tokens=5 + 4, cost=0.1 + 0.125, verify_seconds=1.5),
        judged(wrong, verify_seconds=0.25),  # cheaper than before: spent goes down
        judged(settle(s[2])),  # failed: a draw that failed is not judged
        judged(settle(s[3])),  # running
        judged(settle(s[4])),  # pending
        judged(settle(replace(s[0], index=99))),  # no such sample
    ]
    assert store.record_verdicts("r", verdicts) == 2
    by_key = {x.key: x for x in store.samples("r")}
    for stored, given in ((unjudged, verdicts[0]), (wrong, verdicts[1])):
        drawn = {"text": stored.text, "latency": stored.latency, "logprob": stored.logprob}
        assert by_key[stored.key] == replace(given, **drawn)
    assert by_key[s[2].key] == settle(s[2], FAILED) and by_key[s[3].key].state is RUNNING
    assert by_key[s[4].key] == s[4] and replace(s[0], index=99).key not in by_key
    info = store.get_run("r")
    assert_spend(info.spent, spent + Spend(0, 24, 0.125, 1.5 - 0.25))
    assert info.reserved == reserved
    assert_spent_exact(store)
    assert snapshot(store, "other") == others
    assert store.record_verdicts("r", []) == 0 and store.record_verdicts("nope", verdicts[:1]) == 0
    before = snapshot(store)
    with pytest.raises(ValueError, match="done samples only"):  # all or nothing
        store.record_verdicts("r", [replace(verdicts[0], correct=False), replace(verdicts[1], state=FAILED)])
    assert snapshot(store) == before


# ---- the spend invariants under random operations -------------------------------------------------
class Model:
    """What the contract says the store must hold."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.state: dict[SampleKey, SampleState] = {}
        self.holder: dict[SampleKey, str] = {}
        self.reservation: dict[SampleKey, Spend] = {}
        self.spend: dict[SampleKey, Spend] = {}

    def spent(self) -> Spend:
        return sum(self.spend.values(), Spend())

    def reserved(self) -> Spend:
        return sum(self.reservation.values(), Spend())

    def claim(self, worker: str, keys, reservations, budget: Budget) -> ClaimResult:
        committed, added, claimed = self.spent() + self.reserved(), Spend(), []
        for key, res in zip(keys, reservations):
            reserve = Spend(1, res.tokens, res.dollars, res.verify_seconds)
            pending = self.state.get(key) is PENDING
            over = budget.first_exceeded(committed + added + reserve)
            if over is not None:
                if pending:
                    return ClaimResult(tuple(claimed), over)
                continue
            if pending:
                self.state[key], self.holder[key], self.reservation[key] = RUNNING, worker, reserve
                added += reserve
                claimed.append(key)
        return ClaimResult(tuple(claimed), None)

    def finish(self, worker: str, samples) -> list[bool]:
        out = []
        for s in samples:
            ok = self.state.get(s.key) is RUNNING and self.holder[s.key] == worker
            if ok:
                self.state[s.key] = s.state
                del self.holder[s.key], self.reservation[s.key]
                self.spend[s.key] = s.spend
            out.append(ok)
        return out

    def record_verdicts(self, samples) -> int:
        done = [s for s in samples if self.state.get(s.key) is DONE]
        for s in done:
            self.spend[s.key] = s.spend
        return len(done)

    def release(self, worker: str) -> int:
        mine = [k for k, w in self.holder.items() if w == worker]
        for k in mine:
            self.state[k] = PENDING
            del self.holder[k], self.reservation[k]
        return len(mine)


@pytest.mark.parametrize("seed", [1, 2])
def test_spend_stays_exact_under_random_operations(store: BaseStore, seed: int) -> None:
    rng = random.Random(seed)
    budget = Budget(samples=60, tokens=3000, dollars=6.0, verify_seconds=40.0)
    make_run(store, budget=budget, seed=seed)
    model = Model(seed)
    workers, problems, configs = ["w1", "w2", "w3"], ["p1", "p2", "p3"], [C1.id, C2.id]
    imported = 0
    for step in range(120):
        op = rng.choices(["add", "claim", "finish", "release", "import", "judge"], [3, 5, 5, 1, 1, 1])[0]
        worker = rng.choice(workers)
        if op == "add":
            props = [Proposal(rng.choice(problems), rng.choice(configs), rng.randint(0, 3)) for _ in range(rng.randint(1, 3))]
            created = store.add_pending("r", props)
            for s in created:
                assert s.key not in model.state and s.seed == derive_seed(seed, s.problem, s.config, s.index)
                assert s.index == sum(1 for k in model.state if (k.problem, k.config) == (s.problem, s.config))
                model.state[s.key] = PENDING
        elif op == "claim":
            pool = list(model.state) + [SampleKey("p1", C1.id, 999)]
            keys = rng.sample(pool, min(len(pool), rng.randint(1, 6)))
            reservations = [
                Spend(tokens=rng.randint(0, 120), dollars=rng.choice([0, 0.1, 0.25]), verify_seconds=rng.choice([0, 0.5, 1.5]))
                for _ in keys
            ]
            assert store.claim("r", worker, keys, reservations, budget) == model.claim(worker, keys, reservations, budget)
        elif op == "finish":
            candidates = [k for k, st in model.state.items() if st is RUNNING or rng.random() < 0.05]
            chosen = rng.sample(candidates, min(len(candidates), rng.randint(0, 4)))
            batch = []
            for key in chosen + chosen[:rng.randint(0, 1)]:  # sometimes a key twice
                cap = model.reservation.get(key, Spend(1, 20, 0.1, 0.5))
                prompt = rng.randint(0, cap.tokens)
                batch.append(settle(
                    Sample("r", key.problem, key.config, key.index, derive_seed(seed, *dataclasses.astuple(key))),
                    rng.choice([DONE, DONE, FAILED]), prompt=prompt, completion=rng.randint(0, cap.tokens - prompt),
                    cost=rng.uniform(0, cap.dollars), verify=rng.uniform(0, cap.verify_seconds),
                ))  # fmt: skip
            assert store.finish("r", worker, batch) == model.finish(worker, batch)
        elif op == "release":
            assert store.release("r", worker) == model.release(worker)
        elif op == "judge":  # any state, and a key that does not exist: only done samples change
            keys = rng.sample(list(model.state), min(len(model.state), rng.randint(0, 4))) + [SampleKey("p1", C1.id, 999)]
            verdicts = [
                settle(Sample("r", k.problem, k.config, k.index, 0), prompt=rng.randint(0, 30), completion=rng.randint(0, 30),
                       cost=rng.choice([0, 0.125, 0.5]), verify=rng.choice([0, 0.25, 1.0]), correct=rng.choice([True, False]))
                for k in keys
            ]  # fmt: skip
            assert store.record_verdicts("r", verdicts) == model.record_verdicts(verdicts)
        else:
            imported += 1
            s = settle(Sample("r", f"imp{imported}", C1.id, 0, imported), rng.choice([DONE, FAILED]), prompt=rng.randint(0, 9))
            store.import_samples("r", [s])
            model.state[s.key], model.spend[s.key] = s.state, s.spend
        info = store.get_run("r")
        listed = store.samples("r")
        assert {s.key: s.state for s in listed} == model.state, f"step {step}: {op}"
        assert_spend(info.spent, model.spent())
        assert_spend(info.spent, total(listed))
        assert_spend(info.reserved, model.reserved())
        assert info.reserved.samples == sum(1 for s in listed if s.state is RUNNING)
    assert any(st is RUNNING for st in model.state.values()) or any(st.finished for st in model.state.values())


# ---- opening stores -----------------------------------------------------------------------------
def test_reopening_a_store_keeps_everything(durable_backend: Backend) -> None:
    store = durable_backend.open()
    make_run(store, budget=Budget(samples=9))
    make_run(store, "second")
    s = store.add_pending("r", [Proposal("p1", C1.id, 3), Proposal("p2", C2.id, 2)])
    store.claim("r", "w", keys_of(s[:4]), [Spend(tokens=9, dollars=0.3)] * 4, Budget())
    store.finish("r", "w", [settle(s[0]), settle(s[1], FAILED)])
    store.heartbeat("r", "w")
    store.set_run_state("r", RunState.INTERRUPTED)
    before = (store.list_runs(), store.samples("r"), store.workers("r"), store.problems("r"), store.configs("r"))
    store.close()
    durable_backend.opened.remove(store)
    again = durable_backend.open()
    assert (again.list_runs(), again.samples("r"), again.workers("r"), again.problems("r"), again.configs("r")) == before
    assert again.add_pending("r", [Proposal("p1", C1.id, 1)])[0].index == 3
    assert again.finish("r", "w", [settle(s[2])]) == [True]
    assert_spent_exact(again)


def test_a_newer_schema_version_asks_for_an_upgrade(durable_backend: Backend) -> None:
    durable_backend.open().close()
    durable_backend.opened.clear()
    durable_backend.execute("UPDATE budgetlab_schema SET version = 99")
    with pytest.raises(StoreError) as exc:
        durable_backend.open()
    message = str(exc.value)
    assert "99" in message and "pip install -U budgetlab" in message and "\n" not in message
    assert (durable_backend.where or "postgresql") in message


def test_details_are_kept_with_the_sample(store: BaseStore) -> None:
    make_run(store)
    a, b = store.add_pending("r", [Proposal("p1", C1.id, 2)])
    store.claim("r", "w", [a.key, b.key], [Spend(), Spend()], Budget())
    details = {"thinking_tokens": 12, "waits": [1, 2], "judge": "m", "note": "ünïcode"}
    assert store.finish("r", "w", [replace(settle(a), details=details), settle(b, FAILED)]) == [True, True]
    got = {s.index: s for s in store.samples("r")}
    assert got[0].details == details and got[1].details == {}


def test_a_version_1_store_gets_the_later_columns_and_keeps_its_samples(durable_backend: Backend) -> None:
    store = durable_backend.open()
    make_run(store)
    (a,) = store.add_pending("r", [Proposal("p1", C1.id, 1)])
    store.claim("r", "w", [a.key], [Spend()], Budget())
    store.finish("r", "w", [settle(a)])
    before = store.samples("r")
    store.close()
    durable_backend.opened.clear()
    durable_backend.execute("ALTER TABLE samples DROP COLUMN details")  # as budgetlab 0.1 wrote it
    durable_backend.execute("UPDATE budgetlab_schema SET version = 1")
    again = durable_backend.open()
    assert again.samples("r") == before
    (b,) = again.add_pending("r", [Proposal("p2", C1.id, 1)])
    again.claim("r", "w", [b.key], [Spend()], Budget())
    assert again.finish("r", "w", [replace(settle(b), details={"waits": 1})]) == [True]
    assert [s.details for s in again.samples("r")] == [{}, {"waits": 1}]
    again.close()
    durable_backend.opened.clear()
    assert durable_backend.open().samples("r")[1].details == {"waits": 1}  # the upgrade happened once


def test_a_database_with_foreign_tables_is_refused(durable_backend: Backend) -> None:
    durable_backend.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY, owner TEXT)")
    with pytest.raises(StoreError, match="not a budgetlab store.*runs") as exc:
        durable_backend.open()
    assert "\n" not in str(exc.value)


def test_an_sqlite_file_of_something_else_is_refused(file_backend: Backend) -> None:
    _sqlite_execute(Path(file_backend.where))("CREATE TABLE notes (body TEXT)")
    with pytest.raises(StoreError) as exc:
        file_backend.open()
    message = str(exc.value)
    assert file_backend.where in message and "not a budgetlab store" in message and "notes" in message
    assert "--store" in message


@pytest.mark.parametrize("content", [b"just some text, not a database\n" * 10, b"SQLite format 3\x00" + b"\x07" * 4000])
def test_a_file_that_is_not_an_sqlite_store_is_refused(file_backend: Backend, content: bytes) -> None:
    Path(file_backend.where).write_bytes(content)
    with pytest.raises(StoreError) as exc:
        file_backend.open()
    message = str(exc.value)
    assert file_backend.where in message and "not a budgetlab store" in message and "--store" in message
    assert Path(file_backend.where).read_bytes() == content  # left as it was


def test_a_directory_is_refused(file_backend: Backend) -> None:
    Path(file_backend.where).mkdir()
    with pytest.raises(StoreError, match="directory"):
        file_backend.open()


# The two tests below hold for SQLiteStore only: SQLAlchemyStore still lets a damaged or read-only
# file's DBAPIError through as a traceback (reported, not fixed here).
def _damaged_store(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    store = SQLiteStore(path)
    make_run(store, problems=[f"p{i}" for i in range(300)])
    store.close()
    with open(path, "r+b") as fh:  # a disk fault: a page in the middle overwritten
        fh.seek(8192)
        fh.write(b"\xff" * 4096)
    return path


def test_a_damaged_store_is_a_one_line_store_error_not_a_traceback(tmp_path: Path) -> None:
    """A damaged page is found only when a query reads it, long after the store opened: every
    method must then raise a StoreError that says the file is damaged and what to do, not let
    sqlite3.DatabaseError out (which the CLI prints as a traceback)."""
    path = _damaged_store(tmp_path)
    messages = []
    for use in (lambda s: s.find_run("r"), lambda s: s.problems("r"), lambda s: make_run(s, "other")):
        try:  # a use that reads no damaged page succeeds; any other must raise a StoreError
            with SQLiteStore(path) as store:
                use(store)
        except StoreError as exc:
            messages.append(str(exc))
    assert messages
    for message in messages:
        assert str(path) in message and "damaged" in message and "--store" in message and "\n" not in message


def test_a_store_that_cannot_be_written_is_read_and_refuses_writes_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store on a read-only file, folder or file system still opens for reading (budgetlab
    report), and a write names the cause and the fix; before, even reading failed with "not a
    budgetlab store (unable to open database file)". Simulated with os.access, as root may write
    any file."""
    path = tmp_path / "store.db"
    store = SQLiteStore(path)
    make_run(store)
    store.close()
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if mode & os.W_OK else real_access(p, mode, **kw))
    store = SQLiteStore(path)
    try:
        assert store.get_run("r").spec.seed == 7
        with pytest.raises(StoreError) as exc:
            store.set_run_state("r", RunState.RUNNING)
    finally:
        store.close()
    message = str(exc.value)
    assert str(path) in message and "read-only" in message and "--store" in message and "\n" not in message
    with pytest.raises(StoreError, match="read-only"):
        SQLiteStore(tmp_path / "new.db")  # a new store in that folder


def test_both_sqlite_stores_open_each_others_files(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    from budgetlab.stores._sqlalchemy import SQLAlchemyStore

    for first, second in ((SQLiteStore, SQLAlchemyStore), (SQLAlchemyStore, SQLiteStore)):
        path = tmp_path / f"{first.__name__}.db"
        a = first(str(path) if first is SQLiteStore else f"sqlite:///{path}")
        make_run(a)
        s = a.add_pending("r", [Proposal("p1", C1.id, 3)])
        a.claim("r", "w", keys_of(s), [Spend(tokens=5, dollars=0.5)] * 3, Budget())
        a.finish("r", "w", [settle(s[0])])
        a.close()
        b = second(str(path) if second is SQLiteStore else f"sqlite:///{path}")
        assert [x.state for x in b.samples("r")] == [DONE, RUNNING, RUNNING]
        assert b.finish("r", "w", [settle(s[1], FAILED)]) == [True]
        assert b.release("r", "w") == 1
        assert_spend(b.get_run("r").reserved, Spend())
        assert_spent_exact(b)
        assert b.add_pending("r", [Proposal("p1", C1.id, 1)])[0].index == 3
        b.close()


def test_open_store_picks_the_store_from_the_url(tmp_path: Path) -> None:
    pytest.importorskip("sqlalchemy")
    from budgetlab.stores._sqlalchemy import SQLAlchemyStore

    for url, kind in (
        (str(tmp_path / "a.db"), SQLiteStore),
        (f"sqlite:///{tmp_path / 'b.db'}", SQLiteStore),
        (f"sqlite+pysqlite:///{tmp_path / 'c.db'}", SQLAlchemyStore),
    ):
        with open_store(url) as store:
            assert type(store) is kind
            make_run(store)
        with open_store(url) as store:
            assert store.get_run("r").spec.seed == 7


def test_sqlalchemy_store_without_sqlalchemy_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from budgetlab.stores._sqlalchemy import SQLAlchemyStore, _tables

    _tables.cache_clear()
    monkeypatch.setitem(sys.modules, "sqlalchemy", None)  # import sqlalchemy -> ImportError
    try:
        with pytest.raises(BudgetlabError, match=r"needs the package 'sqlalchemy'.*pip install 'budgetlab\[sql\]'"):
            SQLAlchemyStore("postgresql://localhost/db")
    finally:
        _tables.cache_clear()


def test_sqlalchemy_store_errors_name_the_url_without_its_password() -> None:
    pytest.importorskip("sqlalchemy")
    from budgetlab.stores._sqlalchemy import SQLAlchemyStore

    with pytest.raises(BudgetlabError) as exc:  # a missing driver or a refused connection
        SQLAlchemyStore("postgresql+psycopg2://ann:s3cret@127.0.0.1:1/db", timeout=2)
    assert "s3cret" not in str(exc.value) and "ann:***@127.0.0.1:1/db" in str(exc.value)
    if importlib.util.find_spec("psycopg2") is None:
        assert "pip install 'psycopg2'" in str(exc.value)
    with pytest.raises(StoreError, match="not a store URL.*nonsense"):
        SQLAlchemyStore("nonsense://")


# ---- several processes --------------------------------------------------------------------------
def test_concurrent_workers_claim_each_sample_once_within_the_budget(durable_backend: Backend) -> None:
    budget = Budget(samples=25)
    store = durable_backend.open()
    make_run(store, budget=budget, problems=[f"p{i}" for i in range(20)])
    store.add_pending("r", [Proposal(f"p{i}", c.id, 2) for i in range(20) for c in (C1, C2)])  # 80 pending
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(
            target=_store_workers.claim_and_finish,
            args=(durable_backend.kind, durable_backend.target, "r", f"w{i}", i, budget.to_dict(), barrier, queue),
        )
        for i in range(4)
    ]
    for p in procs:
        p.start()
    reports = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [f"{w}: {e}" for w, _, _, e in reports if e]
    assert not errors, errors  # no "database is locked", nor anything else
    claimed = [k for _, ks, _, _ in reports for k in ks]
    assert len(claimed) == len(set(claimed)) > 0  # each sample claimed at most once
    assert all(all(results) for _, _, results, _ in reports)  # every holder could finish its samples
    info = store.get_run("r")
    listed = store.samples("r")
    assert info.spent.samples == sum(1 for s in listed if s.state is DONE) <= 25
    assert sum(1 for s in listed if s.state.finished) == len(claimed)
    assert info.reserved == Spend() and not any(s.state is RUNNING for s in listed)
    assert_spent_exact(store)


def test_workers_creating_the_same_run_at_once_all_join_it(durable_backend: Backend) -> None:
    ctx = multiprocessing.get_context("spawn")
    barrier, queue = ctx.Barrier(4), ctx.Queue()
    procs = [
        ctx.Process(target=_store_workers.create_same_run, args=(durable_backend.kind, durable_backend.target, barrier, queue))
        for _ in range(4)
    ]
    for p in procs:
        p.start()
    errors = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert errors == [None] * 4
    store = durable_backend.open()
    assert [r.name for r in store.list_runs()] == ["r"]
    assert [p.id for p in store.problems("r")] == ["p1", "p2"] and store.configs("r") == [C1, C2]


def test_a_worker_killed_at_any_instant_leaves_the_totals_exact(durable_backend: Backend) -> None:
    store = durable_backend.open()
    make_run(store)
    store.add_pending("r", [Proposal("p1", C1.id, 300)])
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    proc = ctx.Process(target=_store_workers.finish_forever, args=(durable_backend.kind, durable_backend.target, "r", "w", ready))
    proc.start()
    try:
        assert ready.wait(60)
        deadline = time.time() + 10
        while len(store.samples("r", [DONE])) < 20 and time.time() < deadline:
            time.sleep(0.02)
    finally:
        proc.kill()
        proc.join(30)
    again = durable_backend.open()
    listed = again.samples("r")
    assert sum(1 for s in listed if s.state is DONE) >= 20
    assert_spent_exact(again)
    running = [s for s in listed if s.state is RUNNING]
    assert_spend(again.get_run("r").reserved, Spend(len(running), 7 * len(running), 0.1 * len(running)))
    assert again.release("r", "w") == len(running)
    assert again.get_run("r").reserved.samples == 0
