"""The default store: one SQLite file in WAL mode.

Writes go through ``BEGIN IMMEDIATE`` transactions, so concurrent workers queue on the write lock
(with a busy timeout) instead of failing with "database is locked"; WAL keeps readers unblocked.
"""

from __future__ import annotations

import functools
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from budgetlab.core import (
    BILLED_ESTIMATE, Budget, Problem, Sample, SampleKey, SampleState, SamplingConfig, Spend, derive_seed, drawn_again,
)
from budgetlab.core.run import RunInfo, RunSpec, RunState
from budgetlab.errors import InputError, StoreError
from budgetlab.stores._base import SCHEMA_VERSION, BaseStore, ClaimResult, Proposal, same_run
from budgetlab.stores._rows import RUN_COLUMNS, SAMPLE_COLUMNS, result_values, run_info, sample, verdict_values
from budgetlab.stores._schema import ADDED_COLUMNS, FRESH_RESULT, SAMPLE_RESULT_COLUMNS, TABLES, VERDICT_COLUMNS

__all__ = ["SQLiteStore"]

_RUN_COLUMNS = ", ".join(RUN_COLUMNS)
_DAMAGED = "malformed"  # in SQLite's message for a damaged file: "database disk image is malformed"
_SAMPLE_COLUMNS = ", ".join(SAMPLE_COLUMNS)


class SQLiteStore(BaseStore):
    """A store in one SQLite file (``:memory:`` for a throw-away one)."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 60.0) -> None:
        self.path = str(path)
        self._timeout = timeout
        self.url = self.path if self.path == ":memory:" else f"sqlite:///{self.path}"
        # A store we may not write (a read-only file, folder or file system) is opened read-only,
        # so that reading it (budgetlab report, runs) works; a write then says what is wrong.
        self._read_only = self.path != ":memory:" and self._not_writable(Path(self.path))
        if self.path != ":memory:":
            self._check_file(Path(self.path))
        try:
            if self._read_only and Path(self.path).exists():
                self._conn = self._connect_read_only(timeout)
            else:
                self._conn = sqlite3.connect(self.path, timeout=timeout, isolation_level=None, check_same_thread=False)
        except sqlite3.DatabaseError as exc:  # e.g. a new store in a folder we may not write
            raise self._store_error(exc) from None
        try:
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            # Check before switching to WAL: that switch is written into the file, and a file
            # that is not ours must be left exactly as it was.
            fresh = self._check_schema()
            if self._read_only:
                if fresh:
                    raise StoreError(f"{self.path} is empty and read-only: it cannot become a store; pass another file with --store")
                return
            self._conn.execute("PRAGMA journal_mode = WAL")
            # NORMAL in WAL mode survives any process crash; only an OS crash could lose the last commits.
            self._conn.execute("PRAGMA synchronous = NORMAL")
            if fresh:
                self._create_schema()
            else:
                self._upgrade_schema()
        except sqlite3.DatabaseError as exc:
            self._conn.close()
            if _DAMAGED in str(exc) or self._read_only or "unable to open" in str(exc):
                raise self._store_error(exc) from None
            raise StoreError(
                f"{self.path} is not a budgetlab store ({exc}); pass another file with --store"
            ) from None
        except BaseException:  # e.g. the StoreError of a foreign or newer store: do not leak the connection
            self._conn.close()
            raise

    def _connect_read_only(self, timeout: float) -> sqlite3.Connection:
        """A read-only connection. A store in WAL mode in a folder we may not write has no -shm
        file to share, so SQLite cannot open it for reading; then it is read as immutable (no
        one can change a store in such a folder either)."""
        base = Path(self.path).absolute().as_uri()
        for query in ("mode=ro", "mode=ro&immutable=1"):
            conn = sqlite3.connect(f"{base}?{query}", timeout=timeout, isolation_level=None, check_same_thread=False, uri=True)
            try:
                conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
                return conn
            except sqlite3.OperationalError:
                conn.close()
                if query.endswith("immutable=1"):
                    raise
        raise AssertionError("unreachable")

    @staticmethod
    def _not_writable(path: Path) -> bool:
        """True when the file (or, for a new one, its folder) cannot be written; SQLite also
        needs its folder for the -wal and -shm files beside the store."""
        folder = path.parent if str(path.parent) else Path(".")
        if not folder.is_dir():
            return False  # reported by _check_file
        if path.exists() and not os.access(path, os.W_OK):
            return True
        return not os.access(folder, os.W_OK)

    def _store_error(self, exc: sqlite3.Error) -> StoreError:
        """A one-line StoreError for an SQLite error on this store, naming the fix."""
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if _DAMAGED in reason or "file is not a database" in reason:
            return StoreError(
                f"store {self.path} is damaged ({reason}); restore it from a backup, "
                "or pass another file with --store (sqlite3's .recover may save its samples)"
            )
        if self._read_only or "readonly" in reason or "unable to open" in reason:
            return StoreError(
                f"store {self.path} cannot be written ({reason}): it, its folder or its file system is read-only; "
                "make them writable, or copy the store to a writable folder and pass that with --store"
            )
        if "disk is full" in reason:
            return StoreError(
                f"store {self.path} cannot be written ({reason}): its file system has no space left; free space there "
                "(or copy the store to a file system with room and pass that with --store), then run the same command "
                "again to resume"
            )
        if "locked" in reason or "busy" in reason:
            return StoreError(
                f"store {self.path} stayed locked by another process for longer than the {self._timeout:g} s budgetlab "
                f"waits ({reason}); let that process finish or stop it (fuser {self.path} lists it), then run the same "
                "command again to resume"
            )
        return StoreError(f"store {self.path}: {reason}")

    @staticmethod
    def _check_file(path: Path) -> None:
        if path.is_symlink() and not path.exists() and not Path(os.path.realpath(path)).parent.is_dir():
            raise StoreError(
                f"store path {path} is a link to {os.readlink(path)}, whose folder does not exist; "
                "point the link at a store, or at a file in an existing folder, or pass another file with --store"
            )
        if path.is_dir():
            raise StoreError(f"store path {path} is a directory; pass a file such as {path / 'budgetlab.db'}")
        if not path.parent.is_dir():
            raise StoreError(f"store path {path}: folder {path.parent} does not exist; create it first (mkdir -p {path.parent})")
        if path.exists() and path.stat().st_size > 0:
            with open(path, "rb") as fh:
                if fh.read(16) != b"SQLite format 3\x00":
                    raise StoreError(f"{path} is not a budgetlab store (not an SQLite file); pass another file with --store")

    def _check_schema(self) -> bool:
        """Raise unless this is an empty database or a budgetlab store we can read; True if empty."""
        tables = {r[0] for r in self._conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables and "budgetlab_schema" not in tables:
            raise StoreError(
                f"{self.path} is an SQLite database but not a budgetlab store (tables: {', '.join(sorted(tables)[:5])}); "
                "pass another file with --store"
            )
        if "budgetlab_schema" in tables:
            row = self._conn.execute("SELECT version FROM budgetlab_schema").fetchone()
            version = row[0] if row else None
            if version is None or version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path} has store schema version {version}, newer than this budgetlab's {SCHEMA_VERSION}; "
                    "upgrade with: pip install -U budgetlab"
                )
            return False
        return True

    def _upgrade_schema(self) -> None:
        """Add the columns of later schema versions to a store written by an older budgetlab."""
        if self._conn.execute("SELECT version FROM budgetlab_schema").fetchone()[0] >= SCHEMA_VERSION:
            return
        with self._write() as cur:
            (version,) = cur.execute("SELECT version FROM budgetlab_schema").fetchone()
            for added_in, table, column, kind in ADDED_COLUMNS:
                have = {r[1] for r in cur.execute(f"PRAGMA table_info({table})")}
                if added_in > version and column not in have:
                    cur.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")
            cur.execute("UPDATE budgetlab_schema SET version = ?", (SCHEMA_VERSION,))

    def _create_schema(self) -> None:
        with self._write() as cur:
            if cur.execute("SELECT 1 FROM sqlite_master WHERE name = 'budgetlab_schema'").fetchone():
                return  # another process created it first
            for ddl in TABLES:
                cur.execute(ddl)
            cur.execute("INSERT INTO budgetlab_schema (version) VALUES (?)", (SCHEMA_VERSION,))

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            # SQLite may have rolled the transaction back itself (a full disk, an I/O error):
            # a ROLLBACK then fails with "no transaction is active", hiding the error that matters.
            if self._conn.in_transaction:
                try:
                    cur.execute("ROLLBACK")
                except sqlite3.Error:
                    pass  # the error being raised says more
            raise
        else:
            cur.execute("COMMIT")

    # ---- runs -----------------------------------------------------------------------------------
    def create_run(self, spec: RunSpec, problems: Sequence[Problem], configs: Sequence[SamplingConfig]) -> RunInfo:
        now = time.time()
        with self._write() as cur:
            row = cur.execute("SELECT spec FROM runs WHERE name = ?", (spec.name,)).fetchone()
            if row is not None:
                stored = [
                    [d for (d,) in cur.execute(f"SELECT data FROM {table} WHERE run = ? ORDER BY position", (spec.name,))]
                    for table in ("problems", "configs")
                ]
                if same_run(spec, problems, configs, row[0], *stored):
                    return self.get_run(spec.name)  # another worker created this very run first
                raise InputError(f"a run named {spec.name!r} already exists in {self.url}; choose another --name")
            cur.execute(
                "INSERT INTO runs (name, spec, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?)",
                (spec.name, json.dumps(spec.to_dict()), RunState.CREATED.value, now, now),
            )
            cur.executemany(
                "INSERT INTO problems (run, position, id, data) VALUES (?, ?, ?, ?)",
                ((spec.name, i, p.id, json.dumps(p.to_dict())) for i, p in enumerate(problems)),
            )
            cur.executemany(
                "INSERT INTO configs (run, position, id, data) VALUES (?, ?, ?, ?)",
                ((spec.name, i, c.id, json.dumps(c.to_dict())) for i, c in enumerate(configs)),
            )
        return self.get_run(spec.name)

    def find_run(self, name: str) -> RunInfo | None:
        row = self._conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE name = ?", (name,)).fetchone()
        return run_info(row) if row else None

    def list_runs(self) -> list[RunInfo]:
        return [run_info(r) for r in self._conn.execute(f"SELECT {_RUN_COLUMNS} FROM runs ORDER BY created_at")]

    def update_spec(self, spec: RunSpec) -> None:
        with self._write() as cur:
            cur.execute(
                "UPDATE runs SET spec = ?, updated_at = ? WHERE name = ?",
                (json.dumps(spec.to_dict()), time.time(), spec.name),
            )

    def set_run_state(self, name: str, state: RunState, stopped_because: str | None = None) -> None:
        with self._write() as cur:
            cur.execute(
                "UPDATE runs SET state = ?, stopped_because = ?, updated_at = ? WHERE name = ?",
                (state.value, stopped_because, time.time(), name),
            )

    def problems(self, run: str) -> list[Problem]:
        rows = self._conn.execute("SELECT data FROM problems WHERE run = ? ORDER BY position", (run,))
        return [Problem.from_dict(json.loads(r[0])) for r in rows]

    def configs(self, run: str) -> list[SamplingConfig]:
        rows = self._conn.execute("SELECT data FROM configs WHERE run = ? ORDER BY position", (run,))
        return [SamplingConfig.from_dict(json.loads(r[0])) for r in rows]

    # ---- workers --------------------------------------------------------------------------------
    def heartbeat(self, run: str, worker: str) -> None:
        with self._write() as cur:
            cur.execute(
                "INSERT INTO workers (run, worker, heartbeat) VALUES (?, ?, ?) "
                "ON CONFLICT (run, worker) DO UPDATE SET heartbeat = excluded.heartbeat",
                (run, worker, time.time()),
            )

    def workers(self, run: str) -> dict[str, float]:
        return dict(self._conn.execute("SELECT worker, heartbeat FROM workers WHERE run = ?", (run,)).fetchall())

    def release(self, run: str, worker: str) -> int:
        with self._write() as cur:
            released = cur.execute(
                "UPDATE samples SET state = 'pending', worker = NULL, res_tokens = 0, res_dollars = 0, res_verify = 0 "
                "WHERE run = ? AND state = 'running' AND worker = ?",
                (run, worker),
            ).rowcount
            cur.execute("DELETE FROM workers WHERE run = ? AND worker = ?", (run, worker))
            # Recount rather than subtract: the totals then heal even if they had drifted.
            self._recompute_reserved(cur, run)
        return released

    def requeue_failed(self, run: str) -> int:
        cleared = ", ".join(f"{c} = {FRESH_RESULT[c]}" for c in SAMPLE_RESULT_COLUMNS)
        with self._write() as cur:
            requeued = cur.execute(
                f"UPDATE samples SET state = 'pending', worker = NULL, {cleared} "
                "WHERE run = ? AND state = 'failed' AND prompt_tokens = 0 AND completion_tokens = 0 AND cost = 0",
                (run,),
            ).rowcount
            estimated = [
                sample(row) for row in cur.execute(
                    f"SELECT {_SAMPLE_COLUMNS} FROM samples WHERE run = ? AND state = 'failed' AND details LIKE ?",
                    (run, f'%"{BILLED_ESTIMATE}"%'),
                )
            ]  # fmt: skip
            keys = [(run, s.problem, s.config, s.index) for s in estimated if drawn_again(s)]
            cur.executemany(
                f"UPDATE samples SET state = 'pending', worker = NULL, {cleared} "
                "WHERE run = ? AND problem = ? AND config = ? AND idx = ?",
                keys,
            )
            return requeued + len(keys)

    @staticmethod
    def _recompute_reserved(cur: sqlite3.Cursor, run: str) -> None:
        cur.execute(
            "UPDATE runs SET (reserved_samples, reserved_tokens, reserved_dollars, reserved_verify) = "
            "(SELECT COUNT(*), COALESCE(SUM(res_tokens), 0), COALESCE(SUM(res_dollars), 0), COALESCE(SUM(res_verify), 0) "
            " FROM samples WHERE run = ? AND state = 'running') WHERE name = ?",
            (run, run),
        )

    # ---- samples --------------------------------------------------------------------------------
    def add_pending(self, run: str, proposals: Iterable[Proposal]) -> list[Sample]:
        info = self.get_run(run)
        seed = info.spec.seed
        created: list[Sample] = []
        with self._write() as cur:
            for prop in proposals:
                start = cur.execute(
                    "SELECT COALESCE(MAX(idx) + 1, 0) FROM samples WHERE run = ? AND problem = ? AND config = ?",
                    (run, prop.problem, prop.config),
                ).fetchone()[0]
                new = [
                    Sample(run, prop.problem, prop.config, index, derive_seed(seed, prop.problem, prop.config, index))
                    for index in prop.new_indexes(start)
                ]
                # Inserted per proposal, so a later proposal for the same pair continues after these.
                cur.executemany(
                    "INSERT INTO samples (run, problem, config, idx, seed, state) VALUES (?, ?, ?, ?, ?, 'pending')",
                    ((s.run, s.problem, s.config, s.index, s.seed) for s in new),
                )
                created += new
        return created

    def claim(self, run: str, worker: str, keys: Sequence[SampleKey], reservations: Sequence[Spend], budget: Budget) -> ClaimResult:
        if len(keys) != len(reservations):
            raise ValueError("claim needs one reservation per key")
        claimed: list[SampleKey] = []
        blocked_by: str | None = None
        with self._write() as cur:
            row = cur.execute(
                "SELECT spent_samples + reserved_samples, spent_tokens + reserved_tokens, "
                "spent_dollars + reserved_dollars, spent_verify + reserved_verify FROM runs WHERE name = ?",
                (run,),
            ).fetchone()
            if row is None:
                self.get_run(run)  # raises RunNotFound
            committed = Spend(*row)
            added = Spend()
            now_claimed = []
            for key, res in zip(keys, reservations):
                reserve = Spend(1, res.tokens, res.dollars, res.verify_seconds)
                over = budget.first_exceeded(committed + added + reserve)
                if over is not None:
                    still_pending = cur.execute(
                        "SELECT 1 FROM samples "
                        "WHERE run = ? AND problem = ? AND config = ? AND idx = ? AND state = 'pending'",
                        (run, key.problem, key.config, key.index),
                    ).fetchone()
                    if still_pending is None:
                        continue  # skipped: a key no longer pending blocks nothing
                    blocked_by = over
                    break
                n = cur.execute(
                    "UPDATE samples SET state = 'running', worker = ?, res_tokens = ?, res_dollars = ?, res_verify = ? "
                    "WHERE run = ? AND problem = ? AND config = ? AND idx = ? AND state = 'pending'",
                    (worker, reserve.tokens, reserve.dollars, reserve.verify_seconds, run, key.problem, key.config, key.index),
                ).rowcount
                if n == 1:
                    added = added + reserve
                    now_claimed.append(key)
            cur.execute(
                "UPDATE runs SET reserved_samples = reserved_samples + ?, reserved_tokens = reserved_tokens + ?, "
                "reserved_dollars = reserved_dollars + ?, reserved_verify = reserved_verify + ?, updated_at = ? "
                "WHERE name = ?",
                (added.samples, added.tokens, added.dollars, added.verify_seconds, time.time(), run),
            )
            claimed = now_claimed
        return ClaimResult(tuple(claimed), blocked_by)

    def finish(self, run: str, worker: str, samples: Sequence[Sample]) -> list[bool]:
        results: list[bool] = []
        with self._write() as cur:
            freed = Spend()
            spent = Spend()
            for s in samples:
                if not s.state.finished:
                    raise ValueError(f"finish needs a done or failed sample, got state {s.state.value}")
                res = cur.execute(
                    "SELECT res_tokens, res_dollars, res_verify FROM samples "
                    "WHERE run = ? AND problem = ? AND config = ? AND idx = ? AND state = 'running' AND worker = ?",
                    (run, s.problem, s.config, s.index, worker),
                ).fetchone()
                if res is None:
                    results.append(False)
                    continue
                cur.execute(
                    "UPDATE samples SET state = ?, worker = NULL, "
                    + ", ".join(f"{c} = ?" for c in SAMPLE_RESULT_COLUMNS)
                    + ", res_tokens = 0, res_dollars = 0, res_verify = 0"
                    " WHERE run = ? AND problem = ? AND config = ? AND idx = ?",
                    (s.state.value, *result_values(s), run, s.problem, s.config, s.index),
                )
                freed = freed + Spend(1, res[0], res[1], res[2])
                spent = spent + s.spend
                results.append(True)
            cur.execute(
                "UPDATE runs SET reserved_samples = reserved_samples - ?, reserved_tokens = reserved_tokens - ?, "
                "reserved_dollars = reserved_dollars - ?, reserved_verify = reserved_verify - ?, "
                "spent_samples = spent_samples + ?, spent_tokens = spent_tokens + ?, "
                "spent_dollars = spent_dollars + ?, spent_verify = spent_verify + ?, updated_at = ? WHERE name = ?",
                (
                    freed.samples, freed.tokens, freed.dollars, freed.verify_seconds,
                    spent.samples, spent.tokens, spent.dollars, spent.verify_seconds,
                    time.time(), run,
                ),
            )
        return results

    def record_verdicts(self, run: str, samples: Sequence[Sample]) -> int:
        if any(s.state is not SampleState.DONE for s in samples):
            raise ValueError("record_verdicts takes done samples only (a verdict on a drawn sample)")
        where = "WHERE run = ? AND problem = ? AND config = ? AND idx = ? AND state = 'done'"
        replaced, change = 0, Spend()
        with self._write() as cur:
            for s in samples:
                row = cur.execute(
                    f"SELECT prompt_tokens, completion_tokens, cost, verify_seconds FROM samples {where}",
                    (run, s.problem, s.config, s.index),
                ).fetchone()
                if row is None:
                    continue
                cur.execute(
                    f"UPDATE samples SET {', '.join(f'{c} = ?' for c in VERDICT_COLUMNS)} {where}",
                    (*verdict_values(s).values(), run, s.problem, s.config, s.index),
                )
                change = change + s.spend - Spend(1, row[0] + row[1], row[2], row[3])
                replaced += 1
            if replaced:
                cur.execute(
                    "UPDATE runs SET spent_tokens = spent_tokens + ?, spent_dollars = spent_dollars + ?, "
                    "spent_verify = spent_verify + ?, updated_at = ? WHERE name = ?",
                    (change.tokens, change.dollars, change.verify_seconds, time.time(), run),
                )
        return replaced

    def samples(self, run: str, states: Iterable[SampleState] | None = None) -> list[Sample]:
        sql = f"SELECT {_SAMPLE_COLUMNS} FROM samples WHERE run = ?"
        params: list = [run]
        if states is not None:
            wanted = [SampleState(s).value for s in states]
            sql += f" AND state IN ({', '.join('?' * len(wanted))})"
            params += wanted
        sql += " ORDER BY problem, config, idx"
        return [sample(r) for r in self._conn.execute(sql, params)]

    def import_samples(self, run: str, samples: Sequence[Sample]) -> None:
        total = Spend()
        with self._write() as cur:
            for s in samples:
                if not s.state.finished:
                    raise ValueError("import_samples takes finished samples only")
                total = total + s.spend
            cur.executemany(
                f"INSERT INTO samples ({_SAMPLE_COLUMNS}) VALUES ({', '.join('?' * (6 + len(SAMPLE_RESULT_COLUMNS)))})",
                ((run, s.problem, s.config, s.index, s.seed, s.state.value, *result_values(s)) for s in samples),
            )
            cur.execute(
                "UPDATE runs SET spent_samples = spent_samples + ?, spent_tokens = spent_tokens + ?, "
                "spent_dollars = spent_dollars + ?, spent_verify = spent_verify + ?, updated_at = ? WHERE name = ?",
                (total.samples, total.tokens, total.dollars, total.verify_seconds, time.time(), run),
            )

    def close(self) -> None:
        self._conn.close()


def _translating(method):  # type: ignore[no-untyped-def]
    """Wrap a store method so that an SQLite error (a damaged file, a read-only one) becomes a
    one-line StoreError naming the store and the fix, not a traceback."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        try:
            return method(self, *args, **kwargs)
        except sqlite3.Error as exc:
            raise self._store_error(exc) from None

    return wrapper


for _name in ("create_run", "find_run", "list_runs", "update_spec", "set_run_state", "problems", "configs", "heartbeat",
              "workers", "release", "requeue_failed", "add_pending", "claim", "finish", "record_verdicts", "samples",
              "import_samples"):  # fmt: skip
    setattr(SQLiteStore, _name, _translating(getattr(SQLiteStore, _name)))
