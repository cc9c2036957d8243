"""Read score matrices (methods x examples) from the files people have.

* ``.npz``: an array ``scores`` (or ``values``/``matrix``), methods x examples, with optional
  string arrays ``methods`` and ``examples``;
* ``.json`` (optionally ``.gz``): ``{"methods": [...], "examples": [...], "scores": [[...]]}``,
  or ``{method: {example: score}}``, or ``{method: [scores]}``, or a LiveCodeBench
  performances file (``{"performances": [{"model", "question_id", "pass@1"}]}``, pass@1 read as a
  fraction);
* ``.csv``: wide (``method,<example>,<example>,...``, one row per method) or long (columns
  ``method``, ``example`` and ``score``; several rows of one cell are its samples, averaged as
  a replay file's are);
* ``.jsonl`` (optionally ``.gz``): a budgetlab replay file (samples or counts records, see the
  README): a cell's score is the mean of its samples' scores (else correctness), so a counts
  record ``{"n": 10, "correct": 3}`` gives 0.3.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from budgetlab.errors import InputError
from budgetlab.evaluation._base import ScoreMatrix

__all__ = ["load_run_matrix", "load_score_matrix", "matrix_from_cells"]

_FORMATS = (
    "a score matrix: .npz (array 'scores'), .json ({'methods', 'examples', 'scores'} or {method: {example: score}}), "
    ".csv (method,<example>,... per row, or columns method,example,score) or a budgetlab replay .jsonl"
)


def _suffixes(path: Path) -> list[str]:
    return [s.lower() for s in path.suffixes[-2:]]


def _read_text(path: Path) -> str:
    # utf-8-sig: spreadsheet tools write a byte-order mark, which would otherwise hide a long
    # CSV's first column name and make JSON invalid.
    try:
        if path.suffix.lower() == ".gz":
            with gzip.open(path, "rt", encoding="utf-8-sig") as fh:
                return fh.read()
        return path.read_text(encoding="utf-8-sig")
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InputError(
            f"{path}: cannot be read as UTF-8 text or gzip ({type(exc).__name__}: {exc}); give {_FORMATS}"
        ) from None


def load_score_matrix(path: str | Path) -> ScoreMatrix:
    """Read ``path`` (format by extension, see the module docstring)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"score file {path} is a directory; give a file in it, e.g. {path / 'scores.csv'}")
    if not path.is_file():
        raise InputError(f"score file {path} does not exist; give {_FORMATS}")
    try:
        return _load(path)
    except InputError as exc:
        # The matrix's own checks (shape, methods) do not know the file: name it for them.
        message = str(exc)
        raise InputError(message if str(path) in message else f"{path}: {message}") from None


def _load(path: Path) -> ScoreMatrix:
    kinds = _suffixes(path)
    if ".npz" in kinds:
        return _from_npz(path)
    if ".jsonl" in kinds:
        return _from_replay(path)
    if ".json" in kinds:
        text = _read_text(path)
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}:{exc.lineno}: not valid JSON ({exc.msg} at column {exc.colno}); give {_FORMATS}"
            ) from None
        return _from_json(path, data)
    if ".csv" in kinds:
        return _from_csv(path, _read_text(path))
    raise InputError(f"score file {path} has an unknown extension; give {_FORMATS}")


def matrix_from_cells(cells: Mapping[tuple[str, str], float], where: str) -> ScoreMatrix:
    """A matrix from ``{(method, example): score}``; missing cells are NaN."""
    if not cells:
        raise InputError(f"{where} holds no scores; give {_FORMATS}")
    methods = list(dict.fromkeys(m for m, _ in cells))
    examples = list(dict.fromkeys(e for _, e in cells))
    mi = {m: i for i, m in enumerate(methods)}
    ei = {e: j for j, e in enumerate(examples)}
    values = np.full((len(methods), len(examples)), np.nan)
    for (m, e), v in cells.items():
        values[mi[m], ei[e]] = v
    try:
        return ScoreMatrix(values, tuple(methods), tuple(examples))
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None


def _number(value: Any, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{where}: score {value!r} is not a number (use null for a missing cell)")
    if math.isinf(value):
        raise InputError(f"{where}: score {value!r} is infinite; give a finite number or null")
    return float(value)


def _cell_means(samples: Mapping[tuple[str, str], list[float]]) -> dict[tuple[str, str], float]:
    """Each cell's mean over its samples that hold a score (NaN when none does), as a replay
    file's samples of one cell are averaged."""
    out = {}
    for key, values in samples.items():
        scored = [v for v in values if not math.isnan(v)]
        out[key] = sum(scored) / len(scored) if scored else math.nan
    return out


def _names(value: Any, what: str, count: int, path: Path) -> list[str]:
    """The ``methods`` or ``examples`` list of a JSON matrix, checked against the ``scores``."""
    if not isinstance(value, list) or not all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value):
        raise InputError(f'{path}: {what!r} must be a list of names, e.g. ["a", "b"], got {value!r}')
    if len(value) != count:
        rows = "rows" if what == "methods" else "scores per row"
        raise InputError(
            f"{path}: {what!r} names {len(value)}, but 'scores' has {count} {rows}; give one name for each"
        )
    _refuse_repeats([str(v) for v in value], what.removesuffix("s"), str(path))
    return [str(v) for v in value]


def _refuse_repeats(names: list[str], what: str, where: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"{where}: {what} {name!r} appears twice; each must be named once (merge or rename them)")
        seen.add(name)


def _from_json(path: Path, data: Any) -> ScoreMatrix:
    if isinstance(data, dict) and "performances" in data:
        if not isinstance(data["performances"], list):
            raise InputError(
                f"{path}: 'performances' must be a list of {{'model', 'question_id', 'pass@1'}} objects, "
                f"got {type(data['performances']).__name__}"
            )
        samples: dict[tuple[str, str], list[float]] = {}
        for k, row in enumerate(data["performances"]):
            if not isinstance(row, dict):
                raise InputError(
                    f"{path}: performances[{k}] must be a {{'model', 'question_id', 'pass@1'}} object, got {row!r:.60}"
                )
            # LiveCodeBench's code-execution file spells it 'Pass@1'.
            score_key = "pass@1" if "pass@1" in row else "Pass@1"
            missing = [key for key in ("model", "question_id", score_key) if key not in row]
            if missing:
                raise InputError(
                    f"{path}: performances[{k}] lacks {', '.join(repr(m.lower()) for m in missing)}; it has "
                    f"{', '.join(map(repr, row)) or 'no keys'}; each row needs 'model', 'question_id' and 'pass@1'"
                )
            key = (str(row["model"]), str(row["question_id"]))
            samples.setdefault(key, []).append(_number(row[score_key], f"{path}: performances[{k}]") / 100.0)
        return matrix_from_cells(_cell_means(samples), str(path))
    if isinstance(data, dict) and "scores" in data and isinstance(data["scores"], list):
        rows = data["scores"]
        if not rows or not all(isinstance(r, list) for r in rows):
            raise InputError(f"{path}: 'scores' must be a list of rows (one per method), each a list of numbers")
        width = len(rows[0])
        if any(len(r) != width for r in rows):
            raise InputError(f"{path}: the rows of 'scores' differ in length; every method needs one score per example")
        values = np.array(
            [[_number(v, f"{path}: scores[{i}][{j}]") for j, v in enumerate(r)] for i, r in enumerate(rows)]
        )
        methods = None if data.get("methods") is None else _names(data["methods"], "methods", len(rows), path)
        examples = None if data.get("examples") is None else _names(data["examples"], "examples", width, path)
        methods = methods or [f"method{i}" for i in range(len(rows))]
        examples = examples or [str(j) for j in range(width)]
        return ScoreMatrix(values, tuple(methods), tuple(examples))
    if isinstance(data, dict) and data and all(isinstance(v, (dict, list)) for v in data.values()):
        cells = {}
        for method, row in data.items():
            items = row.items() if isinstance(row, dict) else enumerate(row)
            for example, v in items:
                cells[(str(method), str(example))] = _number(v, f"{path}: {method!r}/{example!r}")
        return matrix_from_cells(cells, str(path))
    raise InputError(f"{path}: JSON of an unknown shape; give {_FORMATS}")


def _from_csv(path: Path, text: str) -> ScoreMatrix:
    rows = list(csv.reader(io.StringIO(text)))
    rows = [r for r in rows if any(c.strip() for c in r)]
    if len(rows) < 2:
        raise InputError(f"{path}: a CSV score matrix needs a header and at least one row; give {_FORMATS}")
    header = [h.strip() for h in rows[0]]
    lower = [h.lower() for h in header]
    if len(header) == 1:
        # A spreadsheet saved with ';' or tabs (a European locale's CSV): one column to the reader.
        sep = next((c for c in (";", "\t", "|") if c in rows[0][0]), None)
        if sep is not None:
            raise InputError(
                f"{path}:1: the fields are separated by {sep!r}, not commas; save the file as comma-separated "
                "(method,<example>,... or method,example,score), with '.' as the decimal point"
            )
    if {"method", "example"} <= set(lower) and ("score" in lower or "value" in lower):
        mi, ei = lower.index("method"), lower.index("example")
        si = lower.index("score") if "score" in lower else lower.index("value")
        samples: dict[tuple[str, str], list[float]] = {}
        for lineno, row in enumerate(rows[1:], 2):
            if len(row) != len(header):
                raise InputError(_field_count(path, lineno, len(row), len(header)))
            samples.setdefault((row[mi].strip(), row[ei].strip()), []).append(_csv_number(row[si], f"{path}:{lineno}"))
        return matrix_from_cells(_cell_means(samples), str(path))
    examples = header[1:]
    if not examples:
        raise InputError(f"{path}: the header names no examples; write method,<example>,<example>,...")
    _refuse_repeats(examples, "example column", f"{path}:1")
    values, methods, first_line = [], [], {}
    for lineno, row in enumerate(rows[1:], 2):
        if len(row) != len(header):
            raise InputError(_field_count(path, lineno, len(row), len(header)))
        method = row[0].strip()
        if method in first_line:
            raise InputError(
                f"{path}:{lineno}: method {method!r} has a row already (line {first_line[method]}); give each method "
                "one row, or write the file long (method,example,score), where several rows of a cell are averaged"
            )
        first_line[method] = lineno
        methods.append(method)
        try:
            values.append([_csv_number(c, f"{path}:{lineno}") for c in row[1:]])
        except InputError as exc:
            # Meant as a long file with other column names ('Prompt Name,Item ID,Judge Score'):
            # its first row has names where a wide file has scores.
            words = sum(not _is_float(c.strip()) and not _csv_missing(c) for c in row[1:])
            if {"score", "value"} & set(lower) or (lineno == 2 and words > 1):
                raise InputError(
                    f"{path}:1: header {','.join(header)} is not recognised; a long CSV needs the columns "
                    "method,example,score (or value; rename yours to these, other columns are ignored), a wide one "
                    "method,<example>,<example>,... with a score in every other field"
                ) from None
            if lineno == 2:
                raise InputError(
                    f"{exc}; or, if the file has a row per method and example, name its columns method,example,score"
                ) from None
            raise
    return ScoreMatrix(np.array(values), tuple(methods), tuple(examples))


def _csv_missing(text: str) -> bool:
    text = text.strip()
    return text == "" or text.lower() in ("nan", "na", "null", "none")


def _csv_number(text: str, where: str) -> float:
    text = text.strip()
    if _csv_missing(text):
        return math.nan
    try:
        value = float(text)
    except ValueError:
        decimal_comma = text.replace(",", ".", 1)
        hint = f"; write a decimal point: {decimal_comma}" if "," in text and _is_float(decimal_comma) else ""
        raise InputError(
            f"{where}: score {text!r} is not a number{hint} (leave the field empty for a missing cell)"
        ) from None
    if math.isinf(value):  # quote what the file says (1e400), not what it overflowed to
        raise InputError(f"{where}: score {text!r} is infinite; give a finite number, or leave the field empty")
    return value


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _field_count(path: Path, lineno: int, fields: int, columns: int) -> str:
    return (
        f"{path}:{lineno}: {fields} fields, but the header has {columns}; give every row one field per column "
        "(an empty field for a missing score; quote a text that holds a comma)"
    )


def _from_npz(path: Path) -> ScoreMatrix:
    try:
        with np.load(path, allow_pickle=False) as data:
            key = next((k for k in ("scores", "values", "matrix") if k in data), None)
            if key is None:
                raise InputError(f"{path}: no array 'scores' (or 'values', 'matrix'); it has: {', '.join(data.files)}")
            values = np.asarray(data[key], dtype=float)
            if values.ndim != 2:
                raise InputError(f"{path}: array {key!r} has shape {values.shape}; it must be methods x examples (2-D)")
            methods = (
                [str(m) for m in data["methods"]]
                if "methods" in data
                else [f"method{i}" for i in range(values.shape[0])]
            )
            examples = (
                [str(e) for e in data["examples"]] if "examples" in data else [str(j) for j in range(values.shape[1])]
            )
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise InputError(f"{path}: not a readable .npz file ({type(exc).__name__}: {exc})") from None
    return ScoreMatrix(values, tuple(methods), tuple(examples))


def _from_replay(path: Path) -> ScoreMatrix:
    from budgetlab.backends import read_recorded

    records, _ = read_recorded(path)
    samples = {
        (config, problem): [float(r.score) if r.score is not None else float(r.correct)
                            for r in recs if r.score is not None or r.correct is not None]
        for (problem, config), recs in records.items()
    }  # fmt: skip
    return matrix_from_cells(_cell_means(samples), str(path))


def load_run_matrix(store: Any, run: str) -> ScoreMatrix:
    """The (configuration x problem) matrix of a run in a budgetlab store (open, or its path or
    URL): a cell's score is the mean of its done samples' scores (else correctness); a pair with
    none is missing."""
    from budgetlab.analysis._store_arg import reading
    from budgetlab.core.types import SampleState, with_distinct_names

    with reading(store, "load_run_matrix") as st:
        st.get_run(run)
        names = {c.id: c.name for c in with_distinct_names(st.configs(run))}
        sums: dict[tuple[str, str], list[float]] = {}
        for s in st.samples(run, [SampleState.DONE]):
            value = s.score if s.score is not None else (None if s.correct is None else float(s.correct))
            if value is not None:
                sums.setdefault((names[s.config], s.problem), []).append(float(value))
    return matrix_from_cells(_cell_means(sums), f"run {run!r} in {getattr(store, 'url', store)}")
