"""The starting price: the one at which a stopping rule spends a given amount per request on
recorded problems (a calibration split). The pacer corrects it online; a good start only
shortens the time the price takes to settle."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from budgetlab.analysis._stopping import simulate_stopping
from budgetlab.errors import InputError
from budgetlab.pacing._priced import priced

__all__ = ["calibrate_price"]


def calibrate_price(
    stopping: Any,
    problems: Sequence[tuple[Sequence[Hashable | None], Sequence[bool | None]]],
    per_request: float,
    *,
    per_sample: float = 1.0,
    orderings: int = 20,
    seed: int = 0,
    low: float | None = None,
    high: float | None = None,
) -> float:
    """The price (accuracy per unit) at which ``stopping`` draws ``per_request / per_sample``
    samples per problem on average over ``problems`` (``(answers, correct)`` per recorded
    sample), by bisection on the log-price (spend falls as the price rises) between ``low`` and
    ``high`` (default: 1e-6 and 1 accuracy per sample, i.e. divided by ``per_sample``)."""
    if not problems:
        raise InputError("calibrate_price needs recorded problems to calibrate on, got none")
    if not (isinstance(per_request, (int, float)) and per_request > 0 and math.isfinite(per_request)):
        raise InputError(f"calibrate_price needs per_request > 0 (spend per request), got {per_request!r}")
    if not (isinstance(per_sample, (int, float)) and per_sample > 0 and math.isfinite(per_sample)):
        raise InputError(f"calibrate_price needs per_sample > 0 (spend per sample), got {per_sample!r}")
    target = per_request / per_sample
    low = 1e-6 / per_sample if low is None else low
    high = 1.0 / per_sample if high is None else high

    def mean_samples(price: float) -> float:
        rule = priced(stopping, price, per_sample)
        return simulate_stopping(rule, problems, orderings=orderings, seed=seed, n_boot=0).mean_samples

    lo, hi = math.log(low), math.log(high)
    if mean_samples(low) <= target:  # even free samples do not use the budget: spend it all
        return low
    if mean_samples(high) >= target:
        return high
    for _ in range(24):
        mid = (lo + hi) / 2
        if mean_samples(math.exp(mid)) > target:
            lo = mid
        else:
            hi = mid
    return math.exp((lo + hi) / 2)


def prior_problems(stopping: Any, n: int = 400, *, size: int | None = None, seed: int = 0) -> list[tuple[list[Any], list[bool]]]:
    """``n`` pools of ``size`` answers (default the rule's ``max_samples``) drawn from a Bayes
    stopping rule's own prior: an atom by its weight, then answers with its shares (the leader,
    the runner-up, else an answer of its own) and the leader right with chance ``c1``, the
    runner-up with ``c2``. Calibrating on them gives a starting price with no recorded data."""
    atoms = getattr(stopping, "atoms", None)
    if atoms is None:
        raise InputError(f"prior_problems needs a Bayes stopping rule (one with a prior), got {type(stopping).__name__}")
    table = np.array(atoms(), dtype=float)  # s1, s2, weight, c1, c2
    size = size or stopping.max_samples
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        s1, s2, _, c1, c2 = table[rng.choice(len(table), p=table[:, 2] / table[:, 2].sum())]
        u = rng.random(size)
        answers = ["lead" if x < s1 else "second" if x < s1 + s2 else f"other{i}-{j}" for j, x in enumerate(u)]
        lead_right = rng.random() < c1
        second_right = not lead_right and rng.random() < (c2 / (1 - c1) if c1 < 1 else 0.0)
        out.append((answers, [(a == "lead" and lead_right) or (a == "second" and second_right) for a in answers]))
    return out
