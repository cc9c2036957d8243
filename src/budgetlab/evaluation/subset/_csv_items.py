"""Evaluation sets as CSV, the shape a spreadsheet or ``DataFrame.to_csv`` gives: one row per
(item, system)::

    item,system,output,bleu,human_overall
    q1,model-a,"The cat sat.",0.41,4
    q1,model-b,"A cat sits.",0.38,

Columns: ``item`` (or ``i``, ``id``, ``item_id``) and ``system`` (or ``model``) are required;
``src`` (``source``), ``ref`` (``reference``), ``output`` (``tgt``, ``prediction``) and
``cost`` (the item's, the same on each of its rows) are optional; every other column is a score,
human or metric by its name as in the JSONL format. An empty field (or NA, nan, null) is no score.
A column with no name (the index ``DataFrame.to_csv`` writes, ``Unnamed: 0`` once read back) is
not read.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

from budgetlab.errors import InputError, InvalidArgument
from budgetlab.evaluation.subset._data import Item

__all__ = ["items_from_csv"]

_ROLES = {
    "item": ("item", "i", "id", "item_id"),
    "system": ("system", "model"),
    "src": ("src", "source"),
    "ref": ("ref", "reference"),
    "output": ("output", "tgt", "prediction"),
    "cost": ("cost",),
}
CSV_FORMAT = "item,system[,src,ref,output,cost],<score>,<score>,... (one row per item and system)"


def _roles(path: Path, header: list[str], where: str) -> dict[str, int]:
    lower = [h.lower() for h in header]
    found = {}
    for role, names in _ROLES.items():
        hits = [j for j, h in enumerate(lower) if h in names]
        if len(hits) > 1:
            raise InvalidArgument(
                f"{where}: columns {', '.join(header[j] for j in hits)} all name the {role}; keep one of them"
            )
        if hits:
            found[role] = hits[0]
    missing = [r for r in ("item", "system") if r not in found]
    if missing:
        raise InvalidArgument(
            f"{where}: header {','.join(header)} has no {' or '.join(repr(m) for m in missing)} column; a CSV "
            f"evaluation set needs the columns {CSV_FORMAT}"
        )
    return found


def items_from_csv(path: Path, text: str) -> list[Item]:
    from budgetlab.evaluation._io import _csv_number, _field_count

    reader = csv.reader(io.StringIO(text))
    rows, line = [], 1  # (the line a row starts on, its fields): a quoted field may span lines
    for row in reader:
        if any(c.strip() for c in row):
            rows.append((line, row))
        line = reader.line_num + 1
    if not rows:
        raise InvalidArgument(f"{path} is empty; a CSV evaluation set needs a header {CSV_FORMAT} and rows")
    where = f"{path}:{rows[0][0]}"
    header = [h.strip() for h in rows[0][1]]
    if len(header) == 1:
        sep = next((c for c in (";", "\t", "|") if c in rows[0][1][0]), None)
        if sep is not None:
            raise InvalidArgument(
                f"{where}: the fields are separated by {sep!r}, not commas; save the file as comma-separated, "
                "with '.' as the decimal point"
            )
    roles = _roles(path, header, where)
    unnamed = {j for j, h in enumerate(header) if not h or re.fullmatch(r"Unnamed: \d+", h)}
    score_columns = [j for j in range(len(header)) if j not in roles.values() and j not in unnamed]
    repeated = sorted({header[j] for j in score_columns if [header[k] for k in score_columns].count(header[j]) > 1})
    if repeated:
        raise InvalidArgument(f"{where}: score column {repeated[0]!r} appears twice; give each score one column")
    items: dict[str, dict] = {}
    first_line: dict[tuple[str, str], int] = {}
    cost_line: dict[str, int] = {}
    for lineno, row in rows[1:]:
        if len(row) != len(header):
            raise InvalidArgument(_field_count(path, lineno, len(row), len(header)))
        item_id, system = row[roles["item"]].strip(), row[roles["system"]].strip()
        if not item_id or not system:
            empty = "item" if not item_id else "system"
            raise InvalidArgument(f"{path}:{lineno}: the {header[roles[empty]]!r} field is empty; every row names its item and system")
        if (item_id, system) in first_line:
            raise InvalidArgument(
                f"{path}:{lineno}: item {item_id!r} and system {system!r} have a row already (line "
                f"{first_line[item_id, system]}); give each item and system one row"
            )
        first_line[item_id, system] = lineno
        item = items.setdefault(item_id, {"src": None, "ref": None, "tgt": {}, "scores": {}, "cost": None})
        for role in ("src", "ref"):
            if role in roles and row[roles[role]].strip() and item[role] is None:
                item[role] = row[roles[role]]
        if "output" in roles and row[roles["output"]].strip():
            item["tgt"][system] = row[roles["output"]]
        if "cost" in roles and row[roles["cost"]].strip():
            cost = _csv_number(row[roles["cost"]], f"{path}:{lineno}")
            if not 0 < cost < math.inf:
                raise InvalidArgument(f"{path}:{lineno}: cost {row[roles['cost']].strip()!r} must be a positive number")
            if item["cost"] is not None and cost != item["cost"]:
                raise InvalidArgument(
                    f"{path}:{lineno}: item {item_id!r} has cost {row[roles['cost']].strip()} here and {item['cost']:g} on "
                    f"line {cost_line[item_id]}; the cost is the item's (to rate all its outputs): give the same on "
                    "each of its rows, or on one of them only"
                )
            item["cost"], cost_line[item_id] = cost, lineno
        scores = {}
        for j in score_columns:
            try:
                value = _csv_number(row[j], f"{path}:{lineno}")
            except InputError as exc:  # name the column, which may not be a score at all
                if "decimal point" in str(exc):  # a number in a decimal-comma locale: the column is a score
                    raise InvalidArgument(f"{exc}, in column {header[j]!r}") from None
                raise InvalidArgument(
                    f"{exc}, in column {header[j]!r}; every column other than item, system, src, ref, output and cost "
                    "is read as a score: rename or drop it if it is not one"
                ) from None
            if not math.isnan(value):
                scores[header[j]] = value
        if scores:
            item["scores"][system] = scores
    return [Item(id=i, src=v["src"], ref=v["ref"], tgt=v["tgt"], scores=v["scores"], cost=v["cost"]) for i, v in items.items()]
