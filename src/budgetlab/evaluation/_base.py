"""Contracts of budgeted evaluation.

Best-arm identification over a (method x example) score matrix: an *algorithm* looks at what
is known so far (:class:`Observations`) and proposes the next (method, example) evaluations.
It keeps no state of its own, so the same algorithm drives an offline simulation over a
recorded matrix (:func:`budgetlab.evaluation.selection.simulate`) and a live run, where it is a
policy over (problem = example, config = method) that reads the run's samples
(:class:`budgetlab.evaluation.selection.SelectionPolicy`).

Subset selection for costly raters: a *subset method* orders the items of an evaluation set,
most worth rating first (:class:`SubsetMethod`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from budgetlab.errors import InvalidArgument

if TYPE_CHECKING:
    from budgetlab.evaluation.subset._data import ItemSet

__all__ = [
    "BestArmAlgorithm",
    "Observations",
    "RankedMethod",
    "ScoreMatrix",
    "SelectionResult",
    "SubsetMethod",
    "identified",
]


@dataclass(frozen=True)
class ScoreMatrix:
    """Scores of ``methods`` (rows) on ``examples`` (columns); NaN marks a cell with no score."""

    values: np.ndarray
    methods: tuple[str, ...]
    examples: tuple[str, ...]

    def __post_init__(self) -> None:
        values = np.asarray(self.values, dtype=float)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "methods", tuple(map(str, self.methods)))
        object.__setattr__(self, "examples", tuple(map(str, self.examples)))
        if values.ndim != 2 or values.shape != (len(self.methods), len(self.examples)):
            raise InvalidArgument(
                f"a score matrix must be methods x examples, but got values of shape {values.shape} for "
                f"{len(self.methods)} methods and {len(self.examples)} examples"
            )
        if len(self.methods) < 2:
            raise InvalidArgument(
                f"a score matrix needs at least 2 methods to choose from, got {len(self.methods)}; "
                "give one row of scores per method"
            )
        for what, names in (("method", self.methods), ("example", self.examples)):
            if len(set(names)) < len(names):
                name = next(n for i, n in enumerate(names) if n in names[:i])
                raise InvalidArgument(f"{what} {name!r} appears twice in the score matrix; each must be named once")
        if np.isinf(values).any():
            raise InvalidArgument("a score matrix must hold finite scores (NaN for a missing cell), but it holds inf")
        empty = [m for m, row in zip(self.methods, values) if np.isnan(row).all()]
        if empty:
            raise InvalidArgument(f"method {empty[0]!r} has no score on any example; drop it or give its scores")

    @property
    def shape(self) -> tuple[int, int]:
        return self.values.shape  # type: ignore[return-value]

    @property
    def available(self) -> int:
        """Cells that hold a score: the cost of the full evaluation."""
        return int((~np.isnan(self.values)).sum())

    def means(self) -> np.ndarray:
        """Each method's mean over the examples it has a score on (the full evaluation)."""
        return np.nanmean(self.values, axis=1)


class Observations:
    """What is known mid-evaluation: per (method, example) cell, how many evaluations were
    issued (``taken``: finished, failed or still in flight), how many finished with a value
    (``counts``) and their sum (``sums``).

    ``order`` is the shared order in which examples are evaluated: every method takes its next
    example from it, so methods are compared on the same examples (paired), which halves the
    noise of a comparison between correlated methods. ``passes`` is how often a cell may be
    evaluated; ``budget`` the total number of evaluations allowed (``None``: no limit).
    """

    def __init__(
        self,
        n_methods: int,
        n_examples: int,
        *,
        order: np.ndarray | None = None,
        available: np.ndarray | None = None,
        passes: int = 1,
        budget: int | None = None,
    ) -> None:
        if passes < 1:
            raise InvalidArgument(f"passes must be at least 1 evaluation per cell, got passes={passes}")
        self.shape = (n_methods, n_examples)
        self.order = np.arange(n_examples) if order is None else np.asarray(order, dtype=int)
        ok = np.ones(self.shape, bool) if available is None else np.asarray(available, bool)
        self.capacity = np.where(ok, passes, 0).astype(np.int64)
        self.passes = passes
        self.budget = budget
        self.sums = np.zeros(self.shape)
        self.counts = np.zeros(self.shape, np.int64)
        self.taken = np.zeros(self.shape, np.int64)
        self.failed = np.zeros(self.shape, np.int64)
        self.arm_sums = np.zeros(n_methods)
        self.arm_counts = np.zeros(n_methods, np.int64)
        self.arm_taken = np.zeros(n_methods, np.int64)
        self.arm_failed = np.zeros(n_methods, np.int64)
        self.arm_capacity = self.capacity.sum(axis=1)

    # ---- updates ----------------------------------------------------------------------------
    def issue(self, arm: int, example: int) -> None:
        """An evaluation of the cell was requested (it is in flight until :meth:`settle`)."""
        self.taken[arm, example] += 1
        self.arm_taken[arm] += 1

    def settle(self, arm: int, example: int, value: float | None) -> None:
        """An issued evaluation finished with ``value`` (``None``: it failed, no value)."""
        if value is None or math.isnan(value):
            self.failed[arm, example] += 1
            self.arm_failed[arm] += 1
            return
        self.sums[arm, example] += value
        self.counts[arm, example] += 1
        self.arm_sums[arm] += value
        self.arm_counts[arm] += 1

    def record(self, arm: int, example: int, value: float | None) -> None:
        """Issue and settle at once (offline simulation)."""
        self.issue(arm, example)
        self.settle(arm, example, value)

    # ---- reading ----------------------------------------------------------------------------
    @property
    def used(self) -> int:
        return int(self.arm_taken.sum())

    @property
    def remaining(self) -> int | None:
        return None if self.budget is None else max(0, self.budget - self.used)

    def in_flight(self) -> np.ndarray:
        """Per method, evaluations issued that have not settled."""
        return self.arm_taken - self.arm_counts - self.arm_failed

    def arm_issued(self) -> np.ndarray:
        """Per method, evaluations that finished with a value or are still in flight."""
        return self.arm_taken - self.arm_failed

    def arm_means(self) -> np.ndarray:
        """Per method, the mean of its settled values (NaN for a method with none)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.arm_counts > 0, self.arm_sums / np.maximum(self.arm_counts, 1), np.nan)

    def cell_means(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.counts > 0, self.sums / np.maximum(self.counts, 1), np.nan)

    def open_arms(self) -> np.ndarray:
        """Methods with a cell left to evaluate."""
        return self.arm_taken < self.arm_capacity

    def next_examples(self, arm: int, k: int = 1) -> np.ndarray:
        """The next ``k`` examples of ``arm`` in the shared order: least-evaluated cells first
        (one pass over the examples before a second one)."""
        taken = self.taken[arm, self.order]
        room = self.capacity[arm, self.order] - taken
        candidates = self.order[room > 0]
        if candidates.size <= k:
            return candidates
        level = taken[room > 0]
        return candidates[np.argsort(level, kind="stable")[:k]]


@runtime_checkable
class BestArmAlgorithm(Protocol):
    """Best-arm identification over methods: stateless, decides from :class:`Observations`."""

    name: str
    batch: int  # evaluations proposed per decision (1: fully sequential)

    def propose(self, obs: Observations, k: int) -> list[tuple[int, int]]:
        """Up to ``k`` more (method, example) evaluations, each marked issued in ``obs``. An
        empty list means the algorithm is done, or waits for evaluations in flight."""

    def estimates(self, obs: Observations) -> np.ndarray:
        """Each method's estimated score (its mean over all examples)."""

    def recommend(self, obs: Observations) -> int:
        """The method the algorithm names best now."""


@dataclass(frozen=True)
class RankedMethod:
    name: str
    estimate: float
    evaluations: int


@dataclass(frozen=True)
class SelectionResult:
    """What a best-arm run chose, and what it cost."""

    algorithm: str
    best: str
    ranking: tuple[RankedMethod, ...]
    evaluations: int
    total: int  # evaluations of the full matrix
    stopped_because: str
    checkpoints: dict[int, int] = field(default_factory=dict)  # evaluations used -> best method index

    @property
    def fraction(self) -> float:
        return self.evaluations / self.total if self.total else 0.0

    def to_dict(self) -> dict:
        return {
            "algorithm": self.algorithm,
            "best": self.best,
            "evaluations": self.evaluations,
            "total": self.total,
            "fraction": self.fraction,
            "stopped_because": self.stopped_because,
            # JSON has no NaN: a method with no estimate yet gets null.
            "ranking": [
                {"method": r.name, "estimate": _finite_or_none(r.estimate), "evaluations": r.evaluations}
                for r in self.ranking
            ],
        }


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None


def identified(obs: Observations, best: int, delta: float, *, min_common: int = 10) -> bool:
    """Whether ``best`` beats every other method with confidence about ``1 - delta``.

    Each comparison is paired: the differences of the two methods on the examples both have a
    value on (at least ``min_common``). Their mean must exceed
    ``sqrt(2 * var * log(2 (K - 1) n (n + 1) / delta) / n)``: a normal-approximation bound made
    to hold at every sample size and for every rival at once by a union bound, so checking after
    each evaluation keeps the error rate near ``delta``. It is asymptotic (no finite-sample
    guarantee; a finite-sample empirical-Bernstein bound needs several times more evaluations on
    0/1 scores), and conservative in practice because the union bound is loose.
    """
    if not 0 < delta < 1:
        raise InvalidArgument(f"delta must be between 0 and 1 (the error probability allowed), got delta={delta}")
    cells = obs.cell_means()
    seen = ~np.isnan(cells)
    n_arms = obs.shape[0]
    for other in range(n_arms):
        if other == best:
            continue
        common = seen[best] & seen[other]
        n = int(common.sum())
        if n < max(2, min_common):
            return False
        diff = cells[best, common] - cells[other, common]
        log_term = math.log(2 * (n_arms - 1) * n * (n + 1) / delta)
        if diff.mean() - math.sqrt(2 * diff.var(ddof=1) * log_term / n) <= 0:
            return False
    return True


@runtime_checkable
class SubsetMethod(Protocol):
    """Orders the items of an evaluation set, most worth rating first."""

    name: str

    def order(self, data: ItemSet, k: int, rng: np.random.Generator) -> np.ndarray:
        """Item indexes in selection order; the first ``k`` are the chosen subset. Methods that
        choose a set as a whole (not item by item) may order only the first ``k`` meaningfully."""


def ranking_of(names: Sequence[str], estimates: np.ndarray, evaluations: np.ndarray) -> tuple[RankedMethod, ...]:
    """Methods by estimate, best first (NaN last)."""
    keyed = np.where(np.isnan(estimates), -np.inf, estimates)
    order = np.argsort(-keyed, kind="stable")
    return tuple(RankedMethod(names[i], float(estimates[i]), int(evaluations[i])) for i in order)
