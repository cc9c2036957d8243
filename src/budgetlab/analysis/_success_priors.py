"""Distributions of per-problem success probability, fitted to success counts.

Every problem i has an unknown probability p_i that one sample solves it; with n_i samples of
which c_i are correct, c_i ~ Binomial(n_i, p_i). A *success prior* is the distribution of p over
the problems of a benchmark. Fitted by maximum likelihood to the counts (each problem's
likelihood integrates over p: beta-binomial for a Beta), it gives pass@k for any k, also far
beyond the n samples drawn, as 1 - E[(1-p)^k]; and, for the problems at hand, the posterior
1 - E[(1-p)^k | n_i, c_i], which knows that a problem already solved stays solved.

The catch, and why there are several families: n samples only see p down to about 1/n. The
share of problems with c = 0 fixes how much mass lies below that, not *where*: exactly at 0
(never solvable, e.g. a broken test) or at 0.003 (solved once in 300 tries). A Beta's density
continues its power law down to 0 and so tends to overestimate large-k coverage; a point mass at
0 plus a Beta puts all that unseen mass at 0 and tends to underestimate it. ``tail_transfer``
takes the shape of the low tail from a reference set of problems sampled much more (see
:func:`fit_tail_transfer`).

All fits work on the distinct (n, c) pairs with their multiplicities, so a benchmark sampled
with a fixed n costs n + 1 likelihood rows whatever its number of problems.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from budgetlab.errors import InvalidArgument

__all__ = ["SuccessCounts", "SuccessPrior"]

FloatArray = npt.NDArray[np.float64]

_TINY = 1e-300


@dataclass(frozen=True)
class SuccessCounts:
    """Distinct (n, c) pairs of a set of problems and how many problems have each."""

    n: npt.NDArray[np.int64]
    c: npt.NDArray[np.int64]
    weight: FloatArray

    @classmethod
    def from_counts(cls, ns: npt.ArrayLike, cs: npt.ArrayLike) -> SuccessCounts:
        n_arr, c_arr = np.asarray(ns, dtype=np.int64), np.asarray(cs, dtype=np.int64)
        if n_arr.shape != c_arr.shape or n_arr.ndim != 1 or n_arr.size == 0:
            raise InvalidArgument(
                f"success counts need two 1-D arrays of the same non-zero length, got shapes {n_arr.shape} and {c_arr.shape}"
            )
        if (n_arr < 1).any() or (c_arr < 0).any() or (c_arr > n_arr).any():
            i = int(np.argmax((n_arr < 1) | (c_arr < 0) | (c_arr > n_arr)))
            raise InvalidArgument(f"problem {i}: need n >= 1 and 0 <= c <= n, got n={n_arr[i]}, c={c_arr[i]}")
        pairs, counts = np.unique(np.stack([n_arr, c_arr], axis=1), axis=0, return_counts=True)
        return cls(pairs[:, 0], pairs[:, 1], counts.astype(np.float64))

    @property
    def problems(self) -> int:
        return round(self.weight.sum())

    def resample(self, rng: np.random.Generator) -> SuccessCounts:
        """A bootstrap copy: problems drawn with replacement, as multinomial multiplicities."""
        total = self.problems
        draw = rng.multinomial(total, self.weight / self.weight.sum()).astype(np.float64)
        keep = draw > 0
        return SuccessCounts(self.n[keep], self.c[keep], draw[keep])


def _log_binom(n: npt.NDArray[np.int64], c: npt.NDArray[np.int64]) -> FloatArray:
    return special.gammaln(n + 1) - special.gammaln(c + 1) - special.gammaln(n - c + 1)


@dataclass(frozen=True)
class SuccessPrior:
    """p is 0 with probability ``zero``; otherwise it follows a mixture of Betas (``betas``:
    (weight, a, b)) and point masses (``atoms``: (weight, p)). Weights add up to 1."""

    zero: float = 0.0
    betas: tuple[tuple[float, float, float], ...] = ()
    atoms_p: FloatArray = field(default_factory=lambda: np.zeros(0))
    atoms_w: FloatArray = field(default_factory=lambda: np.zeros(0))

    def _log_joint(self, n: npt.NDArray[np.int64], c: npt.NDArray[np.int64]) -> FloatArray:
        """log(weight x likelihood of (n, c)) per component: rows x (zero, betas..., atoms...)."""
        lb = _log_binom(n, c)
        cols = [np.where(c == 0, np.log(max(self.zero, _TINY)), -np.inf)]
        for w, a, b in self.betas:
            cols.append(np.log(max(w, _TINY)) + lb + special.betaln(c + a, n - c + b) - special.betaln(a, b))
        out = np.column_stack(cols)
        if self.atoms_p.size:
            with np.errstate(divide="ignore"):
                logp, logq = np.log(self.atoms_p), np.log1p(-self.atoms_p)
            ll = lb[:, None] + _xlogy(c[:, None], logp[None]) + _xlogy((n - c)[:, None], logq[None])
            out = np.hstack([out, np.log(np.maximum(self.atoms_w, _TINY))[None] + ll])
        return out

    def log_likelihood(self, counts: SuccessCounts) -> float:
        return float((counts.weight * special.logsumexp(self._log_joint(counts.n, counts.c), axis=1)).sum())

    def _miss(self, n: npt.NDArray[np.int64], c: npt.NDArray[np.int64], k: int) -> FloatArray:
        """E[(1-p)^k | component, n, c] per row and component, in the order of _log_joint."""
        cols = [np.where(c == 0, 1.0, 0.0)]
        for _, a, b in self.betas:
            cols.append(np.exp(special.betaln(c + a, n - c + b + k) - special.betaln(c + a, n - c + b)))
        out = np.column_stack(cols)
        if self.atoms_p.size:
            out = np.hstack([out, np.broadcast_to((1.0 - self.atoms_p)[None] ** k, (n.size, self.atoms_p.size))])
        return out

    def posterior_pass_at_k(self, counts: SuccessCounts, k: int) -> float:
        """Mean over the counted problems of P(one of k fresh samples is correct | its counts)."""
        lj = self._log_joint(counts.n, counts.c)
        resp = np.exp(lj - special.logsumexp(lj, axis=1, keepdims=True))
        miss = (resp * self._miss(counts.n, counts.c, k)).sum(axis=1)
        return float((counts.weight * (1.0 - miss)).sum() / counts.weight.sum())

    def pass_at_k(self, k: int) -> float:
        """pass@k of a new problem drawn from the prior: 1 - E[(1-p)^k]."""
        miss = self.zero + sum(w * np.exp(special.betaln(a, b + k) - special.betaln(a, b)) for w, a, b in self.betas)
        if self.atoms_p.size:
            miss += float((self.atoms_w * (1.0 - self.atoms_p) ** k).sum())
        return float(1.0 - miss)

    def describe(self) -> dict[str, float]:
        out: dict[str, float] = {"zero": self.zero}
        for i, (w, a, b) in enumerate(self.betas):
            out.update({f"w{i}": w, f"a{i}": a, f"b{i}": b})
        if self.atoms_p.size:
            out["atoms"] = float(self.atoms_p.size)
            out["mass_below_0.01"] = float(self.atoms_w[self.atoms_p < 0.01].sum())
        return out


def _xlogy(x: npt.ArrayLike, logy: npt.ArrayLike) -> FloatArray:
    """x * log(y) with 0 * log(0) = 0."""
    x_arr, logy_arr = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(logy, dtype=np.float64))
    out = np.zeros(x_arr.shape)
    np.multiply(x_arr, logy_arr, out=out, where=x_arr > 0)
    return out


# ---- parametric fits ----------------------------------------------------------------------------


def _softmax_weights(logits: FloatArray) -> FloatArray:
    full = np.concatenate([[0.0], logits])
    return np.exp(full - special.logsumexp(full))


def _unpack(x: FloatArray, betas: int, zero: bool) -> SuccessPrior:
    ab = np.exp(np.clip(x[: 2 * betas], -7.0, 7.0)).reshape(betas, 2)
    w = _softmax_weights(x[2 * betas :])
    return SuccessPrior(
        zero=float(w[betas]) if zero else 0.0,
        betas=tuple((float(w[j]), float(ab[j, 0]), float(ab[j, 1])) for j in range(betas)),
    )


def _starts(betas: int, zero: bool, counts: SuccessCounts) -> list[FloatArray]:
    share_zero = float(counts.weight[counts.c == 0].sum() / counts.weight.sum())
    zero_logit = [np.log(max(share_zero, 0.02) / max(1 - share_zero, 0.02))] if zero else []
    if betas == 1:
        seeds = [[0.0, 0.0], [-1.0, 0.5], [0.5, 1.5]]
        return [np.array(s + zero_logit) for s in seeds]
    seeds = [[-1.0, 1.0, 1.0, -1.0, 0.0], [-0.5, 2.0, 0.5, 0.0, -0.5], [-2.0, 0.0, 1.0, 1.0, 0.5]]
    return [np.array(s + zero_logit) for s in seeds]


def fit_parametric(
    counts: SuccessCounts, betas: int, zero: bool, start: SuccessPrior | None = None
) -> SuccessPrior:
    """Maximum likelihood over ``betas`` Beta components, plus a point mass at 0 if ``zero``.
    ``start`` (a previous fit of the same family) replaces the built-in starting points, which
    makes bootstrap refits cheap."""

    n, c, weight = counts.n, counts.c, counts.weight
    lb = _log_binom(n, c)
    log_zero_row = np.where(c == 0, 0.0, -np.inf)

    def nll(x: FloatArray) -> float:
        # The same likelihood as SuccessPrior.log_likelihood, inlined: it runs thousands of times.
        ab = np.exp(x[: 2 * betas]).reshape(betas, 2)
        full = np.concatenate([[0.0], x[2 * betas :]])
        logw = full - special.logsumexp(full)
        cols = [logw[j] + lb + special.betaln(c + ab[j, 0], n - c + ab[j, 1]) - special.betaln(ab[j, 0], ab[j, 1])
                for j in range(betas)]
        if zero:
            cols.append(logw[betas] + log_zero_row)
        value = -float((weight * special.logsumexp(np.column_stack(cols), axis=1)).sum())
        return value if np.isfinite(value) else 1e300

    starts = _starts(betas, zero, counts) if start is None else [_pack(start, betas, zero)]
    best = None
    for x0 in starts:
        result = optimize.minimize(nll, x0, method="L-BFGS-B", bounds=_bounds(x0.size, betas))
        if best is None or result.fun < best.fun:
            best = result
    assert best is not None
    return _unpack(best.x, betas, zero)


def _bounds(size: int, betas: int) -> list[tuple[float, float]]:
    return [(-7.0, 7.0)] * (2 * betas) + [(-12.0, 12.0)] * (size - 2 * betas)


def _pack(prior: SuccessPrior, betas: int, zero: bool) -> FloatArray:
    ab = [np.log(v) for _, a, b in prior.betas for v in (a, b)]
    weights = [w for w, _, _ in prior.betas] + ([prior.zero] if zero else [])
    logw = np.log(np.maximum(weights, 1e-6))
    return np.clip(np.array(ab + list(logw[1:] - logw[0])), -7.0, 7.0)


# ---- nonparametric fits -------------------------------------------------------------------------

# The support of a nonparametric prior: 0, 1, and points evenly spaced in logit(p) from about
# 1e-5 to 1 - 1e-5 (dense where the counts of a few hundred samples can still tell them apart).
GRID = np.concatenate([[0.0], special.expit(np.linspace(-11.5, 11.5, 231)), [1.0]])


def _grid_likelihood(counts: SuccessCounts, grid: FloatArray) -> FloatArray:
    with np.errstate(divide="ignore"):
        logp, logq = np.log(grid), np.log1p(-grid)
    ll = _log_binom(counts.n, counts.c)[:, None] + _xlogy(counts.c[:, None], logp[None]) + _xlogy(
        (counts.n - counts.c)[:, None], logq[None]
    )
    return np.exp(ll)


def _em(lik: FloatArray, weight: FloatArray, start: FloatArray, iters: int) -> FloatArray:
    """EM for the mixing weights of a fixed dictionary of components (the NPMLE when the
    dictionary is a grid): each step cannot lower the likelihood."""
    mix = start.copy()
    share = weight / weight.sum()
    for _ in range(iters):
        fitted = np.maximum(lik @ mix, _TINY)
        mix = mix * ((lik / fitted[:, None]) * share[:, None]).sum(axis=0)
    return mix


def fit_npmle(counts: SuccessCounts, iters: int = 2000, start: SuccessPrior | None = None) -> SuccessPrior:
    """The nonparametric maximum-likelihood prior on :data:`GRID` (EM from a uniform start).

    Where the counts cannot tell points apart (below about 1/n), EM keeps the proportions of its
    starting weights, so the NPMLE alone does not settle the unseen tail either."""
    lik = _grid_likelihood(counts, GRID)
    init = np.full(GRID.size, 1.0 / GRID.size) if start is None else _grid_weights(start)
    w = _em(lik, counts.weight, init, iters)
    return SuccessPrior(atoms_p=GRID, atoms_w=w)


def _grid_weights(prior: SuccessPrior) -> FloatArray:
    w = np.asarray(prior.atoms_w, dtype=np.float64)
    return (w + 1e-12) / (w + 1e-12).sum()


def fit_tail_transfer(
    counts: SuccessCounts,
    reference: SuccessCounts,
    tail: float = 0.05,
    iters: int = 1500,
    reference_prior: SuccessPrior | None = None,
) -> SuccessPrior:
    """A grid prior whose shape below ``tail`` comes from ``reference``, its mass from ``counts``.

    ``reference`` is another set of problems of the same kind (e.g. a training split) sampled
    with many more samples per problem, where the low tail is visible. Its NPMLE gives the
    conditional distribution of p given p <= ``tail``, point mass at 0 included; on the target
    problems that shape is one component whose total weight, and the free weights of the grid
    above ``tail``, are fitted by EM. So the target's own counts decide how many problems are
    hard, and the reference decides how hard.
    """
    ref = reference_prior or fit_npmle(reference, iters=3000)
    low = GRID <= tail
    template = np.where(low, ref.atoms_w, 0.0)
    if template.sum() <= 0:
        template = np.where(GRID == 0.0, 1.0, 0.0)
    template = template / template.sum()
    lik = _grid_likelihood(counts, GRID)
    columns = np.column_stack([lik @ template, lik[:, ~low]])
    mix = _em(columns, counts.weight, np.full(columns.shape[1], 1.0 / columns.shape[1]), iters)
    w = mix[0] * template
    w[~low] += mix[1:]
    return SuccessPrior(atoms_p=GRID, atoms_w=w)
