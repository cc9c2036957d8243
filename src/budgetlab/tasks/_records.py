"""Read benchmark records from local files (JSONL, gzipped JSONL, a JSON list, CSV) or, when
online, from Hugging Face ``datasets``; errors name the file, the line and the fix."""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from budgetlab.core.jsonl import iter_jsonl
from budgetlab.errors import InputError

__all__ = ["Record", "find_file", "hub_records", "read_records", "require"]

Record = tuple[str, dict[str, Any]]  # (where: "file:line", the record)


def find_file(task: str, path: str | Path, names: Sequence[str]) -> Path:
    """``path`` itself when it is a file; in a directory, the first of ``names`` it holds."""
    p = Path(str(path)).expanduser()  # the spec parser gives path=2024 as an int
    if p.is_file():
        return p
    if p.is_dir():
        for name in names:
            if (p / name).is_file():
                return p / name
        raise InputError(
            f"task {task}: directory {p} holds none of {', '.join(names)}; give the file itself, e.g. --task {task}:path={p / names[0]}"
        )
    raise InputError(f"task {task}: {p} does not exist; give the path of the {task} file, e.g. --task {task}:path=/data/{names[0]}")


def read_records(path: Path, expected: str) -> Iterator[Record]:
    """Each record of a JSONL (``.jsonl``, ``.jsonl.gz``), JSON-list (``.json``) or CSV file."""
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz")):
        opener = gzip.open if name.endswith(".gz") else open
        try:
            with opener(path, "rt", encoding="utf-8", newline="") as fh:  # type: ignore[operator]
                for lineno, row in enumerate(csv.DictReader(fh), 2):
                    yield f"{path}:{lineno}", dict(row)
        except (UnicodeDecodeError, OSError, csv.Error) as exc:
            raise InputError(f"{path}: cannot be read as a CSV file with a header row ({exc}); each row must have {expected}") from None
        return
    if name.endswith(".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, OSError) as exc:
            raise InputError(f"{path}: not a JSON list ({exc}); give a JSON list or JSONL of {expected}") from None
        if not isinstance(data, list):
            raise InputError(f"{path}: holds a JSON {type(data).__name__}, not a list; give a list (or JSONL) of {expected}")
        for i, obj in enumerate(data):
            yield f"{path}[{i}]", obj
        return
    for lineno, obj in iter_jsonl(path, expected):
        yield f"{path}:{lineno}", obj


def require(where: str, record: Any, fields: Sequence[str], expected: str) -> None:
    """A one-line error for a record that is not an object or lacks one of ``fields``."""
    if not isinstance(record, dict):
        raise InputError(f"{where}: is a JSON {type(record).__name__}, not an object; each record must be {expected}")
    for name in fields:
        if record.get(name) in (None, ""):
            raise InputError(f"{where}: field {name!r} is missing or empty; each record must be {expected} (fix the record)")


def hub_records(task: str, dataset: str, config: str | None, split: str, local: str) -> Iterator[Record]:
    """The records of a Hugging Face dataset (needs the ``datasets`` package and the network)."""
    try:
        import datasets
    except ImportError:
        raise InputError(
            f"task {task} needs its data: give a local file (--task {task}:path={local}) or install 'datasets' "
            "(pip install datasets) to download it from the Hugging Face Hub"
        ) from None
    try:
        rows = datasets.load_dataset(dataset, config, split=split)
    except Exception as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(
            f"task {task}: cannot load {dataset} ({config or 'default'}, split {split}) from the Hugging Face Hub "
            f"({message}); give a local file instead: --task {task}:path={local}"
        ) from None
    for i, row in enumerate(rows):
        yield f"{dataset}[{i}]", dict(row)
