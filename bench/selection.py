"""Benchmark best-arm identification on LiveCodeBench: 45 models x 400 problems.

Question: what fraction of the full evaluation (45 x 400 = 18,000 evaluations) does each
algorithm need to name the true best model with probability >= 90%, over ``--seeds`` seeds?

* An evaluation is one (model, problem) cell; its value is the cell's observed pass@1 (the
  fraction of LiveCodeBench's 10 samples that passed), as in the paper. ``--bernoulli`` makes it
  a 0/1 draw with that probability instead (harder: more noise per evaluation).
* The true best is the argmax of the full-matrix means; the gap to the runner-up is reported.
* P(correct) is measured at each budget of a fixed grid (fractions of 18,000). Anytime
  algorithms (uniform, UCB-E, UCB-E-LRF and banditeval's) run once per seed to the largest
  budget and are read at every grid point; successive halving plans for its budget, so it runs
  once per seed and budget. The fraction needed is the smallest grid point from which
  P(correct) stays >= 0.9 at every larger grid point (``null``: not reached on the grid).
* budgetlab's algorithms: ``budgetlab.evaluation.selection`` with default arguments (UCB-E
  a = 1; UCB-E-LRF a = 1, rank 1, refit every 8 evaluations). banditeval's: the package's own
  step functions (``upper_confidence_bound_exploration`` and ``..._low_rank_factorization``,
  their default arguments: a = 1, batch 32, for LRF rank 1, ensemble 64, 5% warm-up), driven
  on the same matrix the way ``banditeval.BanditEval.__call__`` drives them, with the seed in
  ``torch.manual_seed``; UCB-E also with batch 1. Before an algorithm has scores (LRF's
  warm-up returns none) the best observed mean is its answer.

Target: <= 5% of the full cost for UCB-E and UCB-E-LRF (the paper reports 5-15%).

(Named selection.py: a script's folder comes first on the import path, so a real bench/select.py
would shadow the standard library's ``select`` module, which asyncio imports, for every script
in bench/. ``python bench/select.py``, the issue's name, runs this file through a shim that
avoids that.)

Usage::

    python bench/selection.py                       # human table (~25 min on 2 cores, mostly banditeval LRF)
    python bench/selection.py --json                # the table, then one JSON object, last
    python bench/selection.py --seeds 20 --no-banditeval-lrf
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from budgetlab.evaluation import ScoreMatrix, load_score_matrix
from budgetlab.evaluation.selection import make_algorithm, simulate

ROOT = Path(__file__).resolve().parents[1]
DATA = "livecodebench/performances_generation_2024-04-17_45models.json.gz"
GRID = (0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.075, 0.10, 0.125, 0.15, 0.20, 0.30, 0.40, 0.50, 0.75, 1.0)
TARGET_FRACTION = 0.05
TARGET_P = 0.9


def _data_dir() -> Path:
    return Path(os.environ.get("BUDGETLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))


# ---- runners (top-level functions: they run in worker processes) --------------------------------
_MATRIX: ScoreMatrix | None = None


def _init(path: str) -> None:
    global _MATRIX
    warnings.simplefilter("ignore")
    _MATRIX = load_score_matrix(path)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:
        pass


def _ours_anytime(job: tuple[str, int, float, bool]) -> list[int]:
    name, seed, top, bernoulli = job
    assert _MATRIX is not None
    marks = [round(f * _MATRIX.available) for f in GRID if f <= top]
    result = simulate(make_algorithm(name), _MATRIX, marks[-1], seed=seed, bernoulli=bernoulli, checkpoints=marks)
    return [result.checkpoints[m] for m in marks]


def _ours_halving(job: tuple[int, float, bool]) -> int:
    seed, fraction, bernoulli = job
    assert _MATRIX is not None
    budget = round(fraction * _MATRIX.available)
    result = simulate(make_algorithm("halving", {"budget": budget}), _MATRIX, budget, seed=seed, bernoulli=bernoulli)
    return _MATRIX.methods.index(result.best)


def _banditeval(job: tuple[str, int, float, int, bool]) -> list[int]:
    """banditeval's step function driven as BanditEval.__call__ drives it, read at the grid."""
    import torch
    from banditeval.bandits import (
        upper_confidence_bound_exploration,
        upper_confidence_bound_exploration_low_rank_factorization,
    )

    algorithm, seed, top, batch, bernoulli = job
    assert _MATRIX is not None
    step = (
        upper_confidence_bound_exploration
        if algorithm == "ucbe"
        else upper_confidence_bound_exploration_low_rank_factorization
    )
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    truth = torch.tensor(_MATRIX.values, dtype=torch.float32)
    observed = torch.full(truth.shape, float("nan"))
    marks = [round(f * _MATRIX.available) for f in GRID if f <= top]
    out: list[int] = []
    used = 0
    while marks[len(out) :]:
        batch_cells, mus = step(observed, batch_size=batch, return_mus=True)
        if mus is None:  # LRF warm-up: no scores yet; answer with the best observed mean
            mus = observed.nanmean(dim=1)
        mus = torch.nan_to_num(mus, nan=-float("inf"))
        best = int(torch.argmax(mus))
        # Every mark passed by the previous step is answered with the scores from before this step.
        while len(out) < len(marks) and marks[len(out)] <= used:
            out.append(best)
        if batch_cells is None:
            break
        rows, cols = batch_cells
        values = truth[rows, cols]
        if bernoulli:
            values = torch.tensor((rng.random(len(values)) < values.numpy()).astype(np.float32))
        observed[rows, cols] = values
        used += len(rows)
    while len(out) < len(marks):
        out.append(best)
    return out


# ---- bench --------------------------------------------------------------------------------------
def _needed(p_by_fraction: dict[float, float]) -> float | None:
    fractions = sorted(p_by_fraction)
    for i, f in enumerate(fractions):
        if all(p_by_fraction[g] >= TARGET_P for g in fractions[i:]):
            return f
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=100, help="seeds per algorithm and budget (default 100)")
    parser.add_argument(
        "--bernoulli", action="store_true", help="an evaluation is a 0/1 draw with the cell's pass@1 as probability"
    )
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument(
        "--lrf-top", type=float, default=0.2, help="largest budget fraction for the LRF algorithms (slow), default 0.2"
    )
    parser.add_argument("--no-banditeval", action="store_true", help="skip the banditeval package's algorithms")
    parser.add_argument(
        "--no-banditeval-lrf", action="store_true", help="skip banditeval's UCB-E-LRF (the slowest part)"
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()

    path = _data_dir() / DATA
    if not path.exists():
        print(f"SKIPPED: {path} not found (set BUDGETLAB_SHARED_DATA to the shared data folder)", file=sys.stderr)
        if args.json:
            print(json.dumps({"skipped": f"{path} not found", "target_met": {}}))
        return 0
    matrix = load_score_matrix(path)
    means = matrix.means()
    order = np.argsort(-means)
    best, second = int(order[0]), int(order[1])
    paired_sd = float(np.std(matrix.values[best] - matrix.values[second], ddof=1))

    have_banditeval = False
    if not args.no_banditeval:
        try:
            import banditeval  # noqa: F401

            have_banditeval = True
        except ImportError:
            print(
                "banditeval is not installed (pip install 'budgetlab[eval-baselines]'): its rows are skipped",
                file=sys.stderr,
            )

    anytime: dict[str, tuple[str, object, float]] = {
        "uniform": ("budgetlab", "uniform", 1.0),
        "ucbe": ("budgetlab", "ucbe", 0.5),
        "ucbe-lrf": ("budgetlab", "ucbe-lrf", args.lrf_top),
    }
    if have_banditeval:
        anytime["banditeval ucbe (batch 32)"] = ("banditeval", ("ucbe", 32), 1.0)
        anytime["banditeval ucbe (batch 1)"] = ("banditeval", ("ucbe", 1), 0.5)
        if not args.no_banditeval_lrf:
            anytime["banditeval ucbe-lrf"] = ("banditeval", ("ucbe-lrf", 32), args.lrf_top)

    results: dict[str, dict[float, float]] = {}
    seconds: dict[str, float] = {}
    with concurrent.futures.ProcessPoolExecutor(args.workers, initializer=_init, initargs=(str(path),)) as pool:
        for label, (source, spec, top) in anytime.items():
            started = time.perf_counter()
            if source == "budgetlab":
                jobs = [(spec, seed, top, args.bernoulli) for seed in range(args.seeds)]
                answers = list(pool.map(_ours_anytime, jobs))
            else:
                algorithm, batch = spec  # type: ignore[misc]
                jobs = [(algorithm, seed, top, batch, args.bernoulli) for seed in range(args.seeds)]
                answers = list(pool.map(_banditeval, jobs))
            grid = [f for f in GRID if f <= top]
            hits = (np.array(answers) == best).mean(axis=0)
            results[label] = {f: float(h) for f, h in zip(grid, hits)}
            seconds[label] = time.perf_counter() - started
            print(f"{label}: {seconds[label]:.0f} s", file=sys.stderr, flush=True)
        started = time.perf_counter()
        grid = [f for f in GRID if f <= 0.5]
        jobs = [(seed, f, args.bernoulli) for f in grid for seed in range(args.seeds)]
        answers = np.array(list(pool.map(_ours_halving, jobs, chunksize=8))).reshape(len(grid), args.seeds)
        results["halving"] = {f: float((a == best).mean()) for f, a in zip(grid, answers)}
        seconds["halving"] = time.perf_counter() - started

    labels = ["uniform", "halving", "ucbe", "ucbe-lrf"] + [k for k in results if k.startswith("banditeval")]
    needed = {k: _needed(results[k]) for k in labels}
    value = "Bernoulli draw with the cell's pass@1 as probability" if args.bernoulli else "observed pass@1 of the cell"
    print(
        f"LiveCodeBench generation 2024-04-17: {len(matrix.methods)} models x {len(matrix.examples)} problems "
        f"({matrix.available:,} evaluations); an evaluation's value: {value}; {args.seeds} seeds"
    )
    print(
        f"true best: {matrix.methods[best]} ({means[best]:.4f}); runner-up: {matrix.methods[second]} ({means[second]:.4f}); "
        f"gap {means[best] - means[second]:.4f} (sd of per-problem paired differences {paired_sd:.3f})"
    )
    shown = [f for f in GRID if f <= 0.5]
    print("\nP(naming the true best) by budget (fraction of the full evaluation):")
    header = f"{'algorithm':30s}" + "".join(f"{100 * f:>7.1f}%" for f in shown) + "   needed (P>=0.9)"
    print(header)
    print("-" * len(header))
    for k in labels:
        row = "".join(f"{results[k][f]:8.2f}" if f in results[k] else f"{'-':>8s}" for f in shown)
        need = f"{100 * needed[k]:.1f}%" if needed[k] is not None else f"> {100 * max(results[k]):.0f}%"
        print(f"{k:30s}{row}   {need}")
    print(f"\ntarget: UCB-E and UCB-E-LRF need <= {100 * TARGET_FRACTION:.0f}% of the full cost for P >= {TARGET_P}")

    summary = {
        "data": DATA,
        "models": len(matrix.methods),
        "problems": len(matrix.examples),
        "full_cost": matrix.available,
        "value": value,
        "seeds": args.seeds,
        "true_best": matrix.methods[best],
        "runner_up": matrix.methods[second],
        "true_best_mean": float(means[best]),
        "runner_up_mean": float(means[second]),
        "gap": float(means[best] - means[second]),
        "paired_difference_sd": paired_sd,
        "p_correct": {k: {str(f): p for f, p in results[k].items()} for k in labels},
        "needed_fraction": needed,
        "seconds": seconds,
        "target_met": {
            "ucbe_le_5pct": needed["ucbe"] is not None and needed["ucbe"] <= TARGET_FRACTION,
            "ucbe_lrf_le_5pct": needed["ucbe-lrf"] is not None and needed["ucbe-lrf"] <= TARGET_FRACTION,
        },
    }
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
