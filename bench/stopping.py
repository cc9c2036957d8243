"""Benchmark the stopping policies on recorded self-consistency samples.

For every stopping policy and a small grid of its thresholds: accuracy of the majority vote over
the samples it draws, and mean samples per problem, over ``--orderings`` random orders of each
problem's 40 recorded samples, beside majority@{5,10,20,40} (exact expectations over the pool).
Two data sets, read from the shared data folder through ``scripts/convert_*.py`` (replay files
written to the git-ignored ``out/replay/``):

* ``last_letters``: ESC's GPT-3.5 Last-Letters, 500 problems x 40 samples;
* ``date``: MoT-cascade's GPT-3.5 BIG-Bench Date ``date_cot1_40``, 369 problems x 40 samples.

Targets, against the 40-sample pool: accuracy within 0.001 (0.1 point) of majority@40's, with at
least 6x fewer samples on average on Last-Letters and 4x on Date.

Honesty rules. ``bayes`` (budgetlab's own rule) fits a prior and a vote-share calibrator: it is
cross-fitted (problems split in two folds with ``--split-seed``; each fold is evaluated with the
parameters fitted on the other fold), so no problem is scored by parameters fitted on it. The
grid is fixed in advance and the same for every run; "best" picks, per policy, the grid point
with the largest savings among those meeting the accuracy condition ON THE EVALUATED PROBLEMS
(as papers report a threshold). The "held-out" figures remove that choice too: the grid point is
chosen on one fold and scored on the other, both ways, for every policy alike (for ``bayes`` the
choice on a fold is itself cross-fitted inside that fold, so it never sees the other fold).

The end-to-end check replays one order per problem through real ``budgetlab`` runs (replay
backend with a ``--replay-seed``, SQLite store): a ``fixed:k=40`` run gives each problem's draw
order, each policy's run must draw exactly the samples per problem the simulator predicts for it.

Usage::

    python bench/stopping.py                 # human table (2.5 to 3.5 minutes on 2 cores)
    python bench/stopping.py --json          # the table, then one JSON object, last
    python bench/stopping.py --orderings 50 --datasets date --no-e2e
    python bench/stopping.py --plot out/stopping-pareto.png   # also the Pareto plot, a panel per data set
"""

from __future__ import annotations

import os
import sys

# Run as a script, this folder comes first on the import path, and the other benchmarks in it
# could shadow standard modules (a bench/select.py once broke asyncio): keep it off the path.
_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse  # noqa: E402 (after the path fix)
import concurrent.futures
import importlib.util
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from budgetlab.analysis import bootstrap_ci, maj_at_k
from budgetlab.analysis._stopping import simulate_stopping
from budgetlab.backends import read_recorded
from budgetlab.policies import BayesStopping, fit_bayes_stopping, make_policy
from budgetlab.runner import run
from budgetlab.stores import open_store

ROOT = Path(__file__).resolve().parents[1]
TOLERANCE = 0.001
MAX_SAMPLES = 40
KS = (5, 10, 20, 40)
DATASETS: dict[str, dict[str, Any]] = {
    "last_letters": {"script": "convert_esc.py", "replay": "esc_last_letters.jsonl.gz", "target": 6.0,
                     "label": "Last-Letters (ESC, GPT-3.5, T=0.7)"},
    "date": {"script": "convert_mot.py", "replay": "mot_date_cot1_40.jsonl.gz", "target": 4.0,
             "label": "Date (MoT date_cot1_40, GPT-3.5)"},
}  # fmt: skip
# (family, policy name, fixed args, grid key, grid values)
GRID: list[tuple[str, str, dict[str, Any], str, tuple[float, ...]]] = [
    ("esc", "esc", {}, "window", (3, 4, 5, 6, 8)),
    ("adaptive-beta", "adaptive", {"criterion": "beta"}, "threshold", (0.8, 0.9, 0.925, 0.95, 0.975, 0.99)),
    ("adaptive-dirichlet", "adaptive", {"criterion": "dirichlet"}, "threshold", (0.9, 0.95, 0.975, 0.99)),
    ("bayes-uniform", "bayes", {}, "cost", (0.0003, 0.001)),
    ("bayes", "bayes", {}, "cost", (0.0002, 0.0003, 0.0005, 0.0007, 0.001, 0.002)),
]
FITTED = {"bayes"}  # families whose parameters are fitted on a calibration fold


def log(msg: str) -> None:
    print(f"[stopping] {msg}", file=sys.stderr, flush=True)


# ---- data ----------------------------------------------------------------------------------------
def _script(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name.removesuffix(".py"), ROOT / "scripts" / name)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def replay_file(dataset: str, data: Path, out: Path) -> Path:
    """The dataset's replay file, converted from the shared data when missing."""
    info = DATASETS[dataset]
    path = out / info["replay"]
    if not path.is_file():
        log(f"converting {dataset} from {data} -> {path}")
        _script(info["script"]).convert(data, path)
    return path


def load(path: Path) -> tuple[list[str], list[tuple[list[Any], list[Any]]]]:
    records, _ = read_recorded(path)
    ids = [problem for problem, _ in records]
    return ids, [([r.answer for r in recs], [r.correct for r in recs]) for recs in records.values()]


_PROBLEMS: dict[str, list[tuple[list[Any], list[Any]]]] = {}


def _problems(path: str) -> list[tuple[list[Any], list[Any]]]:
    if path not in _PROBLEMS:
        _PROBLEMS[path] = load(Path(path))[1]
    return _PROBLEMS[path]


def _simulate(path: str, name: str, args: dict[str, Any], orderings: int, seed: int,
              plotted: list[int] | None = None) -> dict[str, Any]:
    """One policy over every problem (run in a worker process). ``plotted``: the problems it scores
    in the plot, whose per-order sums the plot's intervals need (only with --plot)."""
    started = time.perf_counter()
    sim = simulate_stopping(make_policy(name, args), _problems(path), orderings=orderings, seed=seed)
    out = {"accuracy": sim.per_problem_accuracy, "samples": sim.per_problem_samples, "exhausted": sim.exhausted,
           "ordering_sd": sim.ordering_spread(), "seconds": time.perf_counter() - started}  # fmt: skip
    if plotted is not None:
        out["order_sums"] = (sim.correct[:, plotted].sum(axis=1), sim.drawn[:, plotted].sum(axis=1))
    return out


class _FirstK:
    """Majority@k over each order's first k samples, as a stopping rule: the same orders as the
    policies', for the plot's majority@N intervals."""

    def __init__(self, k: int) -> None:
        self.k = k

    def next_count(self, answers: Any, confidences: Any = None) -> int:
        return max(self.k - len(answers), 0)


def _majority_by_order(path: str, k: int, orderings: int, seed: int) -> np.ndarray:
    """Each order's accuracy of the majority of its first ``k`` samples (run in a worker process)."""
    return simulate_stopping(_FirstK(k), _problems(path), orderings=orderings, seed=seed).correct.mean(axis=1)


def _middle_95(values: np.ndarray) -> list[float]:
    return [float(v) for v in np.percentile(values, [2.5, 97.5])]


# ---- evaluation ----------------------------------------------------------------------------------
def summarise(acc: np.ndarray, samples: np.ndarray, maj40: np.ndarray, target: float, seed: int) -> dict[str, Any]:
    mean, lo, hi = bootstrap_ci(acc, seed=seed)
    delta, dlo, dhi = bootstrap_ci(acc - maj40, seed=seed)
    mean_samples = float(samples.mean())
    savings = MAX_SAMPLES / mean_samples
    meets_accuracy = bool(mean >= maj40.mean() - TOLERANCE)
    return {"accuracy": round(mean, 5), "accuracy_ci": [round(lo, 5), round(hi, 5)], "delta_vs_maj40": round(delta, 5),
            "delta_ci": [round(dlo, 5), round(dhi, 5)], "mean_samples": round(mean_samples, 3), "savings": round(savings, 2),
            "meets_accuracy": meets_accuracy, "meets_target": bool(meets_accuracy and savings >= target)}  # fmt: skip


def choose(rows: list[dict[str, Any]], idx: np.ndarray, maj40: np.ndarray, fold: int) -> dict[str, Any]:
    """The grid point with the most savings among those within tolerance on problems ``idx``
    (the most accurate one if none is), from scores that used nothing outside fold ``fold``."""
    scored = []
    for row in rows:
        acc, samples = row["select"][fold]
        ok = acc[idx].mean() >= maj40[idx].mean() - TOLERANCE
        scored.append((ok, MAX_SAMPLES / samples[idx].mean() if ok else acc[idx].mean(), row))
    return max(scored, key=lambda t: (t[0], t[1]))[2]


def evaluate(dataset: str, path: Path, args: argparse.Namespace, pool: concurrent.futures.Executor,
             intervals: dict[Any, Any] | None = None) -> dict[str, Any]:
    """The data set's figures; with ``intervals`` (for the plot, never in the JSON), also each
    point's middle 95% over the orders: ``(family, setting)`` and ``("maj", k)`` ->
    ``{"accuracy": [lo, hi], "samples": [lo, hi]}``."""
    info = DATASETS[dataset]
    ids, problems = load(path)
    n = len(problems)
    maj = {k: np.array([maj_at_k(a, c, k) for a, c in problems]) for k in KS}
    maj40 = maj[40]
    folds = np.array_split(np.random.default_rng(args.split_seed).permutation(n), 2)
    in_fold = np.zeros(n, dtype=np.int64)
    in_fold[folds[1]] = 1
    def fit(fold: np.ndarray) -> BayesStopping:
        return fit_bayes_stopping([problems[i][0] for i in fold], [problems[i][1] for i in fold], max_samples=MAX_SAMPLES)

    fitted = {f: fit(fold) for f, fold in enumerate(folds)}
    # For the held-out choice, fold f's own grid point is chosen by cross-fitting inside fold f.
    halves = {f: np.array_split(np.random.default_rng(args.split_seed + 1 + f).permutation(fold), 2) for f, fold in enumerate(folds)}
    inner = {(f, h): fit(halves[f][h]) for f in range(2) for h in range(2)}

    jobs = {}
    for family, name, fixed, key, values in GRID:
        for value in values:
            pargs = {**fixed, key: value, "max_samples": MAX_SAMPLES}
            if family in FITTED:
                for f in range(2):
                    jobs[(family, value, f)] = (name, {**fitted[f].args(), key: value})
                    for h in range(2):
                        jobs[(family, value, (f, h))] = (name, {**inner[(f, h)].args(), key: value})
            else:
                jobs[(family, value, None)] = (name, pargs)
    log(f"{dataset}: {len(jobs)} simulations x {args.orderings} orders x {n} problems")
    # The problems each simulation scores in the plot: a fitted one those of the fold it was not fitted on.
    plotted = {job: None if intervals is None or isinstance(job[2], tuple) else
               (list(range(n)) if job[2] is None else folds[1 - job[2]].tolist()) for job in jobs}  # fmt: skip
    futures = {job: pool.submit(_simulate, str(path), name, pargs, args.orderings, args.seed, plotted[job])
               for job, (name, pargs) in jobs.items()}  # fmt: skip
    majority_futures = {k: pool.submit(_majority_by_order, str(path), k, args.orderings, args.seed)
                        for k in (KS if intervals is not None else ())}  # fmt: skip
    results = {job: fut.result() for job, fut in futures.items()}
    if intervals is not None:
        for k, fut in majority_futures.items():
            intervals[("maj", k)] = {"accuracy": _middle_95(fut.result()), "samples": [float(k)] * 2}
        for family, _, _, _, values in GRID:
            for value in values:
                parts = [results[(family, value, f)] for f in ((0, 1) if family in FITTED else (None,))]
                correct, drawn = (sum(r["order_sums"][i] for r in parts) / n for i in (0, 1))
                intervals[(family, value)] = {"accuracy": _middle_95(correct), "samples": _middle_95(drawn)}

    rows: list[dict[str, Any]] = []
    total_exhausted, total_seconds = 0, 0.0
    for family, name, fixed, key, values in GRID:
        for value in values:
            if family in FITTED:
                # out-of-fold: problem i is scored by the parameters fitted on the other fold
                r0, r1 = results[(family, value, 0)], results[(family, value, 1)]
                acc = np.where(in_fold == 0, r1["accuracy"], r0["accuracy"])
                smp = np.where(in_fold == 0, r1["samples"], r0["samples"])
                select = {}
                for f in range(2):  # problems of fold f scored by the fit on the other half of fold f
                    other_half = np.zeros(n, dtype=np.int64)
                    other_half[halves[f][0]] = 1
                    a0, a1 = results[(family, value, (f, 0))], results[(family, value, (f, 1))]
                    select[f] = (np.where(other_half == 1, a1["accuracy"], a0["accuracy"]),
                                 np.where(other_half == 1, a1["samples"], a0["samples"]))  # fmt: skip
                seconds = r0["seconds"] + r1["seconds"]
                exhausted = r0["exhausted"] + r1["exhausted"]
                spread = r0["ordering_sd"]
            else:
                r = results[(family, value, None)]
                acc, smp = r["accuracy"], r["samples"]
                select = {0: (acc, smp), 1: (acc, smp)}
                seconds, exhausted, spread = r["seconds"], r["exhausted"], r["ordering_sd"]
            row = {"family": family, key: value, **summarise(acc, smp, maj40, info["target"], args.seed),
                   "ordering_sd": [round(spread[0], 5), round(spread[1], 3)]}  # fmt: skip
            total_exhausted += exhausted
            total_seconds += seconds
            row["scored"] = (acc, smp)  # dropped before output
            row["select"] = select
            rows.append(row)

    best: dict[str, Any] = {}
    heldout: dict[str, Any] = {}
    for family, *_ in GRID:
        mine = [r for r in rows if r["family"] == family]
        ok = [r for r in mine if r["meets_accuracy"]]
        pick = max(ok, key=lambda r: r["savings"]) if ok else max(mine, key=lambda r: r["accuracy"])
        best[family] = {k: v for k, v in pick.items() if k not in ("scored", "select")}
        # held-out: choose on fold f (a fitted policy: cross-fitted inside fold f), score on the other fold
        acc = np.zeros(n)
        smp = np.zeros(n)
        chosen = []
        for f in range(2):
            pick_f = choose(mine, folds[f], maj40, f)
            other = folds[1 - f]
            acc[other], smp[other] = pick_f["scored"][0][other], pick_f["scored"][1][other]
            chosen.append(next(v for k, v in pick_f.items() if k in ("window", "threshold", "cost")))
        heldout[family] = {"chosen_per_fold": chosen, **summarise(acc, smp, maj40, info["target"], args.seed)}
    for row in rows:
        row.pop("scored")
        row.pop("select")

    out = {
        "label": info["label"], "problems": n, "samples_per_problem": MAX_SAMPLES, "target_savings": info["target"],
        "maj_at_k": {str(k): round(float(v.mean()), 5) for k, v in maj.items()},
        "maj40_ci": [round(x, 5) for x in bootstrap_ci(maj40, seed=args.seed)[1:]],
        "accuracy_floor": round(float(maj40.mean()) - TOLERANCE, 5),
        "configs": rows, "best": best, "heldout": heldout,
        "ordering_sd": "per config: [sd over orders of the accuracy, of the mean samples]",
        "exhausted_walks": total_exhausted, "simulation_cpu_seconds": round(total_seconds, 1),
        "policies": {family: f"{name}:" + ",".join(f"{k}={v}" for k, v in {**fixed, "max_samples": MAX_SAMPLES}.items())
                     + (" + prior fitted out-of-fold" if family in FITTED else "") for family, name, fixed, _, _ in GRID},
        "fitted_example": {"fold": 0, "problems": len(folds[0]), "prior_atoms": len(fitted[0].prior or ())},
    }  # fmt: skip
    if args.e2e:
        out["e2e"] = e2e_check(dataset, path, ids, problems, best, fitted, args)
    return out


# ---- end to end: the same samples per problem from a real run -------------------------------------
def _run(path: Path, store: str, name: str, policy: str, policy_args: dict[str, Any], seed: int) -> dict[str, list[Any]]:
    run(name, f"replay:{path}", store=store, policy=policy, policy_args=policy_args, backend_options={"seed": seed}, concurrency=64)
    with open_store(store) as st:
        by_problem: dict[str, list[Any]] = defaultdict(list)
        for s in st.samples(name):
            by_problem[s.problem].append(s)
    return by_problem


def e2e_check(dataset: str, path: Path, ids: list[str], problems: list[Any], best: dict[str, Any],
              fitted: dict[int, BayesStopping], args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    started = time.perf_counter()
    policies = [("esc", {"window": best["esc"]["window"], "max_samples": MAX_SAMPLES}),
                ("adaptive", {"criterion": "beta", "threshold": best["adaptive-beta"]["threshold"], "max_samples": MAX_SAMPLES}),
                ("bayes", {**fitted[0].args(), "cost": best["bayes"]["cost"]})]  # fmt: skip
    out: dict[str, Any] = {"replay_seed": args.replay_seed, "problems": len(ids), "policies": {}}
    with tempfile.TemporaryDirectory(prefix="budgetlab-stopping-") as tmp:
        store = str(Path(tmp) / "e2e.db")
        full = _run(path, store, "all40", "fixed", {"k": MAX_SAMPLES}, args.replay_seed)
        in_draw_order = [([s.answer for s in full[pid]], [s.correct for s in full[pid]]) for pid in ids]
        identity = [np.arange(len(a)) for a, _ in in_draw_order]
        for name, pargs in policies:
            counts = {pid: len(v) for pid, v in _run(path, store, f"e2e-{name}", name, pargs, args.replay_seed).items()}
            sim = simulate_stopping(make_policy(name, pargs), in_draw_order, orders=identity)
            predicted = sim.drawn[0]
            actual = np.array([counts.get(pid, 0) for pid in ids])
            mismatched = [ids[i] for i in np.flatnonzero(predicted != actual)]
            out["policies"][name] = {"args": {k: v for k, v in pargs.items() if k not in ("prior", "calibrator")},
                                     "run_samples": int(actual.sum()), "simulated_samples": int(predicted.sum()),
                                     "identical_per_problem": not mismatched, "mismatched": mismatched[:5]}  # fmt: skip
    out["all_identical"] = all(p["identical_per_problem"] for p in out["policies"].values())
    out["seconds"] = round(time.perf_counter() - started, 2)
    log(f"{dataset}: end-to-end runs {'match' if out['all_identical'] else 'DIFFER FROM'} the simulator")
    return out


# ---- output --------------------------------------------------------------------------------------
def pareto_front(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The (mean samples, accuracy) points that no other point beats on both counts (as few
    samples or fewer and a higher accuracy), in order of samples."""
    front: list[tuple[float, float]] = []
    for samples, accuracy in sorted(points, key=lambda p: (p[0], -p[1])):
        if not front or accuracy > front[-1][1]:
            front.append((samples, accuracy))
    return front


def plot_pareto(result: dict[str, Any], path: Path, intervals: dict[str, dict[Any, Any]] | None = None) -> Path:
    """Accuracy against mean samples per problem: each policy over its grid, majority@N, the
    Pareto front of them all, and the accuracy condition; one panel per data set (PNG).
    ``intervals`` (per data set, from :func:`evaluate`) adds each point's middle 95% over the
    orders as error bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    datasets = result["datasets"]
    fig = Figure(figsize=(6.5 * len(datasets), 5.2), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(datasets), squeeze=False)[0]
    families = list(dict.fromkeys(r["family"] for d in datasets.values() for r in d["configs"]))
    colour = {family: f"C{i}" for i, family in enumerate(families)}
    for ax, (name, d) in zip(axes, datasets.items()):
        spans = (intervals or {}).get(name, {})
        points: list[tuple[float, float]] = []
        extent: list[float] = [d["accuracy_floor"]]  # what the y axis must show: every point, bar and the condition
        for family in families:
            rows = sorted((r for r in d["configs"] if r["family"] == family), key=lambda r: r["mean_samples"])
            xs, ys = [r["mean_samples"] for r in rows], [r["accuracy"] for r in rows]
            ax.plot(xs, ys, marker="o", ms=4, lw=1, color=colour[family], label=family)
            bars = [spans.get((family, next(r[k] for k in ("window", "threshold", "cost") if k in r))) for r in rows]
            extent += _error_bars(ax, xs, ys, bars, colour[family])
            points += zip(xs, ys)
        ks = [int(k) for k in d["maj_at_k"]]
        majs = [d["maj_at_k"][str(k)] for k in ks]
        ax.plot(ks, majs, ls="--", marker="s", ms=5, color="black", label="majority@N (whole pool)")
        extent += _error_bars(ax, [float(k) for k in ks], majs, [spans.get(("maj", k)) for k in ks], "black")
        for k, value in zip(ks, majs):
            ax.annotate(f"maj@{k}", (k, value), textcoords="offset points", xytext=(4, -11), fontsize="x-small")
        points += zip(map(float, ks), majs)
        front = pareto_front(points)
        ax.step([x for x, _ in front], [y for _, y in front], where="post", color="grey", lw=3, alpha=0.35,
                label="Pareto front", zorder=0)  # fmt: skip
        ax.axhline(d["accuracy_floor"], color="grey", ls=":", lw=1, label=f"maj@{MAX_SAMPLES} - {TOLERANCE:g}")
        ax.set_xscale("log")
        ticks = [1, 2, 3, 5, 10, 20, MAX_SAMPLES]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(t) for t in ticks])
        extent += [y for _, y in points]
        margin = 0.04 * (max(extent) - min(extent) or 0.01)
        ax.set_ylim(max(0.0, min(extent) - margin), min(1.0, max(extent) + margin))
        ax.set_xlabel("mean samples per problem")
        ax.set_ylabel("accuracy of the selected answer")
        bars_are = "; bars: the middle 95% of the orders' results" if spans else ""
        ax.set_title(f"{d['label']}\n{result['orderings']} random orders per problem{bars_are}", fontsize="medium")
        ax.grid(True, alpha=0.35)
    # One legend under the panels: the data fill each panel, so no corner of it is free.
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4), fontsize="small")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, format="png")
    return out


def _error_bars(ax: Any, xs: list[float], ys: list[float], spans: list[dict[str, list[float]] | None],
                colour: str) -> list[float]:
    """Thin bars over each point's middle 95% of the orders (accuracy up and down, mean samples
    across); the bars' ends, for the axis to fit."""
    have = [(x, y, s) for x, y, s in zip(xs, ys, spans) if s]
    if not have:
        return []
    x, y = np.array([h[0] for h in have]), np.array([h[1] for h in have])
    acc, smp = np.array([h[2]["accuracy"] for h in have]), np.array([h[2]["samples"] for h in have])
    # The point is the mean over the orders, the bar their percentiles: clip the odd rounding gap.
    yerr = np.clip([y - acc[:, 0], acc[:, 1] - y], 0, None)
    xerr = np.clip([x - smp[:, 0], smp[:, 1] - x], 0, None)
    ax.errorbar(x, y, yerr=yerr, xerr=xerr if xerr.any() else None, fmt="none", ecolor=colour, elinewidth=0.6,
                capsize=1.5, capthick=0.6, alpha=0.55, zorder=1)  # fmt: skip
    return [float(v) for v in acc.ravel()]


def table(result: dict[str, Any]) -> str:
    lines = [f"budgetlab stopping benchmark: {result['orderings']} random orders per problem, seed {result['seed']}; "
             f"accuracy condition: within {TOLERANCE} of majority@40"]  # fmt: skip
    for dataset, d in result["datasets"].items():
        lines += ["", f"== {d['label']}: {d['problems']} problems x {d['samples_per_problem']} samples; "
                      f"target >= {d['target_savings']:g}x fewer samples at accuracy >= {d['accuracy_floor']:.4f}"]  # fmt: skip
        majs = "  ".join(f"maj@{k} {v:.4f}" for k, v in d["maj_at_k"].items())
        lines.append(f"   exact majority vote over the pool: {majs}  (maj@40 95% CI {d['maj40_ci'][0]:.4f}-{d['maj40_ci'][1]:.4f})")
        head = f"   {'policy':<20}{'setting':<17}{'accuracy':>9}{'95% CI':>17}{'vs maj@40':>11}{'samples':>9}{'savings':>9}  {'acc ok':<7}{'target':<7}"
        lines += [head, "   " + "-" * (len(head) - 3)]
        for r in d["configs"]:
            key = next(k for k in ("window", "threshold", "cost") if k in r)
            setting = f"{key}={r[key]:g}"
            ci = f"{r['accuracy_ci'][0]:.4f}-{r['accuracy_ci'][1]:.4f}"
            lines.append(f"   {r['family']:<20}{setting:<17}{r['accuracy']:>9.4f}{ci:>17}{r['delta_vs_maj40']:>+11.4f}"
                         f"{r['mean_samples']:>9.2f}{r['savings']:>8.2f}x  {'yes' if r['meets_accuracy'] else 'no':<7}"
                         f"{'MET' if r['meets_target'] else '-':<7}")  # fmt: skip
        lines.append("   best per policy (most savings within the accuracy condition; grid point chosen on these problems):")
        for family, r in d["best"].items():
            key = next(k for k in ("window", "threshold", "cost") if k in r)
            state = "target MET" if r["meets_target"] else ("accuracy ok, savings short" if r["meets_accuracy"] else "accuracy condition not met")
            setting = f"{key}={r[key]:g}"
            lines.append(f"     {family:<20}{setting:<17}acc {r['accuracy']:.4f} ({r['delta_vs_maj40']:+.4f})  "
                         f"{r['mean_samples']:.2f} samples  {r['savings']:.2f}x  {state}")  # fmt: skip
        lines.append("   held-out choice (grid point chosen on one fold, scored on the other, both ways):")
        for family, r in d["heldout"].items():
            state = "target MET" if r["meets_target"] else ("accuracy ok, savings short" if r["meets_accuracy"] else "accuracy condition not met")
            chosen = "chosen " + "/".join(f"{v:g}" for v in r["chosen_per_fold"])
            lines.append(f"     {family:<20}{chosen:<24}acc {r['accuracy']:.4f} ({r['delta_vs_maj40']:+.4f})  "
                         f"{r['mean_samples']:.2f} samples  {r['savings']:.2f}x  {state}")  # fmt: skip
        if "e2e" in d:
            e = d["e2e"]
            parts = ", ".join(f"{k} {v['run_samples']} vs {v['simulated_samples']} samples"
                              f"{'' if v['identical_per_problem'] else ' MISMATCH ' + str(v['mismatched'])}" for k, v in e["policies"].items())  # fmt: skip
            lines.append(f"   end-to-end (real runs, replay seed {e['replay_seed']}, {e['problems']} problems): "
                         f"{'identical per problem' if e['all_identical'] else 'DIFFERENT'}: {parts}")  # fmt: skip
    lines += ["", "target met: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in result["target_met"].items())
              + "   (held-out choice: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in result["target_met_heldout"].items()) + ")",
              "bayes = budgetlab's Bayes-optimal stopping; its prior (with each atom's chance that its top/second answer is "
              "right) is cross-fitted on 2 folds of problems; bayes-uniform uses no fitted parameters."]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orderings", type=int, default=200, help="random orders per problem (default 200)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the orders and bootstraps (default 0)")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the 2-fold problem split for fitted policies (default 0)")
    parser.add_argument("--replay-seed", type=int, default=7, help="replay order of the end-to-end runs (default 7)")
    parser.add_argument("--datasets", default="last_letters,date", help="comma-separated: last_letters, date")
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data", help="shared data folder (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "replay", help="where converted replay files go (default out/replay, git-ignored)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes (default: 2)")
    parser.add_argument("--no-e2e", dest="e2e", action="store_false", help="skip the end-to-end runs")
    parser.add_argument("--json", action="store_true", help="after the table, print one JSON object, last")
    parser.add_argument("--plot", type=Path, help="also write the Pareto plot (PNG, a panel per data set) to this path")
    args = parser.parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = [d for d in datasets if d not in DATASETS]
    if unknown or not datasets or args.orderings < 1 or args.jobs < 1:
        parser.error(f"--datasets takes {', '.join(DATASETS)} (got {args.datasets!r}); --orderings and --jobs must be >= 1")

    started = time.perf_counter()
    paths = {}
    for dataset in datasets:
        try:
            paths[dataset] = replay_file(dataset, args.data, args.out)
        except FileNotFoundError as err:
            print(f"stopping bench: cannot read the shared data: {err}", file=sys.stderr)
            if args.json:
                print(json.dumps({"skipped": str(err), "target_met": {d: False for d in datasets}}))
            return 2
    result: dict[str, Any] = {"orderings": args.orderings, "seed": args.seed, "split_seed": args.split_seed,
                              "tolerance": TOLERANCE, "datasets": {}}  # fmt: skip
    # Each point's spread over the orders, for the plot only: the table and the JSON stay as they are.
    intervals: dict[str, dict[Any, Any]] = {dataset: {} for dataset in datasets}
    with concurrent.futures.ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for dataset in datasets:
            result["datasets"][dataset] = evaluate(dataset, paths[dataset], args, pool, intervals[dataset] if args.plot else None)
    result["target_met"] = {d: any(r["meets_target"] for r in v["configs"]) for d, v in result["datasets"].items()}
    result["target_met_by"] = {d: sorted({r["family"] for r in v["configs"] if r["meets_target"]}) for d, v in result["datasets"].items()}
    result["target_met_heldout"] = {d: any(r["meets_target"] for r in v["heldout"].values()) for d, v in result["datasets"].items()}
    result["headline"] = {d: {f: {"accuracy": v["best"][f]["accuracy"], "delta_vs_maj40": v["best"][f]["delta_vs_maj40"],
                                  "mean_samples": v["best"][f]["mean_samples"], "savings": v["best"][f]["savings"],
                                  "meets_target": v["best"][f]["meets_target"]} for f in v["best"]}
                          for d, v in result["datasets"].items()}  # fmt: skip
    result["seconds"] = round(time.perf_counter() - started, 1)
    if args.plot:
        result["plot"] = str(plot_pareto(result, args.plot, intervals))
        log(f"Pareto plot written to {result['plot']}")
    print(table(result))
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
