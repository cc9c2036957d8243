"""How often the ``math`` verifier agrees with recorded verdicts on real model outputs.

``bench/math_agreement.py`` checks the verifier on gold answers rewritten in many forms; real
chains of thought are messier ("Answer: Janet uses 3 eggs ... ans = 18"). This script reads
GPT-4's recorded chain-of-thought samples of the MoT-cascade release (``../shared/data/
mot_cascade``: GSM8K, ASDiv and TabMWP, two prompts each, sampled and greedy) and judges every
sample's text with budgetlab's ``math`` verifier against the problem's gold answer. The recorded
verdict is the release's own: its extracted answer equal to the gold answer (as numbers, else as
lower-case text). Agreement = the share of samples where the two verdicts match. Where they
differ, either side can be wrong (the release's extraction fails on "57,500" or "3 minutes");
``--show N`` prints N disagreements per file to read. For GSM8K the gold answer is taken from
the GSM8K test file in ``../shared/data/benchmarks`` (an item whose gold differs is skipped).

**Target: >= 98% agreement on every GSM8K file** (``target_met.gsm8k``).

Usage::

    python bench/math_recorded.py            # table (about a minute on 2 cores)
    python bench/math_recorded.py --json     # ... then one JSON object, last
    python bench/math_recorded.py --show 5   # ... and 5 disagreements per file
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _HERE]

import argparse
import ast
import gzip
import json
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FILES = ("gsm_cot1", "gsm_cot2", "gsm_greedy_cot1", "gsm_greedy_cot2", "asdiv_cot1", "asdiv_cot2", "tabmwp_cot1", "tabmwp_cot2")
TARGET = 0.98


def _data() -> Path:
    return Path(os.environ.get("BUDGETLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, list):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return ast.literal_eval(value)


def _recorded_verdict(result: Any, gold: Any) -> bool:
    try:
        return float(result) == float(gold)
    except (TypeError, ValueError):
        return str(result).strip().lower() == str(gold).strip().lower()


def judge_file(path: Path, gsm_gold: list[str] | None, show: int) -> dict[str, Any]:
    from budgetlab.core import Completion, Problem
    from budgetlab.verifiers import MathVerifier

    verifier = MathVerifier()
    with gzip.open(path, "rt") as f:
        records = json.load(f)
    agree = total = skipped = 0
    shown: list[dict[str, Any]] = []
    started = time.perf_counter()
    for i, record in enumerate(records):
        gold = str(record["answer"])
        if gsm_gold is not None:
            if float(gsm_gold[i]) != float(gold):
                skipped += 1
                continue
            gold = gsm_gold[i]
        gold = gold.removesuffix(".0")
        problem = Problem(id=str(i), prompt=record["question"], reference=gold)
        for text, result in zip(_as_list(record["generated"]), _as_list(record["results"])):
            recorded = _recorded_verdict(result, record["answer"])
            verdict = verifier.verify(problem, Completion(text=text))
            total += 1
            agree += verdict.correct == recorded
            if verdict.correct != recorded and len(shown) < show:
                shown.append({"item": i, "gold": gold, "recorded_answer": result, "recorded": recorded,
                              "budgetlab_answer": verdict.answer, "budgetlab": verdict.correct, "text_end": text[-200:]})  # fmt: skip
    seconds = time.perf_counter() - started
    return {"samples": total, "agreement": agree / total if total else None, "skipped_items": skipped,
            "ms_per_verdict": 1000 * seconds / max(total, 1), "disagreements_shown": shown}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--show", type=int, default=0, help="disagreements to print per file (default 0)")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    folder = _data() / "mot_cascade"
    gsm_file = _data() / "benchmarks" / "gsm8k_test.jsonl"
    missing = [f for f in FILES if not (folder / f"GPT4_result__{f}.json.gz").exists()] + ([] if gsm_file.exists() else [str(gsm_file)])
    if missing:
        print(f"SKIPPED: {folder} or {gsm_file.parent} lacks {', '.join(missing)} (set BUDGETLAB_SHARED_DATA)", file=sys.stderr)
        if args.json:
            print(json.dumps({"skipped": f"missing: {missing}", "target_met": {}}))
        return 0
    try:
        import math_verify  # noqa: F401
    except ImportError:
        print("the math verifier needs math-verify: pip install 'budgetlab[math]'", file=sys.stderr)
        return 1
    from budgetlab.tasks import load_task

    gsm_gold = [str(p.reference) for p in load_task(f"gsm8k:{gsm_file}")]
    results = {}
    print("math verifier on GPT-4's recorded chain-of-thought samples (MoT-cascade), against the recorded verdicts")
    print(f"  {'file':18s} {'samples':>8s} {'agreement':>10s} {'ms/verdict':>11s}")
    for name in FILES:
        r = judge_file(folder / f"GPT4_result__{name}.json.gz", gsm_gold if name.startswith("gsm") else None, args.show)
        results[name] = r
        note = f"  ({r['skipped_items']} item(s) skipped: gold differs from GSM8K's)" if r["skipped_items"] else ""
        print(f"  {name:18s} {r['samples']:8,d} {100 * r['agreement']:9.2f}% {r['ms_per_verdict']:11.2f}{note}")
        for d in r["disagreements_shown"]:
            print(f"    item {d['item']}: gold {d['gold']!r}, recorded {d['recorded_answer']!r} ({d['recorded']}), "
                  f"budgetlab {d['budgetlab_answer']!r} ({d['budgetlab']}); ...{d['text_end'][-100:]!r}")  # fmt: skip
    gsm = [results[n]["agreement"] for n in FILES if n.startswith("gsm")]
    target = {"gsm8k": min(gsm) >= TARGET}
    print(f"target: >= {100 * TARGET:.0f}% on every GSM8K file: {'met' if target['gsm8k'] else 'NOT met'} (lowest {100 * min(gsm):.2f}%)")
    if args.json:
        print(json.dumps({"files": results, "target": TARGET, "target_met": target}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
