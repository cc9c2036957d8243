"""Files the CLI writes: ``--output`` files, checked before the work they would hold is done (and
paid for), and a store it created for a command that then failed."""

from __future__ import annotations

from pathlib import Path

from typing import Any

from budgetlab.errors import InputError

__all__ = ["close_or_discard", "output_file"]


def output_file(text: str, what: str, name: str) -> Path:
    """The path ``--output`` names, refused when it is a directory or its folder does not exist.
    ``what`` says what the file is and ``name`` a file name for the example fix."""
    path = Path(text)
    if path.is_dir():
        raise InputError(f"--output {path} is a directory; give {what}, e.g. --output {path / name}")
    if not path.parent.is_dir():
        raise InputError(f"--output {path}: the folder {path.parent} does not exist; create it or give another --output")
    return path


def close_or_discard(store: Any, path: str, created: bool) -> None:
    """Close ``store``; if this command ``created`` its file and nothing was recorded there, also
    delete it, so that a mistyped option leaves no empty store behind. A run recorded meanwhile
    (a worker started at the same moment is writing to that file) keeps it."""
    empty = created and not store.list_runs()
    store.close()
    if empty:
        for suffix in ("", "-wal", "-shm"):
            Path(path + suffix).unlink(missing_ok=True)
