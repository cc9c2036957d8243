"""Benchmark the sample ledger: the whole run loop, resume and report, on a replayed run.

Measures, on a generated replay file (default 100,000 samples: 12,500 problems x 1 config x k=8)
recorded into a fresh SQLite store in a temporary folder:

(a) throughput: samples recorded per second through ``budgetlab.runner.run`` (the Python entry
    point behind ``budgetlab run``, without a progress bar): replay file parsing, policy, claims,
    draws, verification and settling in the store, all included. Target: >= 5,000 samples/s.
(b) resume:
    * complete: running the finished run again (it must find nothing to draw), whole call;
    * halfway: the run is first stopped by a samples budget of N/2, then resumed with the budget
      removed. Reported: the resume overhead, defined as the wall time from calling ``run()``
      until the first newly drawn sample is recorded in the store (replay parsing, loading the
      N/2 stored samples, recovering claims, the policy's first proposal, the first claim, draw
      and settle), and the whole resume call (which also draws the other N/2 samples).
(c) report: ``build_report`` on the complete run (pass@k and maj@k with bootstrap intervals).

Usage::

    python bench/ledger.py                 # human table
    python bench/ledger.py --json          # one JSON object, printed last
    python bench/ledger.py --samples 20000 --k 4 --repeat 3 --profile
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import budgetlab
from budgetlab.analysis import build_report
from budgetlab.backends import read_recorded
from budgetlab.core import Budget
from budgetlab.runner import Progress, run
from budgetlab.stores import open_store

TARGET_SAMPLES_PER_S = 5_000.0
NAME = "bench"


def log(msg: str) -> None:
    print(f"[ledger] {msg}", file=sys.stderr, flush=True)


def write_replay(path: Path, samples: int, k: int, configs: int, seed: int = 0) -> tuple[int, int]:
    """A samples-format replay file with exactly k recordings per (problem, config)."""
    rng = random.Random(seed)
    per_problem = k * configs
    problems = max(1, samples // per_problem)
    names = [f"cfg{c}" for c in range(configs)]
    with open(path, "w", encoding="utf-8") as fh:
        lines = []
        for p in range(problems):
            pid = f"p{p:07d}"
            truth = str(rng.randint(10, 999))
            skill = rng.random()
            for config in names:
                for _ in range(k):
                    correct = rng.random() < skill
                    answer = truth if correct else str(rng.randint(10, 999))
                    completion = rng.randint(50, 400)
                    lines.append(
                        json.dumps(
                            {
                                "problem": pid,
                                "config": config,
                                "answer": answer,
                                "correct": correct,
                                "prompt_tokens": 100,
                                "completion_tokens": completion,
                                "cost": round(completion * 1e-6, 9),
                            }
                        )
                    )
            if len(lines) >= 10_000:
                fh.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            fh.write("\n".join(lines) + "\n")
    return problems, problems * per_problem


def fresh_store(folder: Path, label: str) -> str:
    path = folder / f"{label}.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    return str(path)


def full_run(replay: Path, store: str, k: int, budget: Budget | None = None, on_progress=None):  # type: ignore[no-untyped-def]
    return run(
        NAME,
        f"replay:{replay}",
        store=store,
        policy="fixed",
        policy_args={"k": k},
        budget=budget,
        on_progress=on_progress,
    )


def measure(args: argparse.Namespace, folder: Path) -> dict:
    replay = folder / "replay.jsonl"
    t0 = time.perf_counter()
    problems, total = write_replay(replay, args.samples, args.k, args.configs)
    gen_s = time.perf_counter() - t0
    log(f"replay file: {total:,} samples ({problems:,} problems x {args.configs} config x k={args.k}) in {gen_s:.1f} s")

    t0 = time.perf_counter()
    read_recorded(replay)
    parse_s = time.perf_counter() - t0

    # (a) throughput through the whole run loop, fresh store each time
    run_times: list[float] = []
    cpu_times: list[float] = []
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    store = ""
    for i in range(args.repeat):
        store = fresh_store(folder, f"full{i}")
        c0, t0 = time.process_time(), time.perf_counter()
        outcome = full_run(replay, store, args.k)
        elapsed = time.perf_counter() - t0
        cpu_times.append(time.process_time() - c0)
        if outcome.drawn != total or outcome.state.value != "done":
            raise SystemExit(f"run {i} drew {outcome.drawn:,} of {total:,} samples ({outcome.state.value}); benchmark invalid")
        run_times.append(elapsed)
        log(
            f"run {i + 1}/{args.repeat}: {total:,} samples in {elapsed:.2f} s = {total / elapsed:,.0f} samples/s"
            f" ({cpu_times[-1]:.2f} s CPU)"
        )
    best_i = min(range(len(run_times)), key=run_times.__getitem__)
    best = run_times[best_i]

    # (b1) resume a complete run: nothing to do
    t0 = time.perf_counter()
    outcome = run(NAME, store=store)
    resume_complete_s = time.perf_counter() - t0
    if outcome.drawn != 0:
        raise SystemExit(f"resuming the complete run drew {outcome.drawn} samples; expected 0")
    log(f"resume of the complete run: {resume_complete_s:.2f} s, 0 samples drawn")

    # (b2) resume a run stopped halfway
    half = total // 2
    half_store = fresh_store(folder, "half")
    t0 = time.perf_counter()
    first = full_run(replay, half_store, args.k, budget=Budget(samples=half))
    first_half_s = time.perf_counter() - t0
    if first.drawn != half:
        raise SystemExit(f"the first half drew {first.drawn:,} samples; expected {half:,}")
    first_new: list[float] = []

    def on_progress(p: Progress) -> None:
        if not first_new and p.finished > half:
            first_new.append(time.perf_counter())

    t0 = time.perf_counter()
    second = run(NAME, store=half_store, budget=Budget(), on_progress=on_progress)
    resume_half_s = time.perf_counter() - t0
    if second.drawn != total - half or not first_new:
        raise SystemExit(f"the resume drew {second.drawn:,} samples; expected {total - half:,}")
    overhead_s = first_new[0] - t0
    log(f"resume halfway: first new sample after {overhead_s:.2f} s; whole resume {resume_half_s:.2f} s")

    # (c) report of the complete run
    with open_store(store) as st:
        t0 = time.perf_counter()
        report = build_report(st, NAME)
        report_s = time.perf_counter() - t0
    if report["samples"] != total:
        raise SystemExit(f"the report counts {report['samples']:,} samples; expected {total:,}")
    log(f"report: {report_s:.2f} s")

    throughput = total / best
    return {
        "benchmark": "ledger",
        "samples": total,
        "problems": problems,
        "configs": args.configs,
        "k": args.k,
        "repeat": args.repeat,
        "throughput_samples_per_s": round(throughput, 1),
        "run_seconds": round(best, 3),
        "run_seconds_all": [round(t, 3) for t in run_times],
        "run_seconds_median": round(statistics.median(run_times), 3),
        "run_cpu_seconds": round(cpu_times[best_i], 3),
        "throughput_cpu_samples_per_s": round(total / cpu_times[best_i], 1),
        "load_average_1min": None if load_before is None else round(load_before, 2),
        "replay_parse_seconds": round(parse_s, 3),
        "resume_complete_seconds": round(resume_complete_s, 3),
        "resume_half_first_new_sample_seconds": round(overhead_s, 3),
        "resume_half_total_seconds": round(resume_half_s, 3),
        "resume_half_drawn": second.drawn,
        "first_half_seconds": round(first_half_s, 3),
        "report_seconds": round(report_s, 3),
        "definitions": {
            "throughput_samples_per_s": "samples / wall time of budgetlab.runner.run() on a fresh store (best of --repeat)",
            "throughput_cpu_samples_per_s": "samples / process CPU time of that run (less sensitive to a busy machine)",
            "resume_complete_seconds": "wall time of run() on the finished run; it draws 0 samples",
            "resume_half_first_new_sample_seconds": (
                "run stopped by budget samples=N/2, resumed with no budget: wall time from calling run() "
                "until the first newly drawn sample is recorded in the store"
            ),
            "resume_half_total_seconds": "the whole resume call, drawing the remaining N/2 samples",
            "report_seconds": "build_report() on the complete run (n_boot=1000)",
        },
        "target": {"throughput_samples_per_s": TARGET_SAMPLES_PER_S},
        "target_met": {"throughput": throughput >= TARGET_SAMPLES_PER_S},
        "budgetlab": budgetlab.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
    }


def profile_run(args: argparse.Namespace, folder: Path, top: int = 15) -> str:
    """cProfile of one whole run on a fresh store: top functions by cumulative and by own time."""
    replay = folder / "replay.jsonl"
    store = fresh_store(folder, "profiled")
    profiler = cProfile.Profile()
    profiler.enable()
    full_run(replay, store, args.k)
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.strip_dirs()
    out.write(f"--- profile of one whole run ({args.samples:,} samples requested), top {top} by cumulative time ---\n")
    stats.sort_stats("cumulative").print_stats(top)
    out.write(f"--- top {top} by own time ---\n")
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


def table(r: dict) -> str:
    ok = "yes" if r["target_met"]["throughput"] else "NO"
    rows = [
        ("workload", f"{r['samples']:,} samples = {r['problems']:,} problems x {r['configs']} config x k={r['k']}, replay backend, SQLite"),
        ("(a) throughput", f"{r['throughput_samples_per_s']:,.0f} samples/s  (target >= {TARGET_SAMPLES_PER_S:,.0f}: {ok})"),
        ("    whole run", f"{r['run_seconds']:.2f} s best, {r['run_seconds_median']:.2f} s median of {r['repeat']}"),
        ("    by CPU time", f"{r['throughput_cpu_samples_per_s']:,.0f} samples/s ({r['run_cpu_seconds']:.2f} s CPU; 1-min load average {r['load_average_1min']})"),
        ("    replay parse (1 pass)", f"{r['replay_parse_seconds']:.2f} s"),
        ("(b) resume, complete run", f"{r['resume_complete_seconds']:.2f} s (0 samples drawn)"),
        ("    resume halfway: overhead", f"{r['resume_half_first_new_sample_seconds']:.2f} s until the first new sample is recorded"),
        ("    resume halfway: whole", f"{r['resume_half_total_seconds']:.2f} s ({r['resume_half_drawn']:,} samples drawn)"),
        ("    first half (budget N/2)", f"{r['first_half_seconds']:.2f} s"),
        ("(c) report (build_report)", f"{r['report_seconds']:.2f} s"),
        ("environment", f"budgetlab {r['budgetlab']}, Python {r['python']}, {r['cpu_count']} CPUs, {r['platform']}"),
    ]
    width = max(len(a) for a, _ in rows)
    lines = ["budgetlab ledger benchmark", "-" * 26]
    lines += [f"{a.ljust(width)}  {b}" for a, b in rows]
    lines.append("")
    lines.append("resume overhead: a run stopped by --budget samples=N/2 is resumed with no budget; the figure is the")
    lines.append("wall time from calling run() until its first newly drawn sample is recorded in the store.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=100_000, help="samples in the run (default 100,000)")
    parser.add_argument("--k", type=int, default=8, help="samples per problem and config (default 8)")
    parser.add_argument("--configs", type=int, default=1, help="sampling configurations (default 1)")
    parser.add_argument("--repeat", type=int, default=1, help="throughput runs; the best counts (default 1)")
    parser.add_argument("--json", action="store_true", help="print one JSON object, last")
    parser.add_argument("--profile", action="store_true", help="also profile one run (cProfile, top 15) and print where time goes")
    parser.add_argument("--dir", help="work folder (default: a temporary folder, removed afterwards)")
    args = parser.parse_args(argv)
    if args.samples < 2 * args.k * args.configs or args.k < 1 or args.configs < 1 or args.repeat < 1:
        parser.error("need --k >= 1, --configs >= 1, --repeat >= 1 and --samples >= 2 * k * configs")

    with tempfile.TemporaryDirectory(prefix="budgetlab-ledger-", dir=args.dir) as tmp:
        folder = Path(tmp)
        result = measure(args, folder)
        profile_text = None
        if args.profile:
            log("profiling one more run ...")
            profile_text = profile_run(args, folder)
        elif not result["target_met"]["throughput"]:
            log("throughput is under target; run with --profile to see where the time goes")

    if profile_text:
        print(profile_text)
    if args.json:
        print(json.dumps(result))
    else:
        print(table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
