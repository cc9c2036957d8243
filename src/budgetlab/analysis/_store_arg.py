"""The store a reader of runs is given: an open store, or its path or URL as ``budgetlab.run``
takes (``store="budgetlab.db"``), so the two calls of the README's snippet read alike."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from budgetlab.errors import InputError
from budgetlab.stores import BaseStore, open_store

__all__ = ["StoreLike", "reading"]

StoreLike = BaseStore | str | os.PathLike[str]


@contextlib.contextmanager
def reading(store: StoreLike, what: str) -> Iterator[BaseStore]:
    """``store`` itself if it is open (left open), else the store at that path or URL, closed
    afterwards. A path that does not exist is refused: opening it would create an empty store
    and report "no run named ..." about a file the user never meant."""
    if isinstance(store, BaseStore):
        yield store
        return
    if not isinstance(store, (str, os.PathLike)):
        raise InputError(
            f"{what} needs a store (open_store(path)) or its path, got {type(store).__name__}; "
            "e.g. build_report('budgetlab.db', 'my-run')"
        )
    url = os.fspath(store)
    if "://" not in url and Path(url).is_dir():
        raise InputError(f"store {url} is a directory; give the store file in it, e.g. {Path(url) / 'budgetlab.db'}")
    if "://" not in url and not Path(url).is_file():
        raise InputError(f"store {url} does not exist; give the path of the store the run was recorded in")
    opened = open_store(url)
    try:
        yield opened
    finally:
        opened.close()
