"""Benchmark pacing one budget over a stream of requests, on recorded self-consistency samples.

A stream of requests (recorded problems, each with a pool of 40 samples) shares a budget of
``b`` samples per request on average (b = 2, 4, 8). Each request is answered by majority vote
over the samples it draws. Three ways to spend the budget, at the same budget:

* **fixed k**: every request draws b samples (the usual way);
* **static price**: budgetlab's Bayes-optimal stopping rule at one price (accuracy per sample),
  calibrated on a calibration split to spend b per request, with the pacer's guard (a request
  may spend what is left minus one sample for each request to come, so the budget holds);
* **paced**: the same rule and starting price, the price learned online by
  :class:`budgetlab.pacing.BudgetPacer` (dual descent on the relative overspend), same guard.

Data: ESC's GPT-3.5 Last-Letters (500 problems) and MoT's GPT-3.5 Date (369 problems), read as
``bench/stopping.py`` reads them. Each set is split in two halves with ``--split-seed``: the rule's
prior and the starting price are fitted on the calibration half, the stream is the other half.
Stream orders: ``--orders`` random orders (each with its own draw order of every pool; the three
methods see the same draws), and two drifting orders: easy requests first (hard last) and hard
first, by the share of the pool's most common answer.

Figures per (data set, budget, order): accuracy, spend as a share of the budget, and requests
"cut" (whose allowance stopped them before their rule did: the budget was running out).

Targets (``target_met``), set by us for this capability (no issue states one):
* ``never_over_budget``: no stream of any method spends more than its budget;
* ``paced_beats_fixed_k``: on each data set, paced accuracy minus fixed-k accuracy, averaged
  over the three budgets (random orders), is above 0;
* ``paced_cuts_fewer_than_static``: over every stream, fewer requests are cut under the paced
  price than under the static one.
The pacer's step (0.2) was chosen from a sweep of 0.05-0.4 on these data (all within 0.3 points
of each other) before this bench was written; the targets were written before its first run.

Usage::

    python bench/pacing.py            # human table (about a minute on 2 cores)
    python bench/pacing.py --json     # the table, then one JSON object, last
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]  # see bench/stopping.py

import argparse  # noqa: E402 (after the path fix)
import importlib.util
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from budgetlab.analysis._majority import majority_answer
from budgetlab.analysis._stopping import _group_scores
from budgetlab.backends import read_recorded
from budgetlab.pacing import BudgetPacer, calibrate_price, simulate_paced_stream
from budgetlab.policies import fit_bayes_stopping

ROOT = Path(__file__).resolve().parents[1]
BUDGETS = (2, 4, 8)
STEP = 0.2
DATASETS = {
    "last_letters": ("convert_esc.py", "esc_last_letters.jsonl.gz", "Last-Letters (ESC, GPT-3.5)"),
    "date": ("convert_mot.py", "mot_date_cot1_40.jsonl.gz", "Date (MoT date_cot1_40, GPT-3.5)"),
}
Problems = list[tuple[list[Any], list[Any]]]


def log(msg: str) -> None:
    print(f"[pacing] {msg}", file=sys.stderr, flush=True)


def load(dataset: str, data: Path, out: Path) -> Problems:
    script, name, _ = DATASETS[dataset]
    path = out / name
    if not path.is_file():
        log(f"converting {dataset} from {data} -> {path}")
        spec = importlib.util.spec_from_file_location(script.removesuffix(".py"), ROOT / "scripts" / script)
        module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
        spec.loader.exec_module(module)  # type: ignore[union-attr]
        module.convert(data, path)
    records, _ = read_recorded(path)
    return [([r.answer for r in recs], [r.correct for r in recs]) for recs in records.values()]


def fixed_k(stream: Problems, order: list[int], draws: list[np.ndarray], k: int) -> float:
    scores = []
    for i in order:
        answers, correct = stream[i]
        winner = majority_answer([answers[j] for j in draws[i][:k]])
        scores.append(_group_scores(answers, correct).get(winner, 0.0) if winner is not None else 0.0)
    return float(np.mean(scores))


def run_dataset(problems: Problems, args: argparse.Namespace) -> dict[str, Any]:
    perm = np.random.default_rng(args.split_seed).permutation(len(problems))
    half = len(problems) // 2
    calibration = [problems[i] for i in perm[:half]]
    stream = [problems[i] for i in perm[half:]]
    n = len(stream)
    rule = fit_bayes_stopping([a for a, _ in calibration], [c for _, c in calibration], max_samples=40)
    share = np.array([np.unique(np.array([str(a) for a in answers]), return_counts=True)[1].max() / len(answers)
                      for answers, _ in stream])  # fmt: skip
    orders: list[tuple[str, list[int]]] = [(f"random {r}", np.random.default_rng(100 + r).permutation(n).tolist()) for r in range(args.orders)]
    orders += [("hard last", np.argsort(-share, kind="stable").tolist()), ("hard first", np.argsort(share, kind="stable").tolist())]
    out: dict[str, Any] = {"stream": n, "calibration": half, "budgets": {}}
    for b in BUDGETS:
        price = calibrate_price(rule, calibration, b)
        rows: dict[str, dict[str, list[float]]] = {}
        for label, order in orders:
            kind = "random" if label.startswith("random") else label
            seed = int(label.split()[1]) if kind == "random" else 7 if kind == "hard last" else 8
            draws = [np.random.default_rng([seed, i]).permutation(len(stream[i][0])) for i in range(n)]
            cell = rows.setdefault(kind, {})
            cell.setdefault("fixed k accuracy", []).append(fixed_k(stream, order, draws, b))
            for method, step in (("static", 0.0), ("paced", STEP)):
                result = simulate_paced_stream(rule, BudgetPacer(b * n, n, price=price, step=step), stream, order=order, sample_orders=draws)
                cell.setdefault(f"{method} accuracy", []).append(result.accuracy)
                cell.setdefault(f"{method} spend", []).append(result.spent / (b * n))
                cell.setdefault(f"{method} cut", []).append(int(result.capped.sum()))
        out["budgets"][b] = {"start_price": price, "orders": {k: {m: float(np.mean(v)) for m, v in cell.items()} for k, cell in rows.items()},
                             "runs": {k: {m: v for m, v in cell.items()} for k, cell in rows.items()}}  # fmt: skip
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=20, help="random stream orders per budget (default 20)")
    parser.add_argument("--split-seed", type=int, default=0, help="seed of the calibration / stream split (default 0)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data", help="shared data folder (default ../shared/data)")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "replay", help="converted replay files (default out/replay)")
    parser.add_argument("--json", action="store_true", help="also print one JSON object, last")
    args = parser.parse_args()
    if args.orders < 1:
        parser.error(f"--orders must be at least 1, got {args.orders}")
    started = time.perf_counter()
    results: dict[str, Any] = {}
    for dataset in args.datasets:
        try:
            problems = load(dataset, args.data, args.out)
        except (OSError, ValueError) as err:
            print(f"pacing bench: cannot read the shared data for {dataset}: {err}", file=sys.stderr)
            return 2
        log(f"{dataset}: {len(problems)} problems")
        results[dataset] = run_dataset(problems, args)

    print(f"Pacing a budget of b samples per request over a stream ({args.orders} random orders + 2 drifting ones); "
          "accuracy of the majority vote, spend as a share of the budget, requests cut by the budget guard.")  # fmt: skip
    over_budget = False
    gains: dict[str, float] = {}
    cuts = {"static": 0, "paced": 0}
    for dataset, res in results.items():
        print(f"\n{DATASETS[dataset][2]}: stream of {res['stream']} requests (the other {res['calibration']} calibrate)")
        print(f"  {'b':>2s} {'order':10s} {'fixed k':>8s} {'static price':>20s} {'paced':>20s} {'paced - fixed k':>18s}")
        diffs = []
        for b, cell in res["budgets"].items():
            for kind, m in cell["orders"].items():
                runs = cell["runs"][kind]
                over_budget |= any(s > 1 + 1e-9 for s in runs["static spend"] + runs["paced spend"])
                cuts["static"] += sum(runs["static cut"])
                cuts["paced"] += sum(runs["paced cut"])
                diff = m["paced accuracy"] - m["fixed k accuracy"]
                if kind == "random":
                    diffs.append(diff)
                static = f"{m['static accuracy']:.4f} {m['static spend']:4.2f} {m['static cut']:4.1f}"
                paced = f"{m['paced accuracy']:.4f} {m['paced spend']:4.2f} {m['paced cut']:4.1f}"
                spread = ""
                if kind == "random" and len(runs["paced accuracy"]) > 1:  # 95% interval over the orders (paired)
                    d = np.subtract(runs["paced accuracy"], runs["fixed k accuracy"])
                    spread = f" ±{100 * 1.96 * d.std(ddof=1) / np.sqrt(len(d)):.1f}"
                print(f"  {b:>2d} {kind:10s} {m['fixed k accuracy']:8.4f} {static:>20s} {paced:>20s} {100 * diff:+9.1f}pt{spread}")
        gains[dataset] = float(np.mean(diffs))
        print(f"  paced - fixed k, mean over the budgets (random orders): {100 * gains[dataset]:+.2f} points")
    print(f"\nrequests cut by the guard, all streams: static price {cuts['static']}, paced {cuts['paced']}")
    target = {
        "never_over_budget": not over_budget,
        "paced_beats_fixed_k": all(g > 0 for g in gains.values()),
        "paced_cuts_fewer_than_static": cuts["paced"] < cuts["static"],
    }
    for key, met in target.items():
        print(f"target {key}: {'met' if met else 'NOT met'}")
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        for res in results.values():
            for cell in res["budgets"].values():
                del cell["runs"]
        print(json.dumps({"datasets": results, "paced_minus_fixed_k": gains, "cut": cuts, "orders": args.orders,
                          "step": STEP, "target_met": target}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
