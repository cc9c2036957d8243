"""Adaptive-Consistency (Aggarwal et al., EMNLP 2023): stop once the posterior probability that
the current leading answer is the true majority passes a threshold."""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from budgetlab.errors import InputError
from budgetlab.policies._sequential import SequentialStopping, check_count, check_not_above_max, check_probability

__all__ = ["AdaptiveConsistency", "beta_leader_probability", "dirichlet_leader_probability", "vote_counts"]

CRITERIA = ("beta", "dirichlet")


def vote_counts(answers: Sequence[Hashable | None]) -> list[int]:
    """Votes per distinct answer, largest first (``None`` casts no vote)."""
    counts = Counter(answers)
    counts.pop(None, None)
    return sorted(counts.values(), reverse=True)


def _betainc_half(a: float, b: float) -> float:
    """I_{1/2}(a, b), the regularized incomplete beta function at 1/2 (a, b > 0), by its
    continued fraction (modified Lentz)."""
    x = 0.5
    if a > b + 1:  # converges fast only for x < (a + 1) / (a + b + 2); use the symmetry otherwise
        return 1.0 - _betainc_half(b, a)
    log_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(1 - x)
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        m2 = 2 * m
        for num in (m * (b - m) * x / ((a + m2 - 1) * (a + m2)), -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1))):
            d = 1.0 + num * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + num / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < 1e-15:
            break
    return math.exp(log_front) * h / a


def beta_leader_probability(top: float, runner_up: float) -> float:
    """P(p_top > p_runner_up) under the Beta(top + 1, runner_up + 1) posterior of the two leading
    answers' split (uniform prior): Adaptive-Consistency's Beta criterion. Exact for whole counts
    (a binomial tail); weighted (real) counts go through the incomplete beta function."""
    if top == int(top) and runner_up == int(runner_up):
        a, b = int(top), int(runner_up)
        n = a + b + 1
        return math.fsum(math.comb(n, k) for k in range(a + 1)) / 2**n
    return 1.0 - _betainc_half(top + 1.0, runner_up + 1.0)


@functools.lru_cache(maxsize=65536)
def _dirichlet_sorted(counts: tuple[int, ...]) -> float:
    alphas = np.array(counts, dtype=np.float64) + 1.0
    top = float(alphas.max())
    upper = top + 12.0 * math.sqrt(top) + 20.0
    x = np.linspace(upper / 1000, upper, 1000)
    logx = np.log(x)
    # density of the leader's Gamma(alpha_0, 1) variate ...
    integrand = np.exp((alphas[0] - 1.0) * logx - x - math.lgamma(alphas[0]))
    # ... times the CDF of every other one (whole shapes: 1 - Poisson(x) tail below the shape)
    kmax = int(alphas[1:].max())
    terms = np.exp(np.arange(kmax)[:, None] * logx[None, :] - x[None, :] - np.array([math.lgamma(i + 1) for i in range(kmax)])[:, None])
    below = np.cumsum(terms, axis=0)  # below[k-1] = P(Poisson(x) <= k-1)
    for alpha in alphas[1:]:
        integrand = integrand * np.clip(1.0 - below[int(alpha) - 1], 0.0, 1.0)
    # the leader's mass below the first grid point is negligible (shape >= 2)
    return float(np.clip(np.trapezoid(integrand, x), 0.0, 1.0))


def dirichlet_leader_probability(counts: Sequence[int], top_k: int | None = None) -> float:
    """P(the leading answer has the largest probability) under the Dirichlet(counts + 1) posterior
    over the observed answers (all of them, or the ``top_k`` largest): Adaptive-Consistency's
    Dirichlet criterion, computed as the one-dimensional integral P(G_0 > max_j G_j) over
    independent Gamma(count + 1) variates (a fine quadrature, deterministic, unlike Monte Carlo).
    With fewer than two answers an empty rival class is added, so two classes give the Beta
    criterion exactly."""
    ordered = sorted((int(c) for c in counts), reverse=True)[: top_k or None]
    if not ordered or ordered[0] == 0:
        return 0.0
    if len(ordered) == 1:
        ordered.append(0)
    if len(ordered) == 2:
        return beta_leader_probability(ordered[0], ordered[1])
    return _dirichlet_sorted(tuple(ordered))


@dataclass(frozen=True)
class AdaptiveConsistency(SequentialStopping):
    """Draw ``batch`` samples at a time (1: check after every sample) and stop once the leading
    answer's posterior probability of being the majority reaches ``threshold``: ``beta`` compares
    the two leading answers, ``dirichlet`` all of them (or the ``top_k`` largest)."""

    criterion: str = "beta"
    threshold: float = 0.95
    max_samples: int = 40
    batch: int = 1
    min_samples: int = 1
    top_k: int | None = None
    name: str = "adaptive"

    def __post_init__(self) -> None:
        example = "adaptive:criterion=beta,threshold=0.95,max_samples=40"
        if self.criterion not in CRITERIA:
            raise InputError(f"policy adaptive: criterion must be one of {', '.join(CRITERIA)}, got criterion={self.criterion!r}; write e.g. {example}")
        check_probability("adaptive", "threshold", self.threshold, example)
        check_count("adaptive", "max_samples", self.max_samples, 1, example)
        check_count("adaptive", "batch", self.batch, 1, example)
        check_count("adaptive", "min_samples", self.min_samples, 1, example)
        check_not_above_max("adaptive", "min_samples", self.min_samples, self.max_samples, example)
        if self.top_k is not None:
            check_count("adaptive", "top_k", self.top_k, 2, "adaptive:criterion=dirichlet,top_k=5")

    @property
    def step(self) -> int:  # type: ignore[override]
        return self.batch

    def leader_probability(self, answers: Sequence[Hashable | None]) -> float:
        counts = vote_counts(answers)
        if not counts:
            return 0.0
        if self.criterion == "beta":
            return beta_leader_probability(counts[0], counts[1] if len(counts) > 1 else 0)
        return dirichlet_leader_probability(counts, self.top_k)

    def should_stop(self, answers: Sequence[Hashable | None], confidences: Sequence[float | None] | None = None) -> bool:
        return self.leader_probability(answers) >= self.threshold
