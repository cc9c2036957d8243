"""Benchmark ``budgetlab forecast``: does a 5% pilot predict the whole run's tokens within 10%?

On this machine, CPU only: the embedded backend (SmolLM2-135M, ``smollm2``), the generated
arithmetic task (``--problems`` 2-digit problems, ``+`` and ``-``), k=``--k`` samples per problem,
temperature 0.8, max_tokens ``--max-tokens``, the exact verifier.

1. ``budgetlab.forecast.forecast`` records the run, draws its pilot (a seeded random 5% of the
   problems, all k samples each) through the real run loop into the store, and predicts the
   planned run's total tokens, dollars, wall time and pass@k / maj@k, with 90% intervals.
2. ``budgetlab.run`` on the same run name then draws the rest; the pilot's samples are reused
   (the bench checks that no sample is drawn twice: the run's samples are exactly
   problems x k). Actual totals come from the store.
3. Many more pilots, without new model calls: ``--resamples`` random 5% subsets of the finished
   run's problems are fed to the same prediction code, to show how often a 5% pilot lands within
   10% (one real pilot is one draw of this).

Target: the real pilot's predicted total tokens within 10% of the full run's.

Usage::

    python bench/forecast.py            # a few minutes on 2 cores
    python bench/forecast.py --json     # the table, then one JSON object, last
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from budgetlab.analysis import build_report
from budgetlab.core import SamplingConfig
from budgetlab.forecast import Scenario, forecast, predict
from budgetlab.runner import run
from budgetlab.stores import open_store
from budgetlab.tasks import arithmetic_problems

TARGET = 0.10
PILOT = 0.05


def log(msg: str) -> None:
    print(f"[forecast] {msg}", file=sys.stderr, flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--problems", type=int, default=200)
    ap.add_argument("-k", "--k", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--resamples", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    try:
        from budgetlab.backends._llama._models import import_llama

        import_llama()
    except Exception as exc:  # noqa: BLE001 - any reason the model cannot load
        sys.exit(f"bench/forecast.py needs the embedded backend (pip install 'budgetlab[embedded]'): {exc}")

    problems = arithmetic_problems(n=args.problems, digits=2, ops="+-")
    config = SamplingConfig(
        model="smollm2", backend="embedded", label="smollm2-t0.8",
        params={"temperature": 0.8, "max_tokens": args.max_tokens, "stop": ["\n"]},
    )
    with tempfile.TemporaryDirectory() as tmp:
        store = open_store(str(Path(tmp) / "forecast.db"))
        name = "forecast-bench"
        log(f"pilot: {PILOT:.0%} of {args.problems} problems x k={args.k}")
        fc, pilot = forecast(
            name, "embedded", store=store, pilot=PILOT, problems=problems, configs=[config], policy="fixed",
            policy_args={"k": args.k}, backend_options={"threads": args.threads}, seed=args.seed,
            scenarios=[Scenario("k=16", k=16)],
        )
        planned = fc.rows[0]
        log(f"pilot drew {pilot.drawn} samples in {pilot.seconds:.1f} s; predicted tokens {planned.tokens.value:,.0f}")
        started = time.perf_counter()
        outcome = run(name, store=store)
        rest_seconds = time.perf_counter() - started
        info = store.get_run(name)
        samples = store.samples(name)
        report = build_report(store, name, n_boot=200)["configs"][config.name]
        store.close()

    actual_tokens = info.spent.tokens
    err = planned.tokens.value / actual_tokens - 1
    inside = planned.tokens.lo <= actual_tokens <= planned.tokens.hi
    actual_seconds = pilot.seconds + rest_seconds
    no_double = len(samples) == args.problems * args.k and outcome.drawn == args.problems * args.k - pilot.drawn
    pass_pred = planned.pass_at_k[config.name]
    maj_pred = planned.maj_at_k.get(config.name)
    pass_true = report["pass_at_k"][str(args.k)]
    maj_true = report["maj_at_k"].get(str(args.k))

    # More pilots from the finished run's samples (no model calls).
    rng = np.random.default_rng(args.seed)
    ids = [p.id for p in problems]
    size = max(3, int(np.ceil(PILOT * len(ids))))
    errors, covered = [], []
    for _ in range(args.resamples):
        chosen = list(rng.choice(ids, size=size, replace=False))
        f = predict(name, problems, [config], samples, chosen, args.k, [Scenario("planned", k=args.k)], n_boot=100)
        t = f.rows[0].tokens
        errors.append(t.value / actual_tokens - 1)
        covered.append(t.lo <= actual_tokens <= t.hi)
    abs_err = np.abs(errors)

    print(f"\nforecast of {args.problems} arithmetic problems x k={args.k} (smollm2, T=0.8, max_tokens "
          f"{args.max_tokens}) from a {PILOT:.0%} pilot ({len(pilot.problems)} problems, {pilot.drawn} samples)")
    print(f"{'quantity':<22} {'predicted':>12} {'90% interval':>25} {'actual':>12} {'error':>8}")
    print(f"{'total tokens':<22} {planned.tokens.value:12,.0f} {planned.tokens.lo:12,.0f}-{planned.tokens.hi:<12,.0f} "
          f"{actual_tokens:12,} {100 * err:+7.1f}%")
    print(f"{'dollars':<22} {planned.dollars.value:12.4f} {'':>25} {info.spent.dollars:12.4f} {'(local model: free)':>8}")
    if planned.seconds is not None:
        s = planned.seconds
        print(f"{'wall time, s':<22} {s.value:12.1f} {s.lo:12.1f}-{s.hi:<12.1f} {actual_seconds:12.1f} "
              f"{100 * (s.value / actual_seconds - 1):+7.1f}%  (actual = pilot + rest, each loads the model)")
    print(f"{f'pass@{args.k}, %':<22} {100 * pass_pred.value:12.1f} {100 * pass_pred.lo:12.1f}-{100 * pass_pred.hi:<12.1f} "
          f"{100 * pass_true:12.1f}")
    if maj_pred is not None and maj_true is not None:
        print(f"{f'maj@{args.k}, %':<22} {100 * maj_pred.value:12.1f} {100 * maj_pred.lo:12.1f}-{100 * maj_pred.hi:<12.1f} "
              f"{100 * maj_true:12.1f}")
    print(f"pilot reused by the full run (no sample drawn twice): {no_double}")
    print(f"{args.resamples} more 5% pilots from the finished run: |token error| median {100 * np.median(abs_err):.1f}%, "
          f"95th percentile {100 * np.quantile(abs_err, 0.95):.1f}%, max {100 * abs_err.max():.1f}%; "
          f"within 10%: {100 * np.mean(abs_err <= TARGET):.0f}%; 90% interval holds the truth: {100 * np.mean(covered):.0f}%")
    target_met = {"forecast_tokens_within_10pct": bool(abs(err) <= TARGET)}
    print(f"target (5% pilot predicts total tokens within 10%): {target_met['forecast_tokens_within_10pct']}")
    if args.json:
        print(json.dumps({
            "bench": "forecast", "problems": args.problems, "k": args.k, "max_tokens": args.max_tokens,
            "pilot_problems": len(pilot.problems), "pilot_samples": pilot.drawn,
            "predicted_tokens": planned.tokens.value, "predicted_tokens_interval": [planned.tokens.lo, planned.tokens.hi],
            "actual_tokens": actual_tokens, "token_error": err, "token_interval_holds": inside,
            "predicted_seconds": None if planned.seconds is None else planned.seconds.value, "actual_seconds": actual_seconds,
            "predicted_pass_at_k": pass_pred.value, "actual_pass_at_k": pass_true,
            "predicted_maj_at_k": None if maj_pred is None else maj_pred.value, "actual_maj_at_k": maj_true,
            "pilot_reused": no_double,
            "resampled_pilots": {"n": args.resamples, "median_abs_error": float(np.median(abs_err)),
                                 "p95_abs_error": float(np.quantile(abs_err, 0.95)), "max_abs_error": float(abs_err.max()),
                                 "within_10pct": float(np.mean(abs_err <= TARGET)), "interval_coverage": float(np.mean(covered))},
            "target_met": target_met,
        }))


if __name__ == "__main__":
    main()
