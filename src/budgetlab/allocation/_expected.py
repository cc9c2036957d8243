"""Expected pass@k of a mixed allocation, from per-(problem, configuration) success counts.

A problem given ``a_j`` samples of each configuration ``j`` is solved unless all of them fail.
Samples of different configurations are independent given the problem, so

    pass@k(problem) = 1 - prod_j P(all a_j samples of configuration j fail).

With ``c_j`` correct among ``n_j`` recorded samples, two estimates of each factor:

* ``"unbiased"``: ``C(n_j - c_j, a_j) / C(n_j, a_j)``, the chance that ``a_j`` samples drawn
  without replacement from the recording all fail; an unbiased estimate of ``(1 - p_j)^{a_j}``
  (Chen et al.'s pass@k estimator, one factor per configuration). It needs ``a_j <= n_j``.
* ``"plugin"``: ``(1 - c_j / n_j)^{a_j}``, drawing with replacement; biased (it overstates
  failure for small ``n_j``), defined for any ``a_j``. OSCA scores its training split this way.

Everything is computed in log space on whole arrays (problems x configurations x counts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import numpy.typing as npt
from scipy.special import gammaln

from budgetlab.allocation._base import Allocation, SuccessCounts
from budgetlab.errors import InvalidArgument

__all__ = ["ESTIMATORS", "log_fail_table", "mix_pass_at_k", "single_pass_at_k"]

ESTIMATORS = ("unbiased", "plugin")


def _check_estimator(estimator: str) -> None:
    if estimator not in ESTIMATORS:
        raise InvalidArgument(f"estimator must be one of {ESTIMATORS}, got estimator={estimator!r}")


def _log_fail(n: npt.NDArray[np.int64], c: npt.NDArray[np.int64], a: npt.NDArray[np.int64], estimator: str) -> npt.NDArray[np.float64]:
    """log P(a samples all fail) for broadcastable arrays; -inf where failure is impossible."""
    n, c, a = np.broadcast_arrays(n, c, a)
    with np.errstate(divide="ignore", invalid="ignore"):
        if estimator == "plugin":
            rate = np.divide(c, n, out=np.zeros(n.shape), where=n > 0)
            out = np.where(a == 0, 0.0, a * np.log1p(-rate))
        else:
            wrong = n - c
            possible = a <= wrong
            out = np.where(
                possible,
                gammaln(wrong + 1) - gammaln(np.where(possible, wrong - a, 0) + 1) - gammaln(n + 1) + gammaln(n - a + 1),
                -np.inf,
            )
            out = np.where(a == 0, 0.0, out)
    return out


def log_fail_table(counts: SuccessCounts, k_max: int, estimator: str = "unbiased") -> npt.NDArray[np.float64]:
    """``table[i, j, a]`` = log P(``a`` samples of configuration ``j`` all fail on problem ``i``)
    for ``a = 0..k_max``. Under ``"unbiased"``, counts beyond a pair's recording are marked
    impossible with NaN (an allocation must not ask for more samples than were recorded)."""
    _check_estimator(estimator)
    a = np.arange(k_max + 1)[None, None, :]
    table = _log_fail(counts.samples[..., None], counts.correct[..., None], a, estimator)
    if estimator == "unbiased":
        table = np.where(a > counts.samples[..., None], np.nan, table)
    return table


def _as_vector(counts: SuccessCounts, allocation: Allocation | Sequence[int] | Mapping[str, int]) -> npt.NDArray[np.int64]:
    if isinstance(allocation, Allocation):
        allocation = allocation.as_dict() if allocation.configs != counts.configs else list(allocation.counts)
    if isinstance(allocation, Mapping):
        unknown = set(allocation) - set(counts.configs)
        if unknown:
            raise InvalidArgument(f"the allocation names configurations the counts do not have: {sorted(unknown)}")
        vector = [allocation.get(c, 0) for c in counts.configs]
    else:
        vector = list(allocation)
    whole = [v for v in vector if isinstance(v, bool) or not isinstance(v, (int, np.integer))]
    if whole:
        raise InvalidArgument(f"an allocation needs whole sample counts, got {whole[0]!r} in {list(vector)}")
    vector = [int(v) for v in vector]
    if len(vector) != len(counts.configs) or any(v < 0 for v in vector):
        raise InvalidArgument(f"an allocation needs one count >= 0 per configuration ({len(counts.configs)}), got {vector}")
    return np.array(vector, dtype=np.int64)


def mix_pass_at_k(
    counts: SuccessCounts,
    allocation: Allocation | Sequence[int] | Mapping[str, int],
    *,
    estimator: str = "unbiased",
    per_problem: bool = False,
) -> float | npt.NDArray[np.float64]:
    """Expected pass@k of giving every problem ``allocation`` (samples per configuration, as
    an :class:`Allocation`, a vector in ``counts.configs`` order or a name -> count mapping):
    the mean over problems, or each problem's with ``per_problem``."""
    _check_estimator(estimator)
    if not len(counts.problems):
        raise InvalidArgument("mix_pass_at_k needs counts of at least one problem, got none")
    vector = _as_vector(counts, allocation)
    if estimator == "unbiased":
        short = vector[None, :] > counts.samples
        if short.any():
            i, j = map(int, np.argwhere(short)[0])
            raise InvalidArgument(f"the unbiased estimate needs at most the recorded samples per pair: the allocation gives "
                             f"{vector[j]} samples of {counts.configs[j]!r} but problem {counts.problems[i]!r} has "
                             f"{counts.samples[i, j]}; use estimator='plugin' or a smaller allocation")  # fmt: skip
    log_fail = _log_fail(counts.samples, counts.correct, vector[None, :], estimator).sum(axis=1)
    solved = -np.expm1(log_fail)
    return solved if per_problem else float(solved.mean())


def single_pass_at_k(counts: SuccessCounts, config: str | int, ks: Sequence[int], *, estimator: str = "unbiased") -> npt.NDArray[np.float64]:
    """Expected pass@k (mean over problems) of one configuration alone, for each k in ``ks``."""
    _check_estimator(estimator)
    if isinstance(config, str) and config not in counts.configs:
        raise InvalidArgument(f"no configuration {config!r} in the counts (they have {', '.join(counts.configs)})")
    j = counts.configs.index(config) if isinstance(config, str) else int(config)
    k_arr = np.asarray(list(ks), dtype=np.int64)
    log_fail = _log_fail(counts.samples[:, j : j + 1], counts.correct[:, j : j + 1], k_arr[None, :], estimator)
    if estimator == "unbiased" and (k_arr[None, :] > counts.samples[:, j : j + 1]).any():
        raise InvalidArgument(f"some k exceeds the samples recorded for {counts.configs[j]!r}; ask for k <= {int(counts.samples[:, j].min())}")
    return -np.expm1(log_fail).mean(axis=0)
