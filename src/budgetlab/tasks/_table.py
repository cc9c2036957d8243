"""Problems from any table of records (CSV with a header row, JSONL, a JSON list), naming which
columns hold the prompt, the reference and the id; the other columns become metadata."""

from __future__ import annotations

from pathlib import Path

from budgetlab.core import Problem
from budgetlab.errors import InputError
from budgetlab.tasks._records import read_records, require

__all__ = ["table_problems"]


def table_problems(
    path: str,
    prompt: str = "prompt",
    reference: str | None = "reference",
    id: str | None = "id",
    verifier: str | None = None,
    n: int | None = None,
) -> list[Problem]:
    """``file:path=data.csv,prompt=question,reference=answer``: one problem per record. A
    record without the ``id`` column is numbered (``<file stem>/<index>``); a ``reference``
    column that the file lacks entirely means no references. ``verifier`` is put in each
    problem's metadata (for ``--verifier auto``)."""
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise InputError(f"task file needs n to be a whole number >= 1, got n={n!r}; e.g. --task file:path=x.csv,n=50")
    # Column names as written: the spec parser gives prompt=2 as an int.
    prompt, reference, id = (None if name is None else str(name) for name in (prompt, reference, id))
    verifier = None if verifier is None else str(verifier)
    file = Path(str(path)).expanduser()
    if not file.is_file():
        raise InputError(f"task file: {file} does not exist; give a CSV, JSONL or JSON file, e.g. --task file:path=data.csv,prompt=question")
    expected = f"a {prompt!r} column" + (f" and a {reference!r} column" if reference else "")
    problems: list[Problem] = []
    seen: set[str] = set()
    has_reference: bool | None = None
    for i, (where, rec) in enumerate(read_records(file, expected)):
        require(where, rec, (prompt,), expected + f" (choose the prompt column with --task file:path={file},prompt=NAME)")
        if has_reference is None:
            has_reference = bool(reference) and reference in rec
        ref = rec.get(reference) if has_reference and reference else None
        if has_reference and ref in (None, ""):
            raise InputError(f"{where}: field {reference!r} is missing or empty; give every record a reference, or none")
        pid = rec.get(id) if id else None
        pid = str(pid) if pid not in (None, "") else f"{file.name.split('.')[0]}/{i}"
        if pid in seen:
            raise InputError(f"{where}: problem id {pid!r} appears twice; ids must be unique")
        seen.add(pid)
        metadata = {k: v for k, v in rec.items() if k not in (prompt, reference, id)}
        if verifier:
            metadata["verifier"] = verifier
        problems.append(Problem(id=pid, prompt=str(rec[prompt]), reference=None if ref is None else str(ref), metadata=metadata))
        if n is not None and len(problems) >= n:
            break
    if not problems:
        raise InputError(f"task file: {file} has no records; give one record per line/row with {expected}")
    return problems
