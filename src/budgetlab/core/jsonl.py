"""Read JSONL files (plain or gzipped) with errors that name the file, the line and the fix."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from budgetlab.errors import InputError

__all__ = ["iter_jsonl"]


def iter_jsonl(path: str | Path, expected: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, parsed JSON)`` for each non-blank line. ``expected`` describes a
    valid line, for the error messages."""
    path = Path(path)
    lineno = 0
    try:
        # utf-8-sig: a file saved by a Windows editor starts with a byte-order mark, not JSON.
        with (gzip.open(path, "rt", encoding="utf-8-sig") if path.suffix == ".gz" else open(path, encoding="utf-8-sig")) as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    yield lineno, json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InputError(
                        f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}); each line must be {expected}"
                    ) from None
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(
            f"{path}:{lineno + 1}: cannot be read as UTF-8 text or gzip ({type(exc).__name__}: {exc}); "
            f"give a JSONL file in which each line is {expected}"
        ) from None
