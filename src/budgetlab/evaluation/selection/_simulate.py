"""Offline best-arm identification over a recorded score matrix."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from budgetlab.errors import InputError
from budgetlab.evaluation._base import (
    BestArmAlgorithm,
    Observations,
    ScoreMatrix,
    SelectionResult,
    identified,
    ranking_of,
)

__all__ = ["simulate"]


def simulate(
    algorithm: BestArmAlgorithm,
    matrix: ScoreMatrix,
    budget: float | None = None,
    *,
    seed: int = 0,
    delta: float | None = None,
    passes: int = 1,
    bernoulli: bool = False,
    checkpoints: Iterable[int] = (),
) -> SelectionResult:
    """Run ``algorithm`` on ``matrix``, revealing a cell's score when the algorithm evaluates it.

    ``budget``: evaluations allowed, as a count (``int``) or a fraction of the full matrix
    (``float`` in (0, 1]); ``None`` allows the full matrix. ``seed`` fixes the shared example
    order. ``delta``: also stop once the best method is identified with confidence
    ``1 - delta`` (see :func:`~budgetlab.evaluation.identified`). ``bernoulli``: an
    evaluation's value is a Bernoulli draw with the cell's score as probability (scores must lie
    in [0, 1]) instead of the score itself. ``checkpoints``: numbers of evaluations at which
    to record the method named best (in :attr:`SelectionResult.checkpoints`).
    """
    values = matrix.values
    available = ~np.isnan(values)
    total = int(available.sum()) * passes
    limit = _budget(budget, total)
    if bernoulli and (np.nanmin(values) < 0 or np.nanmax(values) > 1):
        raise InputError("bernoulli draws need scores in [0, 1] (probabilities), but the matrix has others")
    rng = np.random.default_rng(seed)
    obs = Observations(
        *values.shape, order=rng.permutation(values.shape[1]), available=available, passes=passes, budget=limit
    )
    marks = sorted({int(c) for c in checkpoints if 0 < int(c) <= limit})
    seen: dict[int, int] = {}
    stopped = f"budget of {limit:,} evaluations spent"
    while obs.used < limit:
        pulls = algorithm.propose(obs, min(algorithm.batch, limit - obs.used))
        if not pulls:
            stopped = f"{algorithm.name} has nothing more to evaluate"
            break
        for done, (arm, example) in enumerate(pulls, 1):
            value = values[arm, example]
            obs.settle(arm, example, float(rng.random() < value) if bernoulli else float(value))
            used = obs.used - len(pulls) + done
            if marks and marks[0] == used:
                # Later cells of the batch are in flight, with no value yet: the view at `used`.
                seen[marks.pop(0)] = algorithm.recommend(obs)
        if delta is not None and identified(obs, algorithm.recommend(obs), delta):
            stopped = f"best method identified with confidence {1 - delta:g}"
            break
    best = algorithm.recommend(obs)
    # Checkpoints past the end (stopped early) see the final answer.
    for mark in marks:
        seen[mark] = best
    return SelectionResult(
        algorithm=algorithm.name,
        best=matrix.methods[best],
        ranking=ranking_of(matrix.methods, algorithm.estimates(obs), obs.arm_taken),
        evaluations=obs.used,
        total=total,
        stopped_because=stopped,
        checkpoints=seen,
    )


def _budget(budget: float | None, total: int) -> int:
    if budget is None:
        return total
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or budget <= 0:
        raise InputError(f"budget must be a positive number of evaluations or a fraction in (0, 1], got {budget!r}")
    if isinstance(budget, float) and budget <= 1:
        return max(1, round(budget * total))
    return min(int(budget), total)
