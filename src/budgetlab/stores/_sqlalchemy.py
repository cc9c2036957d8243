"""A store on any SQLAlchemy URL (``postgresql+psycopg://user@host/db``, ``sqlite:///path``, ...).

Same tables and semantics as :class:`SQLiteStore`, written with SQLAlchemy Core so that they work
on SQLite and PostgreSQL alike. Every write is one ``engine.begin()`` transaction; those that
touch a run's samples or totals first lock the run's row (``SELECT ... FOR UPDATE``), so the
writers of one run queue up on PostgreSQL. On SQLite (where ``FOR UPDATE`` is a no-op) writes
start with ``BEGIN IMMEDIATE`` under a busy timeout instead, as in :class:`SQLiteStore`.

SQLAlchemy is imported only when a store is opened (``pip install 'budgetlab[sql]'``).
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from budgetlab.core import (
    BILLED_ESTIMATE, Budget, Problem, Sample, SampleKey, SampleState, SamplingConfig, Spend, derive_seed, drawn_again,
)
from budgetlab.core.run import RunInfo, RunSpec, RunState
from budgetlab.errors import InputError, StoreError, pip_dependency_error
from budgetlab.stores._base import SCHEMA_VERSION, BaseStore, ClaimResult, Proposal, same_run
from budgetlab.stores._rows import RUN_COLUMNS, SAMPLE_COLUMNS, result_values, run_info, sample, verdict_values
from budgetlab.stores._schema import ADDED_COLUMNS, FRESH_RESULT, SAMPLE_RESULT_COLUMNS, SPEND_COLUMNS

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Row

__all__ = ["SQLAlchemyStore"]

_OUR_TABLES = ("budgetlab_schema", "runs", "problems", "configs", "workers", "samples")
# Spend's fields in the order of the columns ``spent_*`` / ``reserved_*`` (see _schema.SPEND_COLUMNS).
_SPEND_FIELDS = ("samples", "tokens", "dollars", "verify_seconds")


def _import_sqlalchemy() -> Any:
    try:
        import sqlalchemy
    except ImportError:
        raise pip_dependency_error("a store URL other than a file path", "sqlalchemy", extra="sql") from None
    return sqlalchemy


@functools.cache
def _tables() -> SimpleNamespace:
    """The tables of ``_schema.TABLES`` as SQLAlchemy Core objects.

    Floats are ``Double`` and counters ``BigInteger``: PostgreSQL's ``REAL`` is only 4 bytes (it
    would round timestamps to minutes) and its ``INTEGER`` 4 bytes. On SQLite these declared types
    have the same affinities as the DDL of ``_schema.py``, so either store opens the other's files.
    """
    sa = _import_sqlalchemy()
    md = sa.MetaData()

    def col(name: str, type_: Any, default: Any = None, **kw: Any) -> Any:
        if default is not None:
            kw.update(nullable=False, server_default=sa.text(str(default)))
        return sa.Column(name, type_, **kw)

    text, double, big = sa.Text, sa.Double, sa.BigInteger
    spend_type = {"samples": big, "tokens": big, "dollars": double, "verify": double}
    totals = [col(f"{kind}_{q}", spend_type[q], 0) for kind in ("spent", "reserved") for q in SPEND_COLUMNS]
    t = SimpleNamespace(metadata=md)
    t.schema = sa.Table("budgetlab_schema", md, col("version", sa.Integer, nullable=False))
    t.runs = sa.Table(
        "runs", md,
        col("name", text, primary_key=True), col("spec", text, nullable=False), col("state", text, nullable=False),
        col("stopped_because", text), col("created_at", double, nullable=False), col("updated_at", double, nullable=False),
        *totals,
    )  # fmt: skip
    for name in ("problems", "configs"):
        setattr(t, name, sa.Table(
            name, md,
            col("run", text, primary_key=True), col("position", sa.Integer, nullable=False),
            col("id", text, primary_key=True), col("data", text, nullable=False),
        ))  # fmt: skip
    t.workers = sa.Table(
        "workers", md,
        col("run", text, primary_key=True), col("worker", text, primary_key=True), col("heartbeat", double, nullable=False),
    )  # fmt: skip
    t.samples = sa.Table(
        "samples", md,
        col("run", text, primary_key=True), col("problem", text, primary_key=True),
        col("config", text, primary_key=True), col("idx", sa.Integer, primary_key=True),
        col("seed", big, nullable=False), col("state", text, nullable=False), col("worker", text),
        # the SAMPLE_RESULT_COLUMNS:
        col("text", text), col("answer", text), col("correct", sa.Integer), col("score", double),
        col("prompt_tokens", big, 0), col("completion_tokens", big, 0), col("cost", double, 0),
        col("latency", double, 0), col("verify_seconds", double, 0), col("logprob", double), col("error", text),
        col("details", text),
        col("res_tokens", big, 0), col("res_dollars", double, 0), col("res_verify", double, 0),
    )  # fmt: skip
    sa.Index("samples_by_state", t.samples.c.run, t.samples.c.state)
    return t


class SQLAlchemyStore(BaseStore):
    """A store in the database at a SQLAlchemy URL (``pip install 'budgetlab[sql]'``).

    ``timeout`` is how long an SQLite writer waits for the write lock, and how long psycopg waits
    to connect to a PostgreSQL server.
    """

    def __init__(self, url: str, *, timeout: float = 60.0) -> None:
        sa = self._sa = _import_sqlalchemy()
        self._t = _tables()
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError:
            raise StoreError(
                f"{url!r} is not a store URL; give a file path or a URL such as postgresql+psycopg://user@host/dbname"
            ) from None
        # The URL as given, but never with its password (it is shown in messages).
        self.url = url if parsed.password is None else parsed.render_as_string(hide_password=True)
        self._is_sqlite = parsed.get_backend_name() == "sqlite"
        self._where = self.url  # what error messages call this store
        kwargs: dict[str, Any] = {}
        if self._is_sqlite:
            database = parsed.database or ":memory:"
            if database != ":memory:" and not database.startswith("file:"):
                from budgetlab.stores._sqlite import SQLiteStore

                SQLiteStore._check_file(Path(database))
                self._where = database
            kwargs["connect_args"] = {"timeout": timeout}
        elif parsed.drivername in ("postgresql", "postgresql+psycopg", "postgresql+psycopg2"):
            kwargs["connect_args"] = {"connect_timeout": max(1, int(timeout))}
        try:
            self._engine = sa.create_engine(parsed, **kwargs)
        except ImportError as exc:  # the URL's database driver (psycopg, ...) is not installed
            raise pip_dependency_error(f"the store URL {self.url}", exc.name or "its database driver") from None
        except sa.exc.ArgumentError as exc:  # an unknown dialect, a bad option
            raise StoreError(
                f"{self.url} is not a store URL SQLAlchemy can open ({exc}); "
                "give a file path or a URL such as postgresql+psycopg://user@host/dbname"
            ) from None
        if self._is_sqlite:
            self._setup_sqlite(timeout)
        try:
            self._init_schema()
        except sa.exc.DBAPIError as exc:
            self._engine.dispose()
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else type(exc).__name__
            if self._is_sqlite:
                raise StoreError(f"{self._where} is not a budgetlab store ({reason}); pass another file with --store") from None
            raise StoreError(
                f"cannot open the store {self.url} ({reason}); check the URL and that the database server is running"
            ) from None
        except BaseException:
            self._engine.dispose()
            raise

    def _setup_sqlite(self, timeout: float) -> None:
        """Let SQLAlchemy emit the BEGIN: ``BEGIN IMMEDIATE`` for writes, so concurrent writers
        queue on the busy timeout instead of failing with "database is locked" on lock upgrade."""
        event = self._sa.event

        @event.listens_for(self._engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # the sqlite3 module must not BEGIN by itself
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.close()

        @event.listens_for(self._engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("budgetlab_write") else "BEGIN")

    def _init_schema(self) -> None:
        sa, t = self._sa, self._t
        for attempt in ("check", "create"):  # a read first: an existing store needs no write lock
            with self._write() if attempt == "create" else self._engine.connect() as conn:
                if attempt == "create" and conn.dialect.name == "postgresql":
                    # Concurrent CREATE TABLE IF NOT EXISTS can collide on PostgreSQL: take turns.
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(7193846251)"))
                tables = set(sa.inspect(conn).get_table_names())
                if "budgetlab_schema" in tables:
                    version = conn.execute(sa.select(t.schema.c.version)).scalar()
                    if version is None or version > SCHEMA_VERSION:
                        raise StoreError(
                            f"{self._where} has store schema version {version}, newer than this budgetlab's "
                            f"{SCHEMA_VERSION}; upgrade with: pip install -U budgetlab"
                        )
                    if version < SCHEMA_VERSION:
                        self._upgrade_schema()
                    return
                # An SQLite file is all ours or not ours; a database server may hold other tables,
                # but none of ours without the schema table.
                foreign = sorted(tables if self._is_sqlite else tables & set(_OUR_TABLES))
                if foreign:
                    kind = "an SQLite database" if self._is_sqlite else "a database"
                    fix = "pass another file with --store" if self._is_sqlite else "use another database or schema"
                    raise StoreError(
                        f"{self._where} is {kind} but not a budgetlab store (tables: {', '.join(foreign[:5])}); {fix}"
                    )
                if attempt == "create":
                    t.metadata.create_all(conn)
                    conn.execute(t.schema.insert().values(version=SCHEMA_VERSION))

    def _upgrade_schema(self) -> None:
        """Add the columns of later schema versions to a store written by an older budgetlab."""
        sa, t = self._sa, self._t
        with self._write() as conn:
            version = conn.execute(sa.select(t.schema.c.version)).scalar()
            for added_in, table, column, kind in ADDED_COLUMNS:
                have = {c["name"] for c in sa.inspect(conn).get_columns(table)}
                if added_in > version and column not in have:
                    conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
            conn.execute(t.schema.update().values(version=SCHEMA_VERSION))

    # ---- transactions ---------------------------------------------------------------------------
    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            conn.execution_options(budgetlab_write=True)
            with conn.begin():
                yield conn

    def _lock_run(self, conn: Connection, run: str) -> Row | None:
        """Lock the run's row for the rest of the transaction; its spent + reserved, or ``None``."""
        r = self._t.runs.c
        return conn.execute(
            self._sa.select(*(r[f"spent_{q}"] + r[f"reserved_{q}"] for q in SPEND_COLUMNS))
            .where(r.name == run)
            .with_for_update()
        ).first()

    def _read(self, stmt: Any) -> list[Row]:
        with self._engine.connect() as conn:
            return list(conn.execute(stmt).all())

    def _add_to_run(self, conn: Connection, run: str, spent: Spend = Spend(), reserved: Spend = Spend()) -> None:
        r = self._t.runs.c
        values: dict[str, Any] = {"updated_at": time.time()}
        for kind, amount in (("spent", spent), ("reserved", reserved)):
            for q, f in zip(SPEND_COLUMNS, _SPEND_FIELDS):
                if getattr(amount, f):
                    values[f"{kind}_{q}"] = r[f"{kind}_{q}"] + getattr(amount, f)
        conn.execute(self._t.runs.update().where(r.name == run).values(**values))

    def _key_is(self, run: str, key: SampleKey) -> Any:
        c = self._t.samples.c
        return self._sa.and_(c.run == run, c.problem == key.problem, c.config == key.config, c.idx == key.index)

    # ---- runs -----------------------------------------------------------------------------------
    def create_run(self, spec: RunSpec, problems: Sequence[Problem], configs: Sequence[SamplingConfig]) -> RunInfo:
        now = time.time()
        taken = InputError(f"a run named {spec.name!r} already exists in {self.url}; choose another --name")
        try:
            with self._write() as conn:
                exists = self._same_or_taken(conn, spec, problems, configs, taken)  # another worker created it first
                if not exists:
                    self._insert_run(conn, spec, problems, configs, now)
        except self._sa.exc.IntegrityError:
            with self._engine.connect() as conn:  # another process created it meanwhile
                if not self._same_or_taken(conn, spec, problems, configs, taken):
                    raise
        return self.get_run(spec.name)

    def _insert_run(self, conn: Connection, spec: RunSpec, problems: Sequence[Problem],
                    configs: Sequence[SamplingConfig], now: float) -> None:  # fmt: skip
        t = self._t
        conn.execute(t.runs.insert().values(
            name=spec.name, spec=json.dumps(spec.to_dict()), state=RunState.CREATED.value,
            created_at=now, updated_at=now,
        ))  # fmt: skip
        for table, items in ((t.problems, problems), (t.configs, configs)):
            rows = [
                {"run": spec.name, "position": i, "id": x.id, "data": json.dumps(x.to_dict())}
                for i, x in enumerate(items)
            ]
            if rows:
                conn.execute(table.insert(), rows)

    def _same_or_taken(self, conn: Connection, spec: RunSpec, problems: Sequence[Problem],
                       configs: Sequence[SamplingConfig], taken: InputError) -> bool:  # fmt: skip
        """True if the run exists exactly as asked, False if it does not exist; ``taken`` if it
        exists as another run."""
        sa, t = self._sa, self._t
        stored = conn.execute(sa.select(t.runs.c.spec).where(t.runs.c.name == spec.name)).scalar()
        if stored is None:
            return False
        rows = [
            list(conn.execute(sa.select(table.c.data).where(table.c.run == spec.name).order_by(table.c.position)).scalars())
            for table in (t.problems, t.configs)
        ]
        if same_run(spec, problems, configs, stored, *rows):
            return True
        raise taken

    def find_run(self, name: str) -> RunInfo | None:
        r = self._t.runs.c
        rows = self._read(self._sa.select(*(r[c] for c in RUN_COLUMNS)).where(r.name == name))
        return run_info(rows[0]) if rows else None

    def list_runs(self) -> list[RunInfo]:
        r = self._t.runs.c
        return [run_info(row) for row in self._read(self._sa.select(*(r[c] for c in RUN_COLUMNS)).order_by(r.created_at))]

    def update_spec(self, spec: RunSpec) -> None:
        runs = self._t.runs
        with self._write() as conn:
            conn.execute(
                runs.update().where(runs.c.name == spec.name).values(spec=json.dumps(spec.to_dict()), updated_at=time.time())
            )

    def set_run_state(self, name: str, state: RunState, stopped_because: str | None = None) -> None:
        runs = self._t.runs
        with self._write() as conn:
            conn.execute(
                runs.update()
                .where(runs.c.name == name)
                .values(state=state.value, stopped_because=stopped_because, updated_at=time.time())
            )

    def problems(self, run: str) -> list[Problem]:
        p = self._t.problems.c
        rows = self._read(self._sa.select(p.data).where(p.run == run).order_by(p.position))
        return [Problem.from_dict(json.loads(row[0])) for row in rows]

    def configs(self, run: str) -> list[SamplingConfig]:
        c = self._t.configs.c
        rows = self._read(self._sa.select(c.data).where(c.run == run).order_by(c.position))
        return [SamplingConfig.from_dict(json.loads(row[0])) for row in rows]

    # ---- workers --------------------------------------------------------------------------------
    def heartbeat(self, run: str, worker: str) -> None:
        with self._write() as conn:  # an upsert both SQLite (3.24+) and PostgreSQL (9.5+) accept
            conn.execute(
                self._sa.text(
                    "INSERT INTO workers (run, worker, heartbeat) VALUES (:run, :worker, :now) "
                    "ON CONFLICT (run, worker) DO UPDATE SET heartbeat = excluded.heartbeat"
                ),
                {"run": run, "worker": worker, "now": time.time()},
            )

    def workers(self, run: str) -> dict[str, float]:
        w = self._t.workers.c
        return {row[0]: row[1] for row in self._read(self._sa.select(w.worker, w.heartbeat).where(w.run == run))}

    def requeue_failed(self, run: str) -> int:
        s = self._t.samples.c
        fresh = {c: (0 if FRESH_RESULT[c] == "0" else None) for c in SAMPLE_RESULT_COLUMNS}
        requeue = self._t.samples.update().values(state=SampleState.PENDING.value, worker=None, **fresh)
        failed = s.state == SampleState.FAILED.value
        with self._write() as conn:
            requeued = conn.execute(
                requeue.where(s.run == run, failed, s.prompt_tokens == 0, s.completion_tokens == 0, s.cost == 0)
            ).rowcount
            rows = conn.execute(
                self._sa.select(*(s[name] for name in SAMPLE_COLUMNS))
                .where(s.run == run, failed, s.details.like(f'%"{BILLED_ESTIMATE}"%'))
            )  # fmt: skip
            for estimated in (sample(row) for row in rows.fetchall()):
                if drawn_again(estimated):
                    key = (s.problem == estimated.problem, s.config == estimated.config, s.idx == estimated.index)
                    requeued += conn.execute(requeue.where(s.run == run, *key)).rowcount
            return requeued

    def release(self, run: str, worker: str) -> int:
        sa, t = self._sa, self._t
        s = t.samples.c
        with self._write() as conn:
            self._lock_run(conn, run)
            released = conn.execute(
                t.samples.update()
                .where(s.run == run, s.state == SampleState.RUNNING.value, s.worker == worker)
                .values(state=SampleState.PENDING.value, worker=None, res_tokens=0, res_dollars=0.0, res_verify=0.0)
            ).rowcount
            conn.execute(t.workers.delete().where(t.workers.c.run == run, t.workers.c.worker == worker))
            # Recount rather than subtract: the totals then heal even if they had drifted.
            big, double = sa.BigInteger, sa.Double
            n, tokens, dollars, verify = conn.execute(
                sa.select(
                    sa.cast(sa.func.count(), big),
                    sa.cast(sa.func.coalesce(sa.func.sum(s.res_tokens), 0), big),
                    sa.cast(sa.func.coalesce(sa.func.sum(s.res_dollars), 0), double),
                    sa.cast(sa.func.coalesce(sa.func.sum(s.res_verify), 0), double),
                ).where(s.run == run, s.state == SampleState.RUNNING.value)
            ).one()
            conn.execute(
                t.runs.update()
                .where(t.runs.c.name == run)
                .values(reserved_samples=n, reserved_tokens=tokens, reserved_dollars=dollars, reserved_verify=verify)
            )
        return released

    # ---- samples --------------------------------------------------------------------------------
    def add_pending(self, run: str, proposals: Iterable[Proposal]) -> list[Sample]:
        sa, t = self._sa, self._t
        s = t.samples.c
        seed = self.get_run(run).spec.seed  # RunNotFound for a missing run
        created: list[Sample] = []
        with self._write() as conn:
            self._lock_run(conn, run)
            for prop in proposals:
                start = conn.execute(
                    sa.select(sa.func.coalesce(sa.func.max(s.idx) + 1, 0)).where(
                        s.run == run, s.problem == prop.problem, s.config == prop.config
                    )
                ).scalar_one()
                new = [
                    Sample(run, prop.problem, prop.config, i, derive_seed(seed, prop.problem, prop.config, i))
                    for i in prop.new_indexes(start)
                ]
                if new:  # inserted per proposal: the next proposal for the same pair continues after them
                    conn.execute(t.samples.insert(), [
                        {"run": run, "problem": x.problem, "config": x.config, "idx": x.index, "seed": x.seed,
                         "state": SampleState.PENDING.value}
                        for x in new
                    ])  # fmt: skip
                created += new
        return created

    def claim(self, run: str, worker: str, keys: Sequence[SampleKey], reservations: Sequence[Spend], budget: Budget) -> ClaimResult:
        if len(keys) != len(reservations):
            raise ValueError("claim needs one reservation per key")
        t = self._t
        claimed: list[SampleKey] = []
        blocked_by: str | None = None
        with self._write() as conn:
            row = self._lock_run(conn, run)
            if row is not None:
                committed, added = Spend(*row), Spend()
                for key, res in zip(keys, reservations):
                    reserve = Spend(1, res.tokens, res.dollars, res.verify_seconds)
                    is_pending = self._key_is(run, key) & (t.samples.c.state == SampleState.PENDING.value)
                    over = budget.first_exceeded(committed + added + reserve)
                    if over is not None:
                        if conn.execute(self._sa.select(t.samples.c.idx).where(is_pending)).first() is None:
                            continue  # no longer pending: skipped, so it blocks nothing
                        blocked_by = over
                        break
                    n = conn.execute(
                        t.samples.update()
                        .where(is_pending)
                        .values(state=SampleState.RUNNING.value, worker=worker, res_tokens=reserve.tokens,
                                res_dollars=reserve.dollars, res_verify=reserve.verify_seconds)
                    ).rowcount  # fmt: skip
                    if n == 1:
                        added = added + reserve
                        claimed.append(key)
                self._add_to_run(conn, run, reserved=added)
        if row is None:
            self.get_run(run)  # raises RunNotFound
        return ClaimResult(tuple(claimed), blocked_by)

    def finish(self, run: str, worker: str, samples: Sequence[Sample]) -> list[bool]:
        sa, t = self._sa, self._t
        c = t.samples.c
        results: list[bool] = []
        freed, spent = Spend(), Spend()
        with self._write() as conn:
            self._lock_run(conn, run)
            for s in samples:
                if not s.state.finished:
                    raise ValueError(f"finish needs a done or failed sample, got state {s.state.value}")
                held = self._key_is(run, s.key) & (c.state == SampleState.RUNNING.value) & (c.worker == worker)
                res = conn.execute(sa.select(c.res_tokens, c.res_dollars, c.res_verify).where(held)).first()
                if res is None:
                    results.append(False)
                    continue
                conn.execute(
                    t.samples.update()
                    .where(held)
                    .values(state=s.state.value, worker=None, res_tokens=0, res_dollars=0.0, res_verify=0.0,
                            **dict(zip(SAMPLE_RESULT_COLUMNS, result_values(s))))
                )  # fmt: skip
                freed = freed + Spend(1, *res)
                spent = spent + s.spend
                results.append(True)
            if any(results):
                self._add_to_run(conn, run, spent=spent, reserved=Spend() - freed)
        return results

    def record_verdicts(self, run: str, samples: Sequence[Sample]) -> int:
        if any(s.state is not SampleState.DONE for s in samples):
            raise ValueError("record_verdicts takes done samples only (a verdict on a drawn sample)")
        sa, t = self._sa, self._t
        c = t.samples.c
        replaced, change = 0, Spend()
        with self._write() as conn:
            self._lock_run(conn, run)
            for s in samples:
                done = self._key_is(run, s.key) & (c.state == SampleState.DONE.value)
                row = conn.execute(sa.select(c.prompt_tokens, c.completion_tokens, c.cost, c.verify_seconds).where(done)).first()
                if row is None:
                    continue
                conn.execute(t.samples.update().where(done).values(**verdict_values(s)))
                change = change + s.spend - Spend(1, row[0] + row[1], row[2], row[3])
                replaced += 1
            if replaced:
                self._add_to_run(conn, run, spent=change)
        return replaced

    def samples(self, run: str, states: Iterable[SampleState] | None = None) -> list[Sample]:
        c = self._t.samples.c
        stmt = self._sa.select(*(c[name] for name in SAMPLE_COLUMNS)).where(c.run == run)
        if states is not None:
            stmt = stmt.where(c.state.in_([SampleState(x).value for x in states]))
        # Sorted here, not by the database: a server's collation may order text differently.
        return sorted((sample(row) for row in self._read(stmt)), key=lambda x: x.key)

    def import_samples(self, run: str, samples: Sequence[Sample]) -> None:
        t = self._t
        total = Spend()
        for s in samples:
            if not s.state.finished:
                raise ValueError("import_samples takes finished samples only")
            total = total + s.spend
        if not samples:
            return
        with self._write() as conn:
            self._lock_run(conn, run)
            conn.execute(
                t.samples.insert(),
                [dict(zip(SAMPLE_COLUMNS, (run, s.problem, s.config, s.index, s.seed, s.state.value, *result_values(s))))
                 for s in samples],
            )  # fmt: skip
            self._add_to_run(conn, run, spent=total)

    def close(self) -> None:
        self._engine.dispose()
