"""Evaluation sets in the subset2evaluate format, one item per line (plain or gzipped JSONL), or
as CSV with one row per item and system (:mod:`._csv_items`)::

    {"i": id, "src": source, "ref": reference, "tgt": {system: output},
     "scores": {system: {metric_or_human_dimension: value}}, "cost": optional number}

Score keys are human dimensions (``human_overall``, ``Overall``, ``quality``, ``fluency``, ...:
a key that starts with "human" or names a known dimension, or one declared human by name, as
``--human rating`` does) or automatic metrics (the rest). Scores must be finite numbers (null
for none).
"""

from __future__ import annotations

import gzip
import json
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from budgetlab.errors import InvalidArgument

__all__ = ["Item", "ItemSet", "is_human_key", "load_items"]

_FORMAT = '{"i": id, "src": str, "ref": str, "tgt": {system: output}, "scores": {system: {metric: number}}}'
HUMAN_DIMENSIONS = frozenset(
    {
        "quality", "naturalness", "informativeness", "understandable", "natural", "maintains context",
        "engaging", "uses knowledge", "overall", "accuracy", "coverage", "coherence", "fluency",
        "relevance", "consistency", "adequacy", "human",
    }
)  # fmt: skip
#: Automatic metrics where lower is better (negated when metrics are combined).
LOWER_IS_BETTER = frozenset({"ter", "lev.dist", "wer", "cer"})
#: Preferred human dimensions for the overall ranking, in order; else the mean of all.
OVERALL = ("human_overall", "overall", "quality", "human")


def is_human_key(key: str) -> bool:
    """Whether a score key names a human judgement (``human...`` or a known human dimension
    such as ``overall`` or ``fluency``): such keys are never used as a metric."""
    low = key.lower()
    return low.startswith("human") or low in HUMAN_DIMENSIONS


#: How a human key is recognised, for messages.
HUMAN_KEYS_ARE = "a key that starts with 'human' or is one of overall, quality, fluency, coherence, relevance, ..."


@dataclass(frozen=True)
class Item:
    id: str
    src: Any = None
    ref: Any = None
    tgt: Mapping[str, str] = field(default_factory=dict)
    scores: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    cost: float | None = None


class ItemSet:
    """Items with per-system scores; matrices are items x systems, NaN where a system has no
    score on an item (sets where systems vary per item, as in E2E, are fine). ``human``: keys
    that are human scores although not named like one (``rating``): never a cheap metric."""

    def __init__(self, items: Sequence[Item], name: str = "", human: str | Sequence[str] = ()) -> None:
        if not items:
            raise InvalidArgument(f"evaluation set {name or '(unnamed)'} has no items; give one {_FORMAT} per line")
        self.items = tuple(items)
        self.name = name
        self.declared_human = frozenset([human] if isinstance(human, str) else human)
        self.systems = tuple(dict.fromkeys(s for it in self.items for s in (*it.scores, *it.tgt)))
        self.keys = tuple(dict.fromkeys(k for it in self.items for sc in it.scores.values() for k in sc))
        self._cache: dict[str, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.items)

    def is_human(self, key: str) -> bool:
        return key in self.declared_human or is_human_key(key)

    @property
    def human_keys(self) -> tuple[str, ...]:
        return tuple(k for k in self.keys if self.is_human(k))

    @property
    def metric_keys(self) -> tuple[str, ...]:
        return tuple(k for k in self.keys if not self.is_human(k))

    def matrix(self, key: str) -> np.ndarray:
        if key not in self._cache:
            if key not in self.keys:
                raise InvalidArgument(
                    f"score {key!r} is not in evaluation set {self.name}; it has: {', '.join(self.keys) or 'no scores'}"
                )
            self._cache[key] = np.array(
                [[_as_float(it.scores.get(s, {}).get(key)) for s in self.systems] for it in self.items]
            )
        return self._cache[key]

    def human(self, key: str | None = None) -> np.ndarray:
        """The costly (human) score: ``key``, else the overall dimension (see ``OVERALL``), else
        the mean of every human dimension, each standardized."""
        if key is not None:
            return self.matrix(key)
        humans = self.human_keys
        if not humans:
            raise InvalidArgument(
                f"evaluation set {self.name} has no human score (one is {HUMAN_KEYS_ARE}; it has: "
                f"{', '.join(self.keys) or 'no scores'}); name yours with --human KEY"
            )
        for preferred in OVERALL:
            for k in humans:
                if k.lower() == preferred:
                    return self.matrix(k)
        return np.mean([_standardize(self.matrix(k)) for k in humans], axis=0)

    def metric(self, key: str = "auto") -> np.ndarray:
        """The cheap score: a metric by name, or ``"auto"``, the mean of every automatic metric,
        each standardized (lower-is-better ones negated)."""
        if key != "auto":
            return self.matrix(key)
        metrics = self.metric_keys
        if not metrics:
            raise InvalidArgument(
                f"evaluation set {self.name} has no automatic metric (only human scores: "
                f"{', '.join(self.human_keys)}); use a method that needs none, e.g. diversity or random "
                "(budgetlab subset --method diversity)"
            )
        if "auto" not in self._cache:
            parts = [(-1 if k.lower() in LOWER_IS_BETTER else 1) * _standardize(self.matrix(k)) for k in metrics]
            self._cache["auto"] = np.mean(parts, axis=0)
        return self._cache["auto"]

    def presence(self) -> np.ndarray:
        """Per item, a label of which systems have an output or an automatic score on it: items
        with the same systems share a label. Sets where every system is on every item have one."""
        if "\x00presence" not in self._cache:
            machine = [
                tuple(s in it.tgt or any(not self.is_human(k) for k in it.scores.get(s, {})) for s in self.systems)
                for it in self.items
            ]
            _, labels = np.unique(np.array(machine, bool).reshape(len(self.items), -1), axis=0, return_inverse=True)
            self._cache["\x00presence"] = labels.reshape(-1)
        return self._cache["\x00presence"]

    @property
    def has_metric(self) -> bool:
        return bool(self.metric_keys)

    def costs(self) -> np.ndarray:
        """Each item's ``cost``, else an estimate: the words a rater reads (source plus outputs)."""
        return np.array(
            [it.cost if it.cost is not None else max(1.0, float(_words(it.src) + sum(_words(t) for t in it.tgt.values())))
             for it in self.items]
        )  # fmt: skip


def _words(text: Any) -> int:
    return len(str(text).split()) if text is not None else 0


def _standardize(m: np.ndarray) -> np.ndarray:
    sd = np.nanstd(m)
    return (m - np.nanmean(m)) / (sd if sd > 0 else 1.0)


def _as_float(value: Any) -> float:
    if value is None or isinstance(value, bool):
        return math.nan
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def load_items(path: str | Path, *, human: str | Sequence[str] = ()) -> ItemSet:
    """Read an evaluation set (see the module docstring); errors name the file and line.
    ``human``: score keys to count as human although not named like one (see :class:`ItemSet`)."""
    path = Path(path)
    if path.is_dir():
        raise InvalidArgument(f"evaluation set {path} is a directory; give a JSONL file in it, e.g. {path / 'items.jsonl'}")
    if not path.is_file():
        raise InvalidArgument(f"evaluation set {path} does not exist; give a JSONL file with one {_FORMAT} per line")
    if ".csv" in [s.lower() for s in path.suffixes[-2:]]:
        return ItemSet(_csv_items(path), name=path.name.split(".")[0], human=human)
    items: list[Item] = []
    seen: set[str] = set()
    lineno = 0
    try:
        gzipped = path.suffix.lower() == ".gz"
        # utf-8-sig: a byte-order mark (Windows editors write one) is not JSON.
        opener = gzip.open(path, "rt", encoding="utf-8-sig") if gzipped else open(path, encoding="utf-8-sig")
        with opener as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise InvalidArgument(
                        f"{path}:{lineno}: not valid JSON ({exc.msg} at column {exc.colno}); each line must be {_FORMAT}"
                    ) from None
                item = _parse_item(path, lineno, obj, len(items))
                if item.id in seen:
                    raise InvalidArgument(f"{path}:{lineno}: item id {item.id!r} appears twice; ids ('i') must be unique")
                seen.add(item.id)
                items.append(item)
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InvalidArgument(
            f"{path}:{lineno + 1}: cannot be read as UTF-8 text or gzip ({type(exc).__name__}: {exc})"
        ) from None
    return ItemSet(items, name=path.name.split(".")[0], human=human)


def _csv_items(path: Path) -> list[Item]:
    from budgetlab.evaluation.subset._csv_items import items_from_csv

    try:
        opener = gzip.open(path, "rt", encoding="utf-8-sig") if path.suffix.lower() == ".gz" else open(path, encoding="utf-8-sig")
        with opener as fh:
            text = fh.read()
    except (UnicodeDecodeError, OSError, EOFError) as exc:
        raise InvalidArgument(f"{path}: cannot be read as UTF-8 text or gzip ({type(exc).__name__}: {exc})") from None
    return items_from_csv(path, text)


def _parse_item(path: Path, lineno: int, obj: Any, position: int) -> Item:
    where = f"{path}:{lineno}"
    if not isinstance(obj, dict):
        raise InvalidArgument(f"{where}: expected a JSON object, got {type(obj).__name__}; each line must be {_FORMAT}")
    scores = obj.get("scores")
    if not isinstance(scores, dict) or not scores:
        raise InvalidArgument(
            f"{where}: field 'scores' must be a non-empty {{system: {{metric: number}}}}; each line must be {_FORMAT}"
        )
    for system, values in scores.items():
        if not isinstance(values, dict):
            raise InvalidArgument(f"{where}: scores of system {system!r} must be {{metric: number}}, got {values!r}")
        for key, value in values.items():
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                quoted = isinstance(value, str) and not math.isnan(_as_float(value))
                hint = "write it without quotes" if quoted else "give a number"
                raise InvalidArgument(
                    f"{where}: score {key!r} of system {system!r} is not a number: {value!r}; {hint}, "
                    "or null for no score"
                )
            # JSON's NaN and Infinity parse as numbers, and one would turn every mean into NaN.
            if value is not None and not math.isfinite(value):
                raise InvalidArgument(
                    f"{where}: score {key!r} of system {system!r} is not finite: {value!r}; give a finite number, "
                    "or null (or leave the key out) for no score"
                )
    tgt = obj.get("tgt") or {}
    if not isinstance(tgt, dict):
        raise InvalidArgument(f"{where}: field 'tgt' must be {{system: output}}, got {type(tgt).__name__}")
    cost = obj.get("cost")
    if cost is not None and (isinstance(cost, bool) or not isinstance(cost, (int, float)) or not 0 < cost < math.inf):
        raise InvalidArgument(f"{where}: field 'cost' must be a positive finite number, got {cost!r}")
    return Item(
        id=str(obj.get("i", position)), src=obj.get("src"), ref=obj.get("ref"),
        tgt={str(k): "" if v is None else str(v) for k, v in tgt.items()},
        scores={str(s): dict(v) for s, v in scores.items()}, cost=None if cost is None else float(cost),
    )  # fmt: skip
