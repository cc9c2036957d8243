"""Benchmark-level curves: mean pass@k / maj@k over problems, with bootstrap intervals."""

from __future__ import annotations

import operator
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from budgetlab.analysis._majority import maj_at_k
from budgetlab.analysis._passk import _as_counts, _sorted_ks, pass_at_k_many
from budgetlab.errors import InvalidArgument

__all__ = [
    "Estimate",
    "bootstrap_ci",
    "coverage_curve",
    "default_ks",
    "maj_at_k_with_ci",
    "pass_at_k_with_ci",
]

# Bounds the (boots x problems) index matrix drawn at once to ~32 MB of int64.
_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class Estimate:
    """A benchmark-level metric at one ``k``: mean over problems and a bootstrap interval."""

    value: float
    lo: float
    hi: float
    k: int
    n_problems: int

    def to_dict(self) -> dict[str, float | int]:
        return asdict(self)


def default_ks(max_n: int) -> list[int]:
    """1, 2, 4, ... up to ``max_n``, plus ``max_n`` itself (the largest k a run supports)."""
    max_n = operator.index(max_n)
    if max_n < 1:
        raise InvalidArgument(
            f"default_ks needs max_n >= 1, got max_n={max_n}; pass the samples per problem"
        )
    ks = [1 << e for e in range(max_n.bit_length()) if 1 << e <= max_n]
    return ks if ks[-1] == max_n else [*ks, max_n]


def coverage_curve(
    ns: Sequence[int] | npt.ArrayLike, cs: Sequence[int] | npt.ArrayLike, ks: Iterable[int]
) -> dict[int, float]:
    """Mean pass@k over problems for each requested k, keyed by k in increasing order.

    Only ks <= min(ns) are reported; larger ks are skipped rather than raising, because a
    curve over a default grid should survive a benchmark where a few problems got fewer
    samples. The curve then stops where every problem can still support the estimate, so
    each point averages over the same problems.
    """
    n_arr = _as_counts(ns, "ns")
    if n_arr.size == 0:
        raise InvalidArgument("coverage_curve needs at least one problem, got none")
    ks = _sorted_ks(ks, "coverage_curve")
    if ks and ks[0] < 1:
        raise InvalidArgument(f"coverage_curve needs every k >= 1, got k={ks[0]}")
    limit = int(n_arr.min())
    return {k: float(pass_at_k_many(n_arr, cs, k).mean()) for k in ks if k <= limit}


def bootstrap_ci(
    per_problem_values: npt.ArrayLike, n_boot: int = 1000, alpha: float = 0.05, seed: int = 0
) -> tuple[float, float, float]:
    """(mean, lo, hi): the mean over problems and its percentile-bootstrap interval.

    Problems are the resampling unit, since they, not samples, are the independent draws
    of a benchmark. Deterministic for a given ``seed``.
    """
    values = np.asarray(per_problem_values, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise InvalidArgument(f"bootstrap_ci needs a non-empty 1-D array, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise InvalidArgument("bootstrap_ci needs finite values; drop or fix the nan/inf entries first")
    if n_boot < 1 or not 0.0 < alpha < 1.0:
        raise InvalidArgument(
            f"bootstrap_ci needs n_boot >= 1 and 0 < alpha < 1, got {n_boot=}, {alpha=}"
        )
    size = values.size
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot, dtype=np.float64)
    step = max(1, _CHUNK_CELLS // size)
    for start in range(0, n_boot, step):
        stop = min(start + step, n_boot)
        means[start:stop] = values[rng.integers(0, size, size=(stop - start, size))].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return float(values.mean()), float(lo), float(hi)


def _estimate(
    values: npt.NDArray[np.float64], k: int, n_boot: int, alpha: float, seed: int
) -> Estimate:
    value, lo, hi = bootstrap_ci(values, n_boot=n_boot, alpha=alpha, seed=seed)
    return Estimate(value=value, lo=lo, hi=hi, k=k, n_problems=int(values.size))


def pass_at_k_with_ci(
    ns: Sequence[int] | npt.ArrayLike,
    cs: Sequence[int] | npt.ArrayLike,
    k: int,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Estimate:
    """Mean pass@k over problems with a bootstrap interval; every problem needs k <= n."""
    return _estimate(pass_at_k_many(ns, cs, k), operator.index(k), n_boot, alpha, seed)


def maj_at_k_with_ci(
    problems: Sequence[tuple[Sequence[Hashable | None], Sequence[bool | None]]],
    k: int,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> Estimate:
    """Mean maj@k over problems given as ``(answers, correct)`` pairs, with a bootstrap interval."""
    values = np.empty(len(problems), dtype=np.float64)
    for i, (answers, correct) in enumerate(problems):
        try:
            values[i] = maj_at_k(answers, correct, k)
        except ValueError as err:
            raise InvalidArgument(f"problem {i}: {err}") from None
    return _estimate(values, operator.index(k), n_boot, alpha, seed)
