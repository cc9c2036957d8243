"""The tables of the SQLite store (the SQLAlchemy store declares the same ones with portable types)."""

from __future__ import annotations

SPEND_COLUMNS = ("samples", "tokens", "dollars", "verify")

SAMPLE_RESULT_COLUMNS = (
    "text",
    "answer",
    "correct",
    "score",
    "prompt_tokens",
    "completion_tokens",
    "cost",
    "latency",
    "verify_seconds",
    "logprob",
    "error",
    "details",
)
# The result columns a new verdict on a done sample replaces (``record_verdicts``); the others
# (text, latency, logprob, error) are what drawing it gave, and judging again does not change them.
VERDICT_COLUMNS = ("answer", "correct", "score", "prompt_tokens", "completion_tokens", "cost", "verify_seconds", "details")
# The result columns of a sample not drawn yet (SQL literals), to clear one that goes back to pending.
FRESH_RESULT = {c: "NULL" for c in SAMPLE_RESULT_COLUMNS} | {
    c: "0" for c in ("prompt_tokens", "completion_tokens", "cost", "latency", "verify_seconds")
}
# Columns added after schema version 1, added to older stores when they are opened:
# (version that added it, table, column, SQLite DDL type).
ADDED_COLUMNS = ((2, "samples", "details", "TEXT"),)

TABLES = [
    "CREATE TABLE IF NOT EXISTS budgetlab_schema (version INTEGER NOT NULL)",
    """CREATE TABLE IF NOT EXISTS runs (
        name TEXT PRIMARY KEY, spec TEXT NOT NULL, state TEXT NOT NULL, stopped_because TEXT,
        created_at REAL NOT NULL, updated_at REAL NOT NULL,
        spent_samples INTEGER NOT NULL DEFAULT 0, spent_tokens INTEGER NOT NULL DEFAULT 0,
        spent_dollars REAL NOT NULL DEFAULT 0, spent_verify REAL NOT NULL DEFAULT 0,
        reserved_samples INTEGER NOT NULL DEFAULT 0, reserved_tokens INTEGER NOT NULL DEFAULT 0,
        reserved_dollars REAL NOT NULL DEFAULT 0, reserved_verify REAL NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS problems (
        run TEXT NOT NULL, position INTEGER NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (run, id))""",
    """CREATE TABLE IF NOT EXISTS configs (
        run TEXT NOT NULL, position INTEGER NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
        PRIMARY KEY (run, id))""",
    """CREATE TABLE IF NOT EXISTS workers (
        run TEXT NOT NULL, worker TEXT NOT NULL, heartbeat REAL NOT NULL, PRIMARY KEY (run, worker))""",
    """CREATE TABLE IF NOT EXISTS samples (
        run TEXT NOT NULL, problem TEXT NOT NULL, config TEXT NOT NULL, idx INTEGER NOT NULL,
        seed BIGINT NOT NULL, state TEXT NOT NULL, worker TEXT,
        text TEXT, answer TEXT, correct INTEGER, score REAL,
        prompt_tokens INTEGER NOT NULL DEFAULT 0, completion_tokens INTEGER NOT NULL DEFAULT 0,
        cost REAL NOT NULL DEFAULT 0, latency REAL NOT NULL DEFAULT 0, verify_seconds REAL NOT NULL DEFAULT 0,
        logprob REAL, error TEXT, details TEXT,
        res_tokens INTEGER NOT NULL DEFAULT 0, res_dollars REAL NOT NULL DEFAULT 0, res_verify REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (run, problem, config, idx))""",
    "CREATE INDEX IF NOT EXISTS samples_by_state ON samples (run, state)",
]
