"""A verdict cache for programs: duplicate samples (same program, same tests, same limits) are
judged once. In memory always; on disk (SQLite) when given a path, shared by processes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CachedVerdict", "VerdictCache", "cache_key"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS code_verdicts (
    key TEXT PRIMARY KEY,
    passed INTEGER NOT NULL,
    answer TEXT NOT NULL,
    status TEXT NOT NULL,
    isolation TEXT NOT NULL,
    seconds REAL NOT NULL,
    created REAL NOT NULL
)
"""


def cache_key(program: str, limits: object) -> str:
    """sha256 of the program (which holds the completion and the tests) and the limits."""
    payload = json.dumps([program, repr(limits)], ensure_ascii=False)
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class CachedVerdict:
    passed: bool
    answer: str
    status: str
    isolation: str
    seconds: float  # what judging it cost the first time


class VerdictCache:
    """Thread-safe; the SQLite file uses WAL and a busy timeout, so several runs may share it."""

    def __init__(self, path: str | Path | None = None) -> None:
        self._memory: dict[str, CachedVerdict] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self.path = None if path in (None, "") else Path(str(path)).expanduser()
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA busy_timeout=30000")
            self._db.execute(_SCHEMA)

    def __len__(self) -> int:
        return len(self._memory)

    def get(self, key: str) -> CachedVerdict | None:
        with self._lock:
            hit = self._memory.get(key)
            if hit is None and self._db is not None:
                row = self._db.execute(
                    "SELECT passed, answer, status, isolation, seconds FROM code_verdicts WHERE key = ?", (key,)
                ).fetchone()
                if row is not None:
                    hit = self._memory[key] = CachedVerdict(bool(row[0]), row[1], row[2], row[3], row[4])
            return hit

    def put(self, key: str, verdict: CachedVerdict) -> None:
        with self._lock:
            self._memory[key] = verdict
            if self._db is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO code_verdicts VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (key, int(verdict.passed), verdict.answer, verdict.status, verdict.isolation, verdict.seconds,
                     time.time()),
                )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
