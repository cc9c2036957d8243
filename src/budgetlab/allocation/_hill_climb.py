"""OSCA-style mixed allocation: hill climbing over how many samples each configuration gets.

OSCA (Zhang et al., "Scaling LLM Inference with Optimized Sample Compute Allocation") keeps a
list of k configuration slots, starts from a random list and changes one slot at a time while
the training split's expected pass@k improves. Only the count of each configuration matters,
so this works on the count vector directly, and searches a little harder for the same thing:

1. a greedy start: add the k samples one at a time, each to the configuration that raises the
   training pass@k most (the objective has diminishing returns in every count, so this start
   is usually close to the optimum);
2. steepest ascent: move one sample from one configuration to another while a move improves
   the objective, taking the best move each time (all ``C x (C - 1)`` moves are scored at once
   on the problems x configurations table), and where no single move helps, the best pair of
   moves (which gets over the ridges that stop OSCA's single changes);
3. ``restarts`` more climbs from random allocations (as OSCA starts), keeping the best.

The objective is the mean over training problems of ``1 - prod_j P(a_j samples of j all fail)``
(:mod:`budgetlab.allocation._expected`), from one table of log-failure chances computed once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from budgetlab.allocation._base import Allocation, SuccessCounts
from budgetlab.allocation._expected import log_fail_table
from budgetlab.allocation._single import _check_feasible, _check_k
from budgetlab.errors import InvalidArgument

__all__ = ["HillClimbAllocator", "climb"]

_TOL = 1e-12  # a move must improve the mean pass rate by more than float noise
_SURE = -1e6  # stands for log(0) (a pair certain to succeed): finite, so differences stay finite


def _objective(log_fail_sum: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Mean pass rate over problems (axis 0) for sums of log-failure chances. Moves that are not
    allowed can sum to large positive values (they are masked afterwards): no overflow warning."""
    with np.errstate(over="ignore"):
        return -np.expm1(log_fail_sum).mean(axis=0)


def _prepare(table: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.bool_]]:
    """The table with log(0) made finite, and ``feasible[j, a]``: every problem has at least
    ``a`` recorded samples of configuration ``j`` (NaN in the table marks the others)."""
    feasible = ~np.isnan(table).any(axis=0)
    return np.nan_to_num(table, nan=0.0, neginf=_SURE), feasible


def _gather(table: npt.NDArray[np.float64], vector: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``table[i, j, vector[j]]`` for every problem and configuration."""
    return np.take_along_axis(table, np.broadcast_to(vector[None, :, None], (table.shape[0], table.shape[1], 1)), axis=2)[..., 0]


def _greedy(table: npt.NDArray[np.float64], k: int) -> npt.NDArray[np.int64]:
    table, feasible = _prepare(table)
    top = table.shape[2] - 1
    vector = np.zeros(table.shape[1], dtype=np.int64)
    for _ in range(k):
        current = _gather(table, vector)
        up = np.minimum(vector + 1, top)
        candidate = current.sum(axis=1, keepdims=True) - current + _gather(table, up)  # problems x configs
        scores = np.where((vector < top) & feasible[np.arange(len(vector)), up], _objective(candidate), -np.inf)
        vector[int(np.argmax(scores))] += 1
    return vector


def _move_scores(table: npt.NDArray[np.float64], feasible: npt.NDArray[np.bool_], vector: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """``scores[a, b]``: the objective after moving one sample from configuration a to b
    (-inf for moves that are not allowed)."""
    top = table.shape[2] - 1
    configs = np.arange(table.shape[1])
    current = _gather(table, vector)
    total = current.sum(axis=1)
    down, up = np.maximum(vector - 1, 0), np.minimum(vector + 1, top)
    removed = _gather(table, down) - current
    added = _gather(table, up) - current
    # moved[i, a, b]: problem i's log-failure chance after the move
    moved = total[:, None, None] + removed[:, :, None] + added[:, None, :]
    allowed = ~np.eye(len(configs), dtype=bool) & (vector > 0)[:, None] & ((vector < top) & feasible[configs, up])[None, :]
    return np.where(allowed, _objective(moved), -np.inf)


def climb(table: npt.NDArray[np.float64], start: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.int64], float]:
    """Steepest ascent from ``start`` by one-sample moves between configurations; where no
    single move improves, the best pair of moves is tried before giving up (the objective has
    ridges that single moves cannot climb). Returns the local optimum and its objective.
    ``table`` is :func:`log_fail_table`'s."""
    table, feasible = _prepare(table)
    vector = np.array(start, dtype=np.int64)
    best = float(_objective(_gather(table, vector).sum(axis=1))[()])
    while True:
        scores = _move_scores(table, feasible, vector)
        src, dst = np.unravel_index(int(np.argmax(scores)), scores.shape)
        if scores[src, dst] > best + _TOL:
            vector[src] -= 1
            vector[dst] += 1
            best = float(scores[src, dst])
            continue
        found = None
        for first in zip(*np.nonzero(np.isfinite(scores))):
            trial = vector.copy()
            trial[first[0]] -= 1
            trial[first[1]] += 1
            second = _move_scores(table, feasible, trial)
            pick = np.unravel_index(int(np.argmax(second)), second.shape)
            if second[pick] > best + _TOL and (found is None or second[pick] > found[0]):
                found = (float(second[pick]), first, pick)
        if found is None:
            return vector, best
        best, (a, b), (c, d) = found
        vector[a] -= 1
        vector[b] += 1
        vector[c] -= 1
        vector[d] += 1


@dataclass(frozen=True)
class HillClimbAllocator:
    """See the module docstring. ``estimator`` scores the training split (``"unbiased"``:
    hypergeometric, needs ``k`` <= samples recorded per pair; ``"plugin"``: OSCA's
    ``(1 - c/n)^a``); ``restarts`` random restarts after the greedy start, drawn with ``seed``."""

    estimator: str = "unbiased"
    restarts: int = 4
    seed: int = 0
    name: str = "osca-mix"

    def fit(self, counts: SuccessCounts, k: int) -> Allocation:
        _check_k(k)
        if isinstance(self.restarts, bool) or not isinstance(self.restarts, int) or self.restarts < 0:
            raise InvalidArgument(f"restarts must be a whole number >= 0, got restarts={self.restarts!r}")
        _check_feasible(counts, k, self.estimator)
        table = log_fail_table(counts, k, self.estimator)
        best_vector, best_value = climb(table, _greedy(table, k))
        rng = np.random.default_rng(self.seed)
        for _ in range(self.restarts):
            start = np.bincount(rng.integers(0, len(counts.configs), size=k), minlength=len(counts.configs))
            if np.isnan(_gather(table, start)).any():
                continue  # asks some pair for more samples than it has: not a valid start
            vector, value = climb(table, start)
            if value > best_value + _TOL:
                best_vector, best_value = vector, value
        return Allocation(counts.configs, tuple(int(v) for v in best_vector))
