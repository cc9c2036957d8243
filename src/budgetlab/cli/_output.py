"""``--output`` files, checked before the work they would hold is done (and paid for)."""

from __future__ import annotations

from pathlib import Path

from budgetlab.errors import InputError

__all__ = ["output_file"]


def output_file(text: str, what: str, name: str) -> Path:
    """The path ``--output`` names, refused when it is a directory or its folder does not exist.
    ``what`` says what the file is and ``name`` a file name for the example fix."""
    path = Path(text)
    if path.is_dir():
        raise InputError(f"--output {path} is a directory; give {what}, e.g. --output {path / name}")
    if not path.parent.is_dir():
        raise InputError(f"--output {path}: the folder {path.parent} does not exist; create it or give another --output")
    return path
