"""Majority voting (self-consistency) over sampled answers, and its exact expectation maj@k.

Semantics shared by every function here:

* ``None`` answers (unparseable) cast no vote. A draw in which nobody votes is incorrect.
* Answers are grouped by equality (dict semantics, so ``1`` and ``1.0`` share a group).
* The winner is the answer with the most votes; a tie is broken uniformly at random, so a
  tie between one correct and one incorrect answer scores 1/2.
* A group's correctness is the majority judgement of its samples' ``correct`` flags; flags
  that are ``None`` (unjudged) are ignored; an even split scores 1/2; a group with no judged
  sample counts as incorrect. Several groups may be correct (``"1/2"`` and ``"0.5"``).
* A flag must be ``True``, ``False`` (or 0/1, numpy booleans) or ``None``: anything else, such as
  the NaN that a pandas column uses for a missing value, is refused rather than read as true.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Hashable, Sequence
from fractions import Fraction

from budgetlab.errors import InvalidArgument

__all__ = ["maj_at_k", "majority_answer"]


def _flag(ok: object, i: int) -> bool | None:
    """``correct[i]`` as a verdict. NaN (pandas' missing value) is truthy, so ``if ok`` alone
    would count an unjudged sample as correct; and a stray answer string in the flags means the
    two sequences were swapped or mis-paired. Both are refused with the index and the fix."""
    try:
        valid = ok is None or ok in (0, 1)  # True/False, 0/1, numpy booleans; NaN != 0 and != 1
    except (TypeError, ValueError):  # an array (ambiguous truth) or an odd object
        valid = False
    if not valid:
        raise InvalidArgument(
            f"correct[{i}] must be True, False or None (unjudged), got {ok!r}; "
            "mark an unjudged sample None (not NaN), and pass answers and correct flags in that order"
        )
    return None if ok is None else bool(ok)


def _groups(
    answers: Sequence[Hashable | None], correct: Sequence[bool | None]
) -> tuple[list[int], list[Fraction], int]:
    """Sizes and correctness weights of the answer groups, and the number of ``None`` answers."""
    if len(answers) != len(correct):
        raise InvalidArgument(
            f"answers and correct must have the same length, got {len(answers)} and {len(correct)}"
        )
    tallies: dict[Hashable, list[int]] = {}  # answer -> [size, judged correct, judged wrong]
    n_none = 0
    for i, (answer, flag) in enumerate(zip(answers, correct)):
        ok = _flag(flag, i)
        if answer is None:
            n_none += 1
            continue
        tally = tallies.setdefault(answer, [0, 0, 0])
        tally[0] += 1
        if ok is not None:
            tally[1 if ok else 2] += 1
    sizes = [size for size, _, _ in tallies.values()]
    weights = [
        Fraction(1) if yes > no else Fraction(1, 2) if yes == no > 0 else Fraction(0)
        for _, yes, no in tallies.values()
    ]
    return sizes, weights, n_none


def _maj_fraction(
    sizes: Sequence[int], weights: Sequence[Fraction], n_none: int, k: int
) -> Fraction:
    """Exact expected majority-vote score over the C(n, k) equally likely k-subsets.

    For a scoring group g drawn x times, the other groups split into those too small to
    reach x votes (free: they and the ``None`` group only add draws) and rivals that may
    tie at x (never more). A DP over rivals tracks (draws, rivals tied at x); g wins a
    draw with t ties with probability 1/(1+t). Polynomials in the number of draws are
    packed into Python ints (Kronecker substitution) so that polynomial products are
    single big-int multiplications: exact and fast.
    """
    n = sum(sizes) + n_none
    if not any(weights):
        return Fraction(0)
    # Each packed coefficient is dominated by a coefficient of (1+z)^n < 2^n, so n+1 bits
    # per slot never carry into the next slot.
    bits = n + 1
    mask = (1 << bits) - 1

    def pack(coeffs: Sequence[int]) -> int:
        return sum(coef << (bits * i) for i, coef in enumerate(coeffs))

    tie_scale = math.lcm(*range(1, len(sizes) + 1))  # makes every 1/(1+t) an integer
    total = Fraction(0)
    for g, (m_g, weight) in enumerate(zip(sizes, weights)):
        if not weight:
            continue
        others = sizes[:g] + sizes[g + 1 :]
        for x in range(1, min(m_g, k) + 1):
            free = n_none + sum(m for m in others if m < x)
            by_ties = [pack([math.comb(free, j) for j in range(free + 1)])]
            for m in others:
                if m < x:
                    continue
                below = pack([math.comb(m, y) for y in range(x)])
                at = math.comb(m, x) << (bits * x)
                grown = [0] * (len(by_ties) + 1)
                for t, poly in enumerate(by_ties):
                    grown[t] += poly * below
                    grown[t + 1] += poly * at
                by_ties = grown
            shift = bits * (k - x)
            ways = sum(
                ((poly >> shift) & mask) * (tie_scale // (t + 1))
                for t, poly in enumerate(by_ties)
            )
            total += weight * math.comb(m_g, x) * ways
    return total / (math.comb(n, k) * tie_scale)


def maj_at_k(answers: Sequence[Hashable | None], correct: Sequence[bool | None], k: int) -> float:
    """Exact expected accuracy of a majority vote over ``k`` of the ``n`` samples.

    The ``k`` samples are drawn uniformly without replacement; see the module docstring for
    how ``None`` answers, ties and groups with mixed judgements score. The value is the
    exact rational expectation rounded once to a float, so it matches a brute-force
    enumeration of all k-subsets. Cost is polynomial (about n * groups^2 big-int products),
    a few milliseconds for n = 100.

    Raises:
        ValueError: if ``k < 1``, ``k > n`` or the two sequences differ in length.
    """
    k = operator.index(k)
    sizes, weights, n_none = _groups(answers, correct)
    n = len(answers)
    if k < 1:
        raise InvalidArgument(f"maj@k needs k >= 1, got k={k}; ask for k of at least 1")
    if k > n:
        raise InvalidArgument(
            f"maj@k needs k <= n samples, got k={k}, n={n}; "
            "draw more samples or ask for a smaller k"
        )
    return float(_maj_fraction(sizes, weights, n_none, k))


def majority_answer(answers: Sequence[Hashable | None]) -> Hashable | None:
    """The most frequent non-``None`` answer among all samples, or ``None`` if there is none.

    Deterministic: among answers tied at the top count, the one that reached that count
    first in sample order wins (a stream-friendly rule that needs no second pass).
    """
    counts: dict[Hashable, int] = {}
    best: Hashable | None = None
    best_count = 0
    for answer in answers:
        if answer is None:
            continue
        counts[answer] = counts.get(answer, 0) + 1
        # Strictly greater: a later answer only takes over by passing the leader.
        if counts[answer] > best_count:
            best, best_count = answer, counts[answer]
    return best
