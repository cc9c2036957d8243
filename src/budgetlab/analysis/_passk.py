"""Unbiased pass@k (Chen et al. 2021, "Evaluating Large Language Models Trained on Code").

pass@k = 1 - C(n-c, k) / C(n, k): the probability that at least one of k samples,
drawn without replacement from n samples of which c are correct, is correct.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from budgetlab.errors import InvalidArgument

__all__ = ["pass_at_k", "pass_at_k_many"]


def _check(n: int, c: int, k: int) -> None:
    if n < 0 or c < 0:
        raise InvalidArgument(
            f"pass@k needs non-negative counts, got n={n}, c={c}; "
            "pass the number of samples n and of correct samples c"
        )
    if k < 1:
        raise InvalidArgument(f"pass@k needs k >= 1, got k={k}; ask for k of at least 1")
    if c > n:
        raise InvalidArgument(
            f"pass@k needs c <= n, got c={c}, n={n}; c counts the correct samples among the n"
        )
    if k > n:
        raise InvalidArgument(
            f"pass@k needs k <= n samples, got k={k}, n={n}; "
            "draw more samples or ask for a smaller k"
        )


def _log_ratio(
    num: npt.NDArray[np.float64], den: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """log(num / den) for 0 < num <= den, accurate to a few ulps over the whole range.

    log1p(-(den-num)/den) is accurate when the ratio is near 1 and log(num/den) when it
    is near 0; switching at 1/2 keeps the condition number of either branch below 1.5.
    """
    gap = (den - num) / den
    near_one = gap <= 0.5
    out = np.empty_like(gap)
    out[near_one] = np.log1p(-gap[near_one])
    out[~near_one] = np.log(num[~near_one] / den[~near_one])
    return out


def _pass_at_k_unchecked(n: int, c: int, k: int) -> float:
    if c == 0:
        return 0.0
    if n - c < k:
        return 1.0
    # C(n-c,k)/C(n,k) has two exact product forms; take the one with fewer factors:
    #   prod_{i=n-c+1..n} (i-k)/i       (c factors)
    #   prod_{j=0..k-1} (n-j-c)/(n-j)   (k factors)
    if c <= k:
        den = np.arange(n - c + 1, n + 1, dtype=np.float64)
        num = den - k
    else:
        den = np.arange(n - k + 1, n + 1, dtype=np.float64)
        num = den - c
    # Every log term is negative, so fsum (exactly rounded) has no cancellation and
    # -expm1 keeps full relative precision both near 0 and near 1; 1 - prod would not.
    return -math.expm1(math.fsum(_log_ratio(num, den)))


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one problem with ``n`` samples, ``c`` of them correct.

    Stable for any ``n`` that fits in memory (10**6 and beyond): the ratio of binomials
    is accumulated in log space over min(c, k) factors.

    Raises:
        ValueError: if ``k < 1``, ``k > n``, ``c > n`` or a count is negative.
    """
    n, c, k = _whole(n, "n"), _whole(c, "c"), _whole(k, "k")
    _check(n, c, k)
    return _pass_at_k_unchecked(n, c, k)


def _whole(value: object, name: str) -> int:
    """A count as an int: ints and NumPy integers, and whole-number floats as
    :func:`pass_at_k_many` takes them (counts read back from a float column); anything else is
    an :class:`InvalidArgument`, not a TypeError."""
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        pass
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return int(value)
    raise InvalidArgument(f"pass@k needs whole-number counts, got {name}={value!r:.40} ({type(value).__name__})")


def _sorted_ks(ks: object, who: str) -> list[int]:
    """The distinct ks of ``ks`` (an iterable of whole numbers), in increasing order; a single
    number or a non-integer k is an :class:`InvalidArgument` naming ``who``."""
    if isinstance(ks, (int, np.integer, float, str)) or not hasattr(ks, "__iter__"):
        raise InvalidArgument(f"{who} needs ks, a list of k values, got {type(ks).__name__} {ks!r:.40}; e.g. ks=[1, 10, 100]")
    out = set()
    for k in ks:  # type: ignore[attr-defined]
        try:
            out.add(operator.index(k))
        except TypeError:
            raise InvalidArgument(f"{who} needs whole-number ks, got k={k!r:.40} ({type(k).__name__}); e.g. ks=[1, 10, 100]") from None
    return sorted(out)


def _as_counts(values: Sequence[int] | npt.ArrayLike, name: str) -> npt.NDArray[np.int64]:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidArgument(f"{name} must be a 1-D sequence of counts, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        # Counts read back from float columns are accepted only if they are whole numbers.
        whole = np.issubdtype(arr.dtype, np.floating) and bool(
            np.all(np.isfinite(arr) & (arr == np.round(arr)))
        )
        if not whole:
            raise InvalidArgument(f"{name} must hold whole-number counts, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def pass_at_k_many(
    ns: Sequence[int] | npt.ArrayLike, cs: Sequence[int] | npt.ArrayLike, k: int
) -> npt.NDArray[np.float64]:
    """pass@k for each problem: ``ns[i]`` samples of which ``cs[i]`` are correct.

    Every entry must be valid (same rules as :func:`pass_at_k`); the error names the
    first offending problem. Identical ``(n, c)`` pairs are computed once, which is the
    common case of a benchmark sampled with a fixed ``n``.
    """
    k = _whole(k, "k")
    n_arr, c_arr = _as_counts(ns, "ns"), _as_counts(cs, "cs")
    if n_arr.shape != c_arr.shape:
        raise InvalidArgument(f"ns and cs must have the same length, got {n_arr.size} and {c_arr.size}")
    if n_arr.size == 0:
        return np.zeros(0, dtype=np.float64)
    bad = (n_arr < 0) | (c_arr < 0) | (c_arr > n_arr) | (k > n_arr) | (k < 1)
    if bad.any():
        i = int(np.argmax(bad))
        try:
            _check(int(n_arr[i]), int(c_arr[i]), k)
        except ValueError as err:
            raise InvalidArgument(f"problem {i}: {err}") from None
    pairs, inverse = np.unique(np.stack([n_arr, c_arr], axis=1), axis=0, return_inverse=True)
    values = np.array([_pass_at_k_unchecked(int(n), int(c), k) for n, c in pairs])
    return values[inverse.reshape(-1)]
