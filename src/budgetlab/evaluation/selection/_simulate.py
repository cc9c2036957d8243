"""Offline best-arm identification over a recorded score matrix."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from budgetlab.errors import InvalidArgument
from budgetlab.evaluation._base import (
    BestArmAlgorithm,
    Observations,
    ScoreMatrix,
    SelectionResult,
    identified,
    ranking_of,
)
from budgetlab.evaluation.selection._arguments import is_whole

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

    ``budget``: evaluations allowed, at least one per method: a count (a whole number, capped at
    the full matrix) or a fraction of the full matrix (``float`` in (0, 1]; 1.0 is all of it);
    ``None`` allows the full matrix. ``seed`` fixes the shared example order. ``delta``: also
    stop once the best method is identified with confidence ``1 - delta`` (see
    :func:`~budgetlab.evaluation.identified`). ``bernoulli``: an evaluation's value is a
    Bernoulli draw with the cell's score as probability (scores must lie in [0, 1]) instead of
    the score itself. ``checkpoints``: numbers of evaluations at which to record the method
    named best (in :attr:`SelectionResult.checkpoints`).
    """
    # Wrong types fail here in one line, not as an AttributeError deep in the loop.
    if not isinstance(matrix, ScoreMatrix):
        raise InvalidArgument(
            f"simulate needs a ScoreMatrix, got {type(matrix).__name__}; wrap the scores as "
            "ScoreMatrix(values, methods, examples) or read a file with load_score_matrix(path)"
        )
    if not isinstance(algorithm, BestArmAlgorithm):
        raise InvalidArgument(
            f"simulate needs a best-arm algorithm, got {algorithm!r:.60}; make one with "
            "make_algorithm('ucbe:a=1') or UCBE(), Uniform(), SuccessiveHalving(), UCBELowRank()"
        )
    # Checked before the budget, which is counted in passes: passes=0 used to be reported as
    # "a budget of 0 evaluations", and passes=1.5 ran with a fractional total.
    if not is_whole(passes) or passes < 1:
        raise InvalidArgument(f"passes must be a whole number >= 1 (evaluations per cell), got passes={passes!r}; e.g. passes=1")
    values = matrix.values
    available = ~np.isnan(values)
    total = int(available.sum()) * passes
    limit = _budget(budget, total)
    if limit < len(matrix.methods):
        raise InvalidArgument(
            f"a budget of {_evaluations(limit)} cannot evaluate each of the {len(matrix.methods)} methods once; "
            f"at least one evaluation per method is needed: give a budget of at least {len(matrix.methods)}"
            + (
                f" (or, if the {len(matrix.methods)} rows are examples and the {len(matrix.examples)} columns "
                "methods, transpose the matrix: one row per method)"
                if len(matrix.methods) > len(matrix.examples)
                else ""
            )
        )
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgument(f"seed must be a whole number >= 0, got seed={seed!r}")
    if bernoulli and (np.nanmin(values) < 0 or np.nanmax(values) > 1):
        raise InvalidArgument(
            f"bernoulli draws need scores in [0, 1] (probabilities), but the matrix's run from {np.nanmin(values):g} "
            f"to {np.nanmax(values):g}; evaluate with the scores themselves (no --bernoulli, bernoulli=False), or "
            "give pass rates as fractions"
        )
    rng = np.random.default_rng(seed)
    obs = Observations(
        *values.shape, order=rng.permutation(values.shape[1]), available=available, passes=passes, budget=limit
    )
    marks = sorted({int(c) for c in checkpoints if 0 < int(c) <= limit})
    seen: dict[int, int] = {}
    stopped = f"budget of {_evaluations(limit)} spent"
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
    if delta is not None and not stopped.startswith("best method identified"):
        # Asked for a confidence it did not reach: the answer is the algorithm's best guess.
        stopped += f"; the best method is not yet identified with confidence {1 - delta:g}"
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


def _evaluations(n: int) -> str:
    return f"{n:,} evaluation" + ("" if n == 1 else "s")


def _budget(budget: float | None, total: int) -> int:
    if budget is None:
        return total
    is_number = isinstance(budget, (int, float, np.integer, np.floating)) and not isinstance(budget, bool)
    # A float above 1 that is not whole (1.5) is neither a count nor a fraction: 1.5% meant as
    # 1.5 would otherwise buy one evaluation and a wrong answer.
    if not is_number or not 0 < budget < math.inf or (budget > 1 and not float(budget).is_integer()):
        raise InvalidArgument(
            f"budget must be a whole number of evaluations or a fraction in (0, 1], got {budget!r}; e.g. 0.05 or 900"
        )
    if isinstance(budget, (float, np.floating)) and budget <= 1:
        return max(1, round(budget * total))
    return min(int(budget), total)
