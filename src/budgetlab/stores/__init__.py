"""Stores: where every sample of every run is recorded. ``open_store`` picks one from a URL."""

from __future__ import annotations

import os

from budgetlab.errors import InputError
from budgetlab.stores._base import SCHEMA_VERSION, BaseStore, ClaimResult, Proposal
from budgetlab.stores._sqlite import SQLiteStore

__all__ = ["SCHEMA_VERSION", "BaseStore", "ClaimResult", "Proposal", "SQLiteStore", "open_store"]


def open_store(url: str | os.PathLike[str]) -> BaseStore:
    """Open a store: a file path or ``sqlite:///PATH`` gives the built-in SQLite store; any other
    SQLAlchemy URL (``postgresql://...``) the SQLAlchemy store (``pip install 'budgetlab[sql]'``)."""
    if not isinstance(url, (str, os.PathLike)):
        raise InputError(f"a store is a file path or a URL, got {type(url).__name__} {url!r:.40}; e.g. open_store('budgetlab.db')")
    url = os.fspath(url)
    if url.startswith("sqlite:///"):
        return SQLiteStore(url[len("sqlite:///"):])
    if "://" in url:
        from budgetlab.stores._sqlalchemy import SQLAlchemyStore

        return SQLAlchemyStore(url)
    return SQLiteStore(url)
