"""pass@k and maj@k that stay unbiased when the samples of a problem were drawn adaptively.

The setting. Each problem has a conceptual stream of i.i.d. samples X_1, X_2, ... (its indexes
in the store). A policy looks at what it has seen and decides whether to draw the next one, so
the number N of samples drawn is a *stopping time*: the decision to draw X_{j+1} depends on
X_1..X_j only (the run loop gives new samples the next free index, so a policy never decides
from a sample with a higher index than the one it asks for). Stopping early when answers agree
(ESC, Adaptive-Consistency) or when a problem is solved are both of this kind.

Why the usual estimators break. Chen's pass@k and the subset-average maj@k treat the N samples
as a fixed-size i.i.d. sample. Under a stopping rule they are not: "stop once solved" ends every
solved problem on its first success, so the last sample is always correct and c/N over-counts
success (for a geometric N, E[1/N] > p); "stop when the last w answers agree" keeps drawing
exactly on the problems whose early votes disagree.

What is unbiased, and for what. For a problem, let A_k be any event of its *first k* samples
(pass: one of them is correct; maj: the majority of them is correct). The stream is i.i.d., so
P(A_k) is the problem's pass@k (maj@k). Its indicator is an unbiased estimate whenever the drawn
prefix *determines* it:

* if N >= k, the first k samples were all drawn;
* if N < k, the event may already be settled: pass@k once a correct sample is among the first
  N (whatever follows, one of the first k is correct); maj@k once the leading answer is ahead
  of every other by more than the k - N samples still to come, and its correctness can no
  longer flip.

If a policy guarantees a non-adaptive prefix (it always draws the first ``prefix`` samples,
e.g. ``min_samples``, before looking at any result), those samples are a fixed-size i.i.d. sample
and, for k <= prefix, the subset average over the first ``prefix`` samples (Chen's formula; exact
maj@k) is unbiased too, with less variance than one indicator; this estimator uses it then.

The benchmark-level value averages the problems' estimates, so it is unbiased for the mean of
pass@k (maj@k) over the problems exactly when every problem is determined. A problem whose
prefix settles nothing (e.g. stopped unsolved before k by a budget) has no unbiased estimate
from its own samples; it is counted in ``undetermined`` and left out of the mean, which is then
unbiased for the mean over the other problems only if being undetermined does not depend on
the outcomes. :meth:`AdaptiveEstimate.bounds` gives what holds without that assumption: the
mean over all problems with each undetermined one counted as 0 and as 1. Policies that stop only on success (pass@k) or only when a vote is settled
(maj@k) never leave a problem undetermined for k up to their cap.
"""

from __future__ import annotations

import operator
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from budgetlab.analysis._curves import bootstrap_ci
from budgetlab.analysis._majority import maj_at_k
from budgetlab.analysis._passk import pass_at_k
from budgetlab.errors import InvalidArgument

__all__ = ["AdaptiveEstimate", "adaptive_maj_at_k", "adaptive_pass_at_k"]


@dataclass(frozen=True)
class AdaptiveEstimate:
    """Mean of the per-problem unbiased estimates, a bootstrap interval over problems, and how
    many problems had none (``undetermined``); ``value`` is nan when no problem had one."""

    value: float
    lo: float
    hi: float
    k: int
    n_problems: int
    undetermined: int
    per_problem: tuple[float | None, ...]

    def bounds(self) -> tuple[float, float]:
        """The mean over *all* problems, undetermined ones included, as far as the samples
        bound it: each undetermined problem counted as 0 (low) and as 1 (high). Unlike
        ``value`` it assumes nothing about why problems were left undetermined."""
        known = [v for v in self.per_problem if v is not None]
        total = len(self.per_problem)
        if total == 0:
            return float("nan"), float("nan")
        return sum(known) / total, (sum(known) + self.undetermined) / total

    def to_dict(self) -> dict[str, float | int | list[float]]:
        return {"value": self.value, "lo": self.lo, "hi": self.hi, "k": self.k,
                "n_problems": self.n_problems, "undetermined": self.undetermined, "bounds": list(self.bounds())}


def _check(k: int, prefix: int) -> tuple[int, int]:
    k, prefix = operator.index(k), operator.index(prefix)
    if k < 1:
        raise InvalidArgument(f"adaptive estimate needs k >= 1, got k={k}; ask for k of at least 1")
    if prefix < 0:
        raise InvalidArgument(f"prefix must be >= 0 (samples always drawn before any decision), got prefix={prefix}")
    return k, prefix


def _pass_one(outcomes: Sequence[bool], k: int, prefix: int) -> float | None:
    drawn = len(outcomes)
    if k <= prefix <= drawn:
        return pass_at_k(prefix, sum(bool(x) for x in outcomes[:prefix]), k)
    first = outcomes[:k]
    if any(first):
        return 1.0
    return 0.0 if drawn >= k else None


def _settled(yes: int, no: int, remaining: int) -> bool:
    return yes > no + remaining or no > yes + remaining


def _maj_one(answers: Sequence[Hashable | None], correct: Sequence[bool | None], k: int, prefix: int) -> float | None:
    drawn = len(answers)
    if k <= prefix <= drawn:
        return maj_at_k(answers[:prefix], correct[:prefix], k)
    if drawn >= k:
        return maj_at_k(answers[:k], correct[:k], k)
    remaining = k - drawn
    tallies: dict[Hashable, list[int]] = {}
    for answer, ok in zip(answers, correct):
        if answer is None:
            continue
        t = tallies.setdefault(answer, [0, 0, 0])
        t[0] += 1
        if ok is not None:
            t[1 if ok else 2] += 1
    if not tallies:
        return None
    ranked = sorted(tallies.values(), key=lambda t: t[0], reverse=True)
    leader = ranked[0]
    runner_up = ranked[1][0] if len(ranked) > 1 else 0
    # Every remaining sample could join the runner-up (or a new answer, which starts lower).
    if leader[0] <= runner_up + remaining:
        return None
    # The winner's correctness is the majority of its judged flags; later samples of the same
    # answer could add flags, so it must be out of their reach too.
    yes, no = leader[1], leader[2]
    if not _settled(yes, no, remaining):
        return None
    return 1.0 if yes > no else 0.0


def _summarise(values: list[float | None], k: int, n_boot: int, alpha: float, seed: int) -> AdaptiveEstimate:
    known = np.array([v for v in values if v is not None], dtype=np.float64)
    undetermined = sum(v is None for v in values)
    if known.size == 0:
        nan = float("nan")
        return AdaptiveEstimate(nan, nan, nan, k, 0, undetermined, tuple(values))
    value, lo, hi = bootstrap_ci(known, n_boot=n_boot, alpha=alpha, seed=seed)
    return AdaptiveEstimate(value, lo, hi, k, int(known.size), undetermined, tuple(values))


def adaptive_pass_at_k(
    outcomes: Sequence[Sequence[bool]],
    k: int,
    *,
    prefix: int = 0,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> AdaptiveEstimate:
    """Unbiased pass@k from samples drawn under a stopping rule (see the module docstring).

    ``outcomes[i]`` holds problem i's verdicts **in draw (index) order**; ``prefix`` is the
    number of samples the policy always draws before deciding anything (0 if unknown).
    """
    k, prefix = _check(k, prefix)
    values = [_pass_one(list(seq), k, prefix) for seq in outcomes]
    return _summarise(values, k, n_boot, alpha, seed)


def adaptive_maj_at_k(
    problems: Sequence[tuple[Sequence[Hashable | None], Sequence[bool | None]]],
    k: int,
    *,
    prefix: int = 0,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
) -> AdaptiveEstimate:
    """Unbiased maj@k from ``(answers, correct)`` pairs in draw order, drawn under a stopping
    rule (see the module docstring). Correctness is taken to follow the answer, as with an
    exact verifier; ties score as in :func:`budgetlab.analysis.maj_at_k`."""
    k, prefix = _check(k, prefix)
    values = []
    for i, (answers, correct) in enumerate(problems):
        if len(answers) != len(correct):
            raise InvalidArgument(f"problem {i}: answers and correct differ in length ({len(answers)} vs {len(correct)})")
        values.append(_maj_one(list(answers), list(correct), k, prefix))
    return _summarise(values, k, n_boot, alpha, seed)
