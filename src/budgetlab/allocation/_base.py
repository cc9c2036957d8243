"""The allocation contract: split a per-problem budget of k samples over configurations.

An :class:`Allocator` learns, from the recorded samples of a training split of problems, how
many of the k samples each configuration gets; the :class:`Allocation` it returns is then
applied unchanged to new problems. The data is a :class:`SuccessCounts` table: for every
(problem, configuration) pair, how many samples were recorded and how many of them were correct.
"""

from __future__ import annotations

import math

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from budgetlab.errors import InvalidArgument

__all__ = ["Allocation", "Allocator", "SuccessCounts"]


@dataclass(frozen=True, eq=False)
class SuccessCounts:
    """Recorded samples per (problem, configuration): ``samples[i, j]`` drawn for problem ``i``
    under configuration ``j``, ``correct[i, j]`` of them correct. Read-only arrays."""

    problems: tuple[str, ...]
    configs: tuple[str, ...]
    samples: npt.NDArray[np.int64]
    correct: npt.NDArray[np.int64]

    def __post_init__(self) -> None:
        samples = np.array(self.samples, dtype=np.int64, copy=True)
        correct = np.array(self.correct, dtype=np.int64, copy=True)
        shape = (len(self.problems), len(self.configs))
        if samples.shape != shape or correct.shape != shape:
            raise InvalidArgument(f"SuccessCounts needs {shape} arrays (problems x configs), got samples {samples.shape} and correct {correct.shape}")
        if (correct < 0).any() or (correct > samples).any():
            raise InvalidArgument("SuccessCounts needs 0 <= correct <= samples for every pair")
        if len(set(self.problems)) != len(self.problems) or len(set(self.configs)) != len(self.configs):
            raise InvalidArgument("SuccessCounts needs distinct problem ids and distinct configuration names")
        samples.setflags(write=False)
        correct.setflags(write=False)
        object.__setattr__(self, "problems", tuple(self.problems))
        object.__setattr__(self, "configs", tuple(self.configs))
        object.__setattr__(self, "samples", samples)
        object.__setattr__(self, "correct", correct)

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, object]]) -> SuccessCounts:
        """From ``{"problem", "config", "n", "correct"}`` rows (the replay "counts" format);
        every problem must have a row for every configuration."""
        table: dict[tuple[str, str], tuple[int, int]] = {}
        problems: dict[str, None] = {}
        configs: dict[str, None] = {}
        for k, row in enumerate(rows):
            try:
                key = (str(row["problem"]), str(row["config"]))
                n, correct = (_whole_count(row[field]) for field in ("n", "correct"))
            except (KeyError, TypeError, ValueError) as exc:
                raise InvalidArgument(
                    f"SuccessCounts.from_rows: row {k} ({dict(row)!r:.80}) is not "
                    f'{{"problem", "config", "n", "correct"}} with whole counts ({type(exc).__name__}: {exc})'
                ) from None
            if key in table:
                raise InvalidArgument(f"SuccessCounts.from_rows: pair {key} appears twice")
            table[key] = (n, correct)
            problems.setdefault(key[0])
            configs.setdefault(key[1])
        missing = [(p, c) for p in problems for c in configs if (p, c) not in table]
        if missing:
            raise InvalidArgument(f"SuccessCounts.from_rows: {len(missing)} pairs have no row, e.g. {missing[0]}")
        grid = np.array([[table[p, c] for c in configs] for p in problems], dtype=np.int64).reshape(len(problems), len(configs), 2)
        return cls(tuple(problems), tuple(configs), grid[..., 0], grid[..., 1])

    def rows(self) -> list[dict[str, object]]:
        """The table as replay "counts" rows."""
        return [
            {"problem": p, "config": c, "n": int(self.samples[i, j]), "correct": int(self.correct[i, j])}
            for i, p in enumerate(self.problems)
            for j, c in enumerate(self.configs)
        ]

    def rates(self) -> npt.NDArray[np.float64]:
        """Each pair's share of correct samples (0 where nothing was recorded)."""
        return np.divide(self.correct, self.samples, out=np.zeros(self.samples.shape), where=self.samples > 0)

    def take(self, problems: Sequence[str]) -> SuccessCounts:
        """The rows of the given problems, in that order."""
        index = {p: i for i, p in enumerate(self.problems)}
        unknown = [p for p in problems if p not in index]
        if unknown:
            raise KeyError(f"problems not in the table: {unknown[:3]}")
        rows = [index[p] for p in problems]
        return SuccessCounts(tuple(problems), self.configs, self.samples[rows], self.correct[rows])


@dataclass(frozen=True)
class Allocation:
    """How many of each problem's k samples go to each configuration."""

    configs: tuple[str, ...]
    counts: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.configs) != len(self.counts):
            raise InvalidArgument(f"an Allocation needs one count per configuration, got {len(self.counts)} counts for {len(self.configs)} configurations")
        if any(isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 0 for c in self.counts):
            raise InvalidArgument(f"an Allocation needs whole counts >= 0, got {self.counts}")
        object.__setattr__(self, "configs", tuple(self.configs))
        object.__setattr__(self, "counts", tuple(int(c) for c in self.counts))

    @property
    def k(self) -> int:
        """The per-problem budget: samples per problem summed over configurations."""
        return sum(self.counts)

    def as_dict(self) -> dict[str, int]:
        """Configuration name -> samples per problem, for the configurations that get any."""
        return {c: n for c, n in zip(self.configs, self.counts) if n}


@runtime_checkable
class Allocator(Protocol):
    """Splits k samples per problem among configurations, from recorded success counts
    (``fit``); one module per implementation in this package."""

    @property
    def name(self) -> str: ...  # read-only: an attribute, a field or a property all satisfy it

    def fit(self, counts: SuccessCounts, k: int) -> Allocation:
        """The allocation of ``k`` samples per problem learned from ``counts`` (a training split)."""


def _whole_count(value: object) -> int:
    number = float(value) if isinstance(value, (int, float, str)) and not isinstance(value, bool) else math.nan
    if not math.isfinite(number) or number != int(number) or number < 0:
        raise ValueError(f"{value!r} is not a whole count")
    return int(number)
