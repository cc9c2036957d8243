"""Choose budgetlab's subset method on data the NLG benchmark never sees.

``bench/subset.py`` compares subset-selection methods on six small human-evaluation sets. Naming
our best method there after seeing its results would flatter us. Choosing it by leave-one-set-out
on the same six sets is fair but very noisy: five 3-to-16-system sets cannot tell the leading methods
apart. This script makes the choice on other data, under the same conditions: rank systems from
10/25/50% of the items, where each item has a cheap score per system and the costly score is only
paid for the chosen items.

Validation sets (recorded LLM samples; the "costly" score of a system on an item is its pass rate
over all its recorded samples, and the "cheap" score is one of those samples, pass or fail):

* LiveCodeBench, 43 models x 400 problems, 10 samples each. The two n=1 models are left out. The
  data holds counts only, so the cheap sample is drawn as Bernoulli(correct / 10).
* OSCA BigCodeBench, 10 settings x 148 problems, 300 samples each (counts; the cheap sample is drawn
  the same way).
* GPT-3.5 on Date Understanding (MoT cascade), 12 prompt x temperature configurations x 369
  problems, 20 samples each. The cheap score is the first recorded sample.
* GPT-4 on six tasks (GSM8K, ASDiv, CREPE, Date, Navigate, TabMWP), 4 configurations (cot1, cot2,
  pot1, pot2) x up to 400 problems, 3 samples each. The cheap score is the first sample. Problems
  where a configuration has no sample are left out.

Shapes follow the NLG sets (3-16 systems, 60-1174 items). From each of the first three sources,
``--sets`` sets (default 8) draw a number of systems from (3, 5, 7, 10, 16) and of items from
(60, 100, 200, 400), each capped at what the source has. Each GPT-4 task is one set. Every set
and every cheap sample comes from ``--seed``.

Methods: budgetlab's metric-based methods, the ones whose choice ``bench/subset.py`` needs:
variance, consistency (whole subset, one seed), consistency-item, irt, separation. Diversity needs
output texts, which most of these sets lack. Random (mean of 10 seeds) is shown for reference.

Pre-registered rule, written and committed before this script's first run (2026-11-27): the
declared method is the one with the best mean correlation over all validation sets, the three sizes,
and Spearman and Kendall alike. Ties go to the method listed first. ``bench/subset.py`` reports the
declared method (its ``DECLARED``) as budgetlab's headline. This script's JSON says whether the two
agree (``declared_matches_subset_bench``).

Usage::

    python bench/subset_validation.py          # table (about a minute)
    python bench/subset_validation.py --json   # the table, then one JSON object, last
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from budgetlab.evaluation.subset import Item, ItemSet, make_subset_method, rank_agreement

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from subset import DECLARED, SIZES, _data_dir, _k

SYSTEM_COUNTS = (3, 5, 7, 10, 16)
ITEM_COUNTS = (60, 100, 200, 400)
METHODS = {
    "variance": ("variance", {}),
    "consistency": ("consistency", {}),
    "consistency-item": ("consistency", {"mode": "item"}),
    "irt": ("irt", {}),
    "separation": ("separation", {}),
}
RANDOM_SEEDS = 10
GPT4_TASKS = ("gsm", "asdiv", "crepe", "date", "navigate", "tabmwp")
GPT4_CONFIGS = ("cot1", "cot2", "pot1", "pot2")

Source = tuple[np.ndarray, np.ndarray]  # costly, cheap: items x systems


def _read_json(path: Path) -> object:
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8") as fh:
        return json.load(fh)


def _from_counts(correct: np.ndarray, runs: np.ndarray | int, rng: np.random.Generator) -> Source:
    rate = correct / runs
    return rate, (rng.random(rate.shape) < rate).astype(float)


def livecodebench(rng: np.random.Generator) -> Source:
    data = _read_json(_data_dir() / "livecodebench" / "performances_generation_2024-04-17_45models.json.gz")
    rows = data["performances"]  # type: ignore[index]
    models = sorted({r["model"] for r in rows if "(n=1)" not in r["model"]})
    problems = sorted({r["question_id"] for r in rows})
    pi, mi = {p: i for i, p in enumerate(problems)}, {m: j for j, m in enumerate(models)}
    correct = np.full((len(problems), len(models)), np.nan)
    for r in rows:
        if r["model"] in mi:
            correct[pi[r["question_id"]], mi[r["model"]]] = round(r["pass@1"] / 10)
    return _from_counts(correct, 10, rng)


def osca(rng: np.random.Generator) -> Source:
    data = _read_json(_data_dir() / "osca" / "bcb_results.json")
    runs = np.array([s["runs"] for s in data["settings"]])  # type: ignore[index]
    parts = [np.array([data[part][str(j)] for j in range(len(runs))]).T for part in ("train", "test")]  # type: ignore[index]
    return _from_counts(np.vstack(parts).astype(float), runs, rng)


def _correct(answer: object, gold: object) -> float:
    if answer is None:
        return 0.0
    try:
        return float(math.isclose(float(answer), float(gold), rel_tol=1e-9, abs_tol=1e-6))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float(str(answer).strip().lower() == str(gold).strip().lower())


def _from_samples(files: list[Path]) -> Source:
    per_config = [_read_json(f) for f in files]
    n = len(per_config[0])  # type: ignore[arg-type]
    keep = [i for i in range(n) if all(c[i]["results"] for c in per_config)]  # type: ignore[index]
    passes = [[[_correct(a, c[i]["answer"]) for a in c[i]["results"]] for c in per_config] for i in keep]  # type: ignore[index]
    costly = np.array([[np.mean(p) for p in row] for row in passes])
    cheap = np.array([[p[0] for p in row] for row in passes])
    return costly, cheap


def gpt35_date() -> Source:
    folder = _data_dir() / "mot_cascade"
    files = sorted(p for p in folder.glob("GPT3_result__date_*.json.gz") if "_40" not in p.name)
    return _from_samples(files)


def gpt4(task: str) -> Source:
    folder = _data_dir() / "mot_cascade"
    return _from_samples([folder / f"GPT4_result__{task}_{config}.json.gz" for config in GPT4_CONFIGS])


def _as_item_set(name: str, costly: np.ndarray, cheap: np.ndarray) -> ItemSet:
    systems = [f"system{j}" for j in range(costly.shape[1])]
    items = [
        Item(id=str(i), scores={s: {"human": float(costly[i, j]), "cheap": float(cheap[i, j])} for j, s in enumerate(systems)})
        for i in range(len(costly))
    ]
    return ItemSet(items, name=name)


def _draw(name: str, source: Source, rng: np.random.Generator) -> ItemSet:
    costly, cheap = source
    systems = rng.choice(costly.shape[1], min(int(rng.choice(SYSTEM_COUNTS)), costly.shape[1]), replace=False)
    items = rng.choice(len(costly), min(int(rng.choice(ITEM_COUNTS)), len(costly)), replace=False)
    return _as_item_set(name, costly[np.ix_(items, systems)], cheap[np.ix_(items, systems)])


def validation_sets(n_sets: int, seed: int) -> Iterator[ItemSet]:
    rng = np.random.default_rng(seed)
    for label, build in (("livecodebench", livecodebench), ("osca", osca)):
        source = build(rng)
        for k in range(n_sets):
            yield _draw(f"{label}-{k}", source, rng)
    source = gpt35_date()
    for k in range(n_sets):
        yield _draw(f"gpt35-date-{k}", source, rng)
    for task in GPT4_TASKS:
        costly, cheap = gpt4(task)
        items = rng.choice(len(costly), min(400, len(costly)), replace=False)
        yield _as_item_set(f"gpt4-{task}", costly[items], cheap[items])


def evaluate(data: ItemSet) -> dict[str, np.ndarray]:
    """Per method, an array (sizes, 2) of (Spearman, Kendall) against the ranking on all items."""
    human, n = data.human(), len(data)
    out = {}
    for label, (name, options) in METHODS.items():
        method = make_subset_method(name, options)
        out[label] = np.array([rank_agreement(human, method.order(data, _k(n, s), np.random.default_rng(0))[: _k(n, s)])
                               for s in SIZES])  # fmt: skip
    out["random"] = np.mean(
        [[rank_agreement(human, np.random.default_rng(seed).permutation(n)[: _k(n, s)]) for s in SIZES]
         for seed in range(RANDOM_SEEDS)], axis=0)  # fmt: skip
    return out


def declare(means: dict[str, np.ndarray]) -> str:
    """The pre-registered rule: the best mean over sizes and both statistics; ties to the first listed."""
    candidates = [m for m in METHODS if m in means]
    return max(candidates, key=lambda m: (float(means[m].mean()), -candidates.index(m)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", type=int, default=8, help="sets drawn per sampled source (default 8)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args(argv)
    if not (_data_dir() / "livecodebench").is_dir():
        print(f"skipped: the shared data is not at {_data_dir()} (set BUDGETLAB_SHARED_DATA)")
        return 0
    start = time.perf_counter()
    per_set: dict[str, dict[str, np.ndarray]] = {}
    for data in validation_sets(args.sets, args.seed):
        per_set[data.name] = evaluate(data)
        print(f"{data.name}: {len(data)} items x {len(data.systems)} systems", file=sys.stderr)
    methods = [*METHODS, "random"]
    means = {m: np.mean([r[m] for r in per_set.values()], axis=0) for m in methods}
    declared = declare(means)
    print(f"\nSubset methods on {len(per_set)} validation sets (cheap score: one sample; costly: all samples)")
    print("mean Spearman / Kendall of the system ranking on the subset vs on all items\n")
    print(f"{'method':<18}" + "".join(f"{f'{int(100 * s)}%':>16}" for s in SIZES) + f"{'overall':>10}")
    for m in methods:
        cells = "".join(f"{means[m][i, 0]:>9.3f} / {means[m][i, 1]:.3f}" for i in range(len(SIZES)))
        mark = "  <- declared" if m == declared else ""
        print(f"{m:<18}{cells}{means[m].mean():>10.3f}{mark}")
    print(f"\ndeclared (best overall mean): {declared}; bench/subset.py's DECLARED: {DECLARED}")
    print(f"{time.perf_counter() - start:.0f} s")
    if args.json:
        print(json.dumps({
            "sets": {name: {m: r[m].tolist() for m in methods} for name, r in per_set.items()},
            "means": {m: {f"{int(100 * s)}%": means[m][i].tolist() for i, s in enumerate(SIZES)} for m in methods},
            "overall": {m: float(means[m].mean()) for m in methods},
            "declared": declared,
            "declared_matches_subset_bench": declared == DECLARED,
        }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
