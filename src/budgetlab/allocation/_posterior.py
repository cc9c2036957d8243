"""Posteriors over each problem's chance of success under each configuration, for planning.

A planner needs, for an unsolved problem that has failed ``f_j`` times under each
configuration ``j``, the chance that one more sample of configuration ``j`` is its first
success. Both priors here give it through two log-probabilities per problem:

* ``log_none``: log P(the recorded failures), the problem's marginal likelihood;
* ``log_first[:, j]``: log P(the recorded failures, then a success under ``j``);

so that P(next sample of j succeeds | failures) = exp(log_first[:, j] - log_none). Samples still
in flight enter as failures in ``log_first`` only: the gain of one more sample is then the chance
that every sample in flight fails and the new one succeeds, which is what it adds to coverage.

Two priors:

* :class:`AtomPrior`, learned offline: a mixture of "problem types", each a vector of success
  chances, one per configuration (by default every problem of a training split is a type, with
  its success rates smoothed). It keeps what per-configuration priors lose: the same problem is
  often hard for every configuration, or easy for one model only, so failures under one
  configuration say something about the others.
* :class:`OnlineBetaPrior`, fitted by empirical Bayes on the run's own samples: an independent
  Beta prior per configuration, plus a share ``hopeless`` of problems no configuration solves
  (which ties the configurations together, so repeated failures anywhere make a problem look
  hopeless everywhere). Fitted by maximum likelihood (EM over the hopeless share, a fixed grid
  for each Beta), with a weak prior on each Beta's concentration. Because which samples were
  drawn depends only on samples already seen, the likelihood of the drawn samples is the same
  as for a fixed design: fitting on adaptively drawn samples needs no correction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import betaln, logsumexp

from budgetlab.allocation._base import SuccessCounts
from budgetlab.errors import InvalidArgument

__all__ = ["AtomPrior", "OnlineBetaPrior", "fit_online_prior", "fit_planner_prior", "mix_terms"]

Terms = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]
_P_FLOOR = 1e-6  # atoms never say "impossible" or "certain": one surprise must not break the posterior


@dataclass(frozen=True, eq=False)
class AtomPrior:
    """A mixture of problem types: ``atoms[a, j]`` is type ``a``'s success chance under
    configuration ``configs[j]``, ``weights[a]`` its share of problems."""

    configs: tuple[str, ...]
    atoms: npt.NDArray[np.float64]
    weights: npt.NDArray[np.float64]

    def __post_init__(self) -> None:
        atoms = np.clip(np.asarray(self.atoms, dtype=np.float64), _P_FLOOR, 1 - _P_FLOOR)
        weights = np.asarray(self.weights, dtype=np.float64)
        object.__setattr__(self, "configs", tuple(self.configs))
        object.__setattr__(self, "atoms", atoms)
        object.__setattr__(self, "weights", weights / weights.sum())

    @classmethod
    def from_counts(cls, counts: SuccessCounts, smoothing: float = 0.5) -> AtomPrior:
        """One type per training problem, with rates ``(c + smoothing) / (n + 2 smoothing)``."""
        if smoothing <= 0:
            raise InvalidArgument(f"smoothing must be > 0, got smoothing={smoothing}")
        atoms = (counts.correct + smoothing) / (counts.samples + 2 * smoothing)
        return cls(counts.configs, atoms, np.ones(len(counts.problems)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AtomPrior:
        """From ``{"configs": [...], "atoms": [[...], ...], "weights": [...]}`` (weights optional);
        raises ValueError saying what is wrong."""
        if not isinstance(data, Mapping) or "configs" not in data or "atoms" not in data:
            raise InvalidArgument('a prior must be a mapping {"configs": [names], "atoms": [[chance per config], ...], "weights": [...]}')
        configs = [str(c) for c in data["configs"]]
        try:
            atoms = np.array(data["atoms"], dtype=np.float64)
            weights = np.array(data.get("weights") or [1.0] * len(atoms), dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidArgument("prior atoms and weights must be numbers") from None
        if atoms.ndim != 2 or atoms.shape[1] != len(configs) or not len(atoms):
            raise InvalidArgument(f"prior atoms must be a non-empty list of lists of {len(configs)} chances (one per config), got shape {atoms.shape}")
        if len(set(configs)) != len(configs):
            raise InvalidArgument(f"prior configs must be distinct, got {configs}")
        if not np.isfinite(atoms).all() or (atoms < 0).any() or (atoms > 1).any():
            raise InvalidArgument("prior atoms must be chances between 0 and 1")
        if weights.shape != (len(atoms),) or not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
            raise InvalidArgument(f"prior weights must be {len(atoms)} numbers >= 0, not all 0")
        return cls(tuple(configs), atoms, weights)

    def to_dict(self, digits: int = 6) -> dict[str, Any]:
        return {
            "configs": list(self.configs),
            "atoms": [[round(float(v), digits) for v in row] for row in self.atoms],
            "weights": [round(float(w), digits) for w in self.weights],
        }

    def reorder(self, configs: Sequence[str]) -> AtomPrior:
        """The prior with its columns in the order of ``configs`` (KeyError names any missing)."""
        index = {c: j for j, c in enumerate(self.configs)}
        missing = [c for c in configs if c not in index]
        if missing:
            raise KeyError(missing)
        return AtomPrior(tuple(configs), self.atoms[:, [index[c] for c in configs]], self.weights)

    def log_terms(self, failures: npt.NDArray[np.float64], pending: npt.NDArray[np.float64] | None = None) -> Terms:
        """``(log_none, log_first)`` for problems with ``failures`` (problems x configs), and
        ``pending`` samples in flight counted as failures in ``log_first`` only."""
        log_w = np.log(self.weights)[None, :]
        none = log_w + failures @ np.log1p(-self.atoms).T  # problems x types
        after = none if pending is None else none + pending @ np.log1p(-self.atoms).T
        shift = after.max(axis=1, keepdims=True)
        first = np.log(np.exp(after - shift) @ self.atoms) + shift
        return logsumexp(none, axis=1), first


# Grid of each configuration's Beta prior: mean and concentration (alpha + beta).
_MEANS = 1 / (1 + np.exp(-np.linspace(-6.0, 4.0, 26)))
_CONCENTRATIONS = np.exp(np.linspace(np.log(0.05), np.log(200.0), 20))
_LOG_CONCENTRATION_SD = 2.0  # weak log-normal prior around 1: only settles what little data leaves open
_EM_STEPS = 8


@dataclass(frozen=True)
class OnlineBetaPrior:
    """Independent ``Beta(alpha[j], beta[j])`` per configuration, except that a share
    ``hopeless`` of problems never succeed under any configuration."""

    alpha: tuple[float, ...]
    beta: tuple[float, ...]
    hopeless: float

    def log_terms(self, failures: npt.NDArray[np.float64], pending: npt.NDArray[np.float64] | None = None) -> Terms:
        a = np.asarray(self.alpha)[None, :]
        b = np.asarray(self.beta)[None, :]
        solvable = np.log1p(-self.hopeless) + (betaln(a, b + failures) - betaln(a, b)).sum(axis=1)
        none = np.logaddexp(np.log(self.hopeless), solvable) if self.hopeless > 0 else solvable
        seen = failures if pending is None else failures + pending
        first = np.log1p(-self.hopeless) + (betaln(a, b + seen) - betaln(a, b)).sum(axis=1, keepdims=True)
        first = first + np.log(a / (a + b + seen))  # a hopeless problem never gives a first success
        return none, first


_POOLED_PAIRS = 2.0  # a configuration's fit counts the pooled fit as this many pairs of its own


def _grid_loglik(successes: npt.NDArray[np.float64], failures: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``out[g, j]``: configuration ``j``'s weighted beta-binomial log-likelihood at grid point
    ``g``, over the pairs (problems x configs arrays) with samples; ``weights`` per problem."""
    drawn = (successes + failures) > 0
    mass = np.broadcast_to(weights[:, None], successes.shape) * drawn
    keep = mass > 0
    out = np.zeros((_GRID_A.shape[0], successes.shape[1]))
    if not keep.any():
        return out
    s = successes[keep].astype(np.int64)
    f = failures[keep].astype(np.int64)
    config = np.nonzero(keep)[1]
    width = int((s + f).max()) + 1
    unique, inverse = np.unique(s * width + f, return_inverse=True)
    by_config = np.zeros((len(unique), successes.shape[1]))
    np.add.at(by_config, (inverse.ravel(), config), mass[keep])
    us, uf = unique // width, unique % width
    rising_a, rising_b, rising_ab = _rising_logs(int((us + uf).max()))
    # log B(a+s, b+f) - log B(a, b) = sum_{t<s} log(a+t) + sum_{t<f} log(b+t) - sum_{t<s+f} log(a+b+t)
    return (rising_a[:, us] + rising_b[:, uf] - rising_ab[:, us + uf]) @ by_config


def _rising_logs(n: int) -> tuple[npt.NDArray[np.float64], ...]:
    """``table[g, m] = sum_{t<m} log(x_g + t)`` for x = each grid point's a, b and a + b,
    for m up to at least ``n`` (computed once and grown as needed)."""
    global _RISING
    if _RISING[0].shape[1] <= n:
        size = max(n + 1, 2 * _RISING[0].shape[1])
        steps = np.arange(size - 1)[None, :]
        _RISING = tuple(np.concatenate([np.zeros((len(x), 1)), np.cumsum(np.log(x + steps), axis=1)], axis=1)
                        for x in (_GRID_A, _GRID_B, _GRID_A + _GRID_B))  # fmt: skip
    return _RISING


_GRID_A = (_MEANS[:, None] * _CONCENTRATIONS[None, :]).ravel()[:, None]
_GRID_B = ((1 - _MEANS[:, None]) * _CONCENTRATIONS[None, :]).ravel()[:, None]
_RISING: tuple[npt.NDArray[np.float64], ...] = (np.zeros((_GRID_A.shape[0], 1)),) * 3
_LOG_HYPERPRIOR = -0.5 * (np.log(_GRID_A + _GRID_B)[:, 0] / _LOG_CONCENTRATION_SD) ** 2


def _fit_betas(successes: npt.NDArray[np.float64], failures: npt.NDArray[np.float64], weights: npt.NDArray[np.float64]) -> list[tuple[float, float]]:
    """Each configuration's (alpha, beta) on the grid, by penalised maximum likelihood: its own
    pairs, plus the Beta fitted to every configuration's pairs pooled, counted as a couple of
    pairs. A configuration with few samples (or none yet) thus starts from what the others show."""
    loglik = _grid_loglik(successes, failures, weights)
    pairs = float((weights[:, None] * ((successes + failures) > 0)).sum())
    pooled_per_pair = loglik.sum(axis=1) / max(pairs, 1.0)
    score = loglik + (_POOLED_PAIRS * pooled_per_pair + _LOG_HYPERPRIOR)[:, None]
    best = np.argmax(score, axis=0)
    return [(float(_GRID_A[g, 0]), float(_GRID_B[g, 0])) for g in best]


def fit_online_prior(successes: npt.NDArray[np.float64], failures: npt.NDArray[np.float64]) -> OnlineBetaPrior:
    """Empirical Bayes on a run's own samples (problems x configs arrays of counts): EM over
    the hopeless share, each configuration's Beta refitted at every step."""
    successes = np.asarray(successes, dtype=np.float64)
    failures = np.asarray(failures, dtype=np.float64)
    seen = (successes + failures).sum(axis=1) > 0
    s, f = successes[seen], failures[seen]
    n_configs = successes.shape[1]
    if not len(s):
        return OnlineBetaPrior((0.5,) * n_configs, (1.0,) * n_configs, 0.1)
    unsolved = s.sum(axis=1) == 0
    hopeless = 0.1
    params = _fit_betas(s, f, np.ones(len(s)))
    for _ in range(_EM_STEPS):
        a = np.array([p[0] for p in params])[None, :]
        b = np.array([p[1] for p in params])[None, :]
        solvable = np.log1p(-hopeless) + (betaln(a + s, b + f) - betaln(a, b)).sum(axis=1)
        hopeless_part = np.where(unsolved, np.log(hopeless), -np.inf)
        share = np.exp(hopeless_part - np.logaddexp(hopeless_part, solvable))  # P(hopeless | samples)
        # smoothed by Beta(1.5, 1.5) pseudo-counts, so a few problems cannot pin it to 0 or 1
        hopeless = float(np.clip((share.sum() + 0.5) / (len(s) + 1.0), 1e-4, 0.95))
        params = _fit_betas(s, f, 1 - share)
    return OnlineBetaPrior(tuple(p[0] for p in params), tuple(p[1] for p in params), hopeless)


def mix_terms(parts: Sequence[tuple[float, Terms]]) -> Terms:
    """The terms of a mixture of priors with the given weights (which sum to 1)."""
    weights = [np.log(w) for w, _ in parts]
    none = logsumexp(np.stack([lw + t[0] for lw, (_, t) in zip(weights, parts)]), axis=0)
    first = logsumexp(np.stack([lw + t[1] for lw, (_, t) in zip(weights, parts)]), axis=0)
    return none, first


def fit_planner_prior(counts: SuccessCounts, smoothing: float = 0.5) -> dict[str, Any]:
    """The ``prior`` argument of the ``planner`` policy, learned from a training split's counts:
    every training problem becomes a problem type (see :meth:`AtomPrior.from_counts`)."""
    return AtomPrior.from_counts(counts, smoothing).to_dict()
