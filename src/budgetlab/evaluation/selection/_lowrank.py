"""UCB-E with low-rank factorization (UCB-E-LRF), after Zhou et al. 2024: the partially
observed (method x example) matrix is completed by a low-rank model, so a method's score is
estimated from all examples (observed cells as observed, the others predicted from how other
methods did on them), and UCB-E runs on these estimates."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from budgetlab.errors import InvalidArgument
from budgetlab.evaluation._base import Observations
from budgetlab.evaluation.selection._arguments import check_count, check_positive, is_whole
from budgetlab.evaluation.selection._ucbe import ucb_pulls, value_span
from budgetlab.evaluation.selection._uniform import _argmax

__all__ = ["UCBELowRank", "complete_matrix"]


def complete_matrix(
    values: npt.ArrayLike, weights: npt.ArrayLike, *, rank: int = 1, reg: float = 1.0, iters: int = 10
) -> np.ndarray:
    """Predict every cell of ``values`` (NaN where unobserved) with
    ``mu + a_i + b_j + u_i . v_j`` fitted by ridge-regularized alternating least squares on the
    observed cells, each weighted by ``weights`` (e.g. its number of evaluations).

    The row and column effects carry most of the signal (method strength, example
    difficulty); the rank-``rank`` term their interaction. The ridge shrinks an example seen
    by few methods towards the average example, and an interaction towards none.
    """
    # Nested lists are as good as arrays here (they used to fail on ``.shape``).
    values = np.asarray(values, dtype=float)
    if values.ndim != 2 or np.shape(weights) != values.shape:
        raise InvalidArgument(
            f"complete_matrix needs a 2-D matrix of values and weights of the same shape, got "
            f"{values.shape} and {np.shape(weights)}; e.g. complete_matrix(values, np.ones_like(values))"
        )
    m, n = values.shape
    w = np.where(np.isnan(values), 0.0, np.asarray(weights, float))
    x = np.nan_to_num(values)
    total = w.sum()
    if total == 0:
        return np.zeros_like(x)
    mu = float((w * x).sum() / total)
    r0 = x - mu
    a = np.zeros(m)
    b = np.zeros(n)
    u = np.random.default_rng(0).normal(0.0, 0.1, (m, rank))
    v = np.zeros((n, rank))
    eye = reg * np.eye(rank)
    row_w = w.sum(axis=1)
    col_w = w.sum(axis=0)
    for _ in range(iters):
        inter = u @ v.T
        a = (w * (r0 - b - inter)).sum(axis=1) / np.maximum(row_w, 1e-12)
        b = (w * (r0 - a[:, None] - inter)).sum(axis=0) / (col_w + reg)
        if rank:
            resid = w * (r0 - a[:, None] - b)
            v = _ridge_rows(w.T, u, resid.T @ u, eye)
            u = _ridge_rows(w, v, resid @ v, eye)
    return mu + a[:, None] + b + (u @ v.T if rank else 0.0)


def _ridge_rows(w: np.ndarray, fixed: np.ndarray, rhs: np.ndarray, eye: np.ndarray) -> np.ndarray:
    """Row ``j`` solves ``(sum_i w_ji f_i f_i^T + eye) x_j = rhs_j``."""
    r = fixed.shape[1]
    if r == 1:
        return rhs / (w @ (fixed * fixed) + eye[0, 0])
    outer = (fixed[:, :, None] * fixed[:, None, :]).reshape(fixed.shape[0], r * r)
    lhs = (w @ outer).reshape(w.shape[0], r, r) + eye
    return np.linalg.solve(lhs, rhs[..., None])[..., 0]


@dataclass(frozen=True)
class UCBELowRank:
    """UCB-E (index ``estimate + sqrt(a / n)``) on low-rank-completed estimates, refitted every
    ``batch`` evaluations. Differences from the paper's UCB-E-LRF, on purpose: the bonus is
    UCB-E's count-based one rather than an ensemble's spread, examples follow the shared order
    (so methods are compared on common examples) rather than the most uncertain cells, and no
    random warm-up fraction of the matrix is spent (each method's first evaluation is its warm-up).
    """

    a: float = 1.0
    rank: int = 1
    reg: float = 1.0
    iters: int = 10
    batch: int = 8
    name: str = "ucbe-lrf"

    def __post_init__(self) -> None:
        check_positive(self.a, "a", "UCB-E-LRF's exploration parameter", "ucbe-lrf:a=1")
        if not is_whole(self.rank) or self.rank < 0:
            raise InvalidArgument(f"rank must be an integer >= 0 (0: row and column effects only), got rank={self.rank!r}")
        check_positive(self.reg, "reg", "ridge strength", "ucbe-lrf:reg=1")
        check_count(self.iters, "iters", "rounds of the matrix completion", "ucbe-lrf:iters=10")
        check_count(self.batch, "batch", "evaluations per refit", "ucbe-lrf:batch=8")

    def propose(self, obs: Observations, k: int) -> list[tuple[int, int]]:
        return ucb_pulls(obs, self.estimates(obs), self.a, k)

    def estimates(self, obs: Observations) -> np.ndarray:
        cells = obs.cell_means()
        seen = ~np.isnan(cells)
        if not seen.any():
            return np.full(obs.shape[0], np.nan)
        most = max(1, min(obs.shape) - 1)  # more factors than the matrix has rows or columns: nothing to learn, and slow
        if self.rank > most:
            raise InvalidArgument(
                f"rank={self.rank} is too large for {obs.shape[0]} methods x {obs.shape[1]} examples; give rank <= "
                f"{most} (e.g. ucbe-lrf:rank=1, the default)"
            )
        # Fitted on scores brought to [0, 1]: the ridge on the interaction is not scale-free, so
        # scores on 1-10 were fitted with a tenth of the regularization they get on [0, 1].
        low, span = float(np.nanmin(cells)), value_span(obs)
        pred = complete_matrix((cells - low) / span, obs.counts, rank=self.rank, reg=self.reg, iters=self.iters)
        pred = low + span * pred
        pred = np.clip(pred, np.nanmin(cells), np.nanmax(cells))
        filled = np.where(seen, cells, pred)
        available = obs.capacity > 0
        est = (filled * available).sum(axis=1) / np.maximum(available.sum(axis=1), 1)
        return np.where(obs.arm_counts > 0, est, np.nan)

    def recommend(self, obs: Observations) -> int:
        return _argmax(self.estimates(obs))
