"""Round 3 of the pre-registered subset-selection test: held-out NLG human evaluations.

Why. Rounds 1 and 2 (``bench/subset_validation.py``) declared budgetlab's method on recorded
LLM samples and both missed the target on the six NLG sets of ``bench/subset.py``. budgetlab's
``irt`` was the best method of either library on those sets, but it was picked after seeing
them, so those sets cannot test it. This script tests that pick on human evaluations neither
bench has seen.

Data. REALSumm (Bhandari et al., EMNLP 2020, "Re-evaluating Evaluation in Text Summarization";
CC BY 4.0): 100 CNN/DailyMail documents, summaries of 14 abstractive and 11 extractive systems,
each scored by crowd workers (LitePyramid recall, the human score) and by 14 automatic metrics
(ROUGE-1/2/L precision, recall and F, JS-2, MoverScore, BERTScore precision, recall and F). Two
sets: ``realsumm_abs`` (100 x 14) and ``realsumm_ext`` (100 x 11). Get it with::

    git clone https://github.com/neulab/REALSumm   # then: --realsumm REALSumm

The script reads ``scores_dicts/abs.pkl`` and ``ext.pkl`` with an unpickler that admits only
plain containers and numbers (a pickle from the web could otherwise run code). Nothing of it is
copied into this repository.

Pre-registered (this file was committed before its first run on REALSumm):

* Declared method: ``irt`` (``DECLARED`` below), which is also what ``budgetlab subset``'s
  default (``--method auto``) picks for a continuous metric.
* Every method of both libraries, exactly as in ``bench/subset.py`` (its code, seeds and
  defaults; cheap metric ``auto``, the mean of the standardized automatic metrics), on each set
  in full and on ``--resamples`` (5) random 75% samples of its items (seeds 7000 + r). Per set,
  the mean over those 6 instances; the headline is the mean over the two sets.
* Target (``target_met.every_size_declared_vs_best``): the declared method beats
  subset2evaluate's best method, chosen after the fact on these sets (random included), at
  every size (10/25/50%), on Spearman and on Kendall. Reported whatever it says.

Round 4 (``--hanna FILE``; pre-registered: this text and the HANNA reader were committed before
their first run on HANNA). Data: HANNA (Chhun et al., COLING 2022 and TACL 2024, "Of Human
Criteria and Automatic Metrics" / "Do Language Models Enjoy Their Own Stories?"; MIT license),
``hanna_metric_scores_llm.csv`` from github.com/dig-team/hanna-benchmark-asg: 96 WritingPrompts
prompts, stories of 10 generation systems, each rated by 3 crowd workers on 6 criteria, and 72
automatic metrics. Round 3 taught that output diversity can beat every metric-based method;
HANNA's file has no story texts, so round 4 tests the metric-based methods only (diversity of
neither library can run), on data no one here has looked at beyond the file's header and first
row.

* Sets: one per criterion (``hanna_relevance``, ``_coherence``, ``_empathy``, ``_surprise``,
  ``_engagement``, ``_complexity``), 96 items x 10 systems; the human score is the criterion's
  mean over the 3 raters. The "Human" row (the human-written stories) is left out: its
  reference-based metrics compare a story with itself (BLEU 100).
* Cheap score: ``auto`` (the mean of the standardized metrics, as everywhere) over the file's
  automatic metrics (the columns from BLEU to BARTScore-SP), less the 10 text statistics with no
  "higher is better" direction (Coverage, Density, Compression, Text length, Novelty-1/2/3,
  Repetition-1/2/3), with the distances (BaryScore-*, DepthScore, InfoLM-*FisherRao) negated.
  The LLM raters' columns are not used.
* Declared: ``irt``, what ``budgetlab subset --method auto`` uses for a continuous metric.
* Each set in full and on 2 random 75% samples (``--resamples 2``, seeds 7000 + r; fewer than
  round 3 because six sets with subset2evaluate's IRT take long); per set the mean over its 3
  instances; the headline is the mean over the six sets. Target as in round 3: the declared
  method beats subset2evaluate's best (after the fact, random included) at every size, on
  Spearman and on Kendall. Reported whatever it says.

Round 5 (``--realsumm R --hanna F --declare``; pre-registered: this text and its code were committed
before their first run, and before any run on the six NLG sets of ``bench/subset.py`` that reads
a subset with control variates). Rounds 1-4 changed which items are rated; round 5 changes how the
ratings are read. ``budgetlab estimate`` already estimates each system's mean over all items from
the rated ones plus the cheap scores every item has (control variates pooled over the systems, on
every metric and text statistic of the set); the subset's ranking can be read that way instead of
as the plain mean of the rated items. This is budgetlab's own pipeline (``subset``, rate,
``estimate``), and it uses nothing the subset methods do not already have: the metrics of all
items. Which (method, reading) pair to declare is chosen here, on the held-out human evaluations
of rounds 3 and 4, never on the six sets:

* Candidates: every budgetlab method of ``bench/subset.py`` that runs on all eight held-out sets
  (HANNA has no texts, so neither diversity nor combined), random included, each read plainly and
  with control variates (``+cv``), in that order: ``OURS``'s order, random last, the plain
  reading before ``+cv``.
* Data: REALSumm's two sets, each in full and on 5 random 75% samples (as round 3), and HANNA's six
  sets, each in full and on 2 (as round 4); per set, the mean over its instances. budgetlab's side
  only (subset2evaluate's methods do not enter the choice).
* Score: the mean of two numbers, REALSumm's and HANNA's, each the mean over its sets, the three
  sizes, and Spearman and Kendall alike, so that each source counts the same. Declared: the best
  score; ties go to the candidate listed first.
* Then ``bench/subset.py``'s ``DECLARED`` is set to it, committed, and that bench is run once with
  its defaults and reported whatever it says; the target is unchanged.

Round 5's outcome (5893a76, 2026-11-28): it declared ``agreement``, read plainly (score 0.797;
``variance+cv`` 0.788, ``variance`` 0.774, ``agreement+cv`` 0.773), the method ``bench/subset.py``
already reports, so the six sets' result is round 2's. The ``+cv`` readings lost most at 10%
(``random+cv`` 0.455 against ``random`` 0.706 Spearman on HANNA): with 10 rated items and 120
controls the estimator's cross-validated choice of slope was mostly luck.

Round 6 (pre-registered: this paragraph was committed before its run). The estimator now keeps
plain averaging unless the slope beats it by more than one standard error of its held-out error
(80a3832; chosen on random subsets of these held-out sets, checked on summeval_gpt's label saving,
which is unchanged; no subset of the six sets was read with it). Round 6 runs round 5's rule,
unchanged, with that estimator (``--declare``), before any run on the six sets that reads a
subset with control variates; its declared pair is then run once on the six sets as round 5 says.

Usage::

    python bench/subset_heldout.py --realsumm REALSumm          # table (about 10 minutes)
    python bench/subset_heldout.py --realsumm REALSumm --json   # then one JSON object, last
    python bench/subset_heldout.py --hanna hanna_metric_scores_llm.csv --resamples 2 [--json]   # round 4
    python bench/subset_heldout.py --realsumm REALSumm --hanna hanna_metric_scores_llm.csv --declare [--json]  # round 5
"""

from __future__ import annotations

import argparse
import json
import pickle
import re
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from subset import CV, OURS, SIDE_LABELS, SIDES, SIZES, _patch_pyirt, evaluate_set  # first: it sets BLAS threads

import numpy as np

from budgetlab.evaluation.subset import Item, ItemSet

DECLARED = "irt"
SETS = {"realsumm_abs": "abs.pkl", "realsumm_ext": "ext.pkl"}
HUMAN = "litepyramid_recall"
RESAMPLE_SEED = 7000


class _PlainUnpickler(pickle.Unpickler):
    """Plain containers and numbers only: anything else in the file is refused, not built."""

    _ALLOWED = frozenset(("builtins", n) for n in ("dict", "list", "tuple", "set", "frozenset", "str", "int", "float"))

    def find_class(self, module: str, name: str):  # type: ignore[no-untyped-def]
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        if module.startswith("numpy") and name in ("scalar", "dtype"):
            return super().find_class(module, name)  # numpy floats, stored as (dtype, bytes)
        raise pickle.UnpicklingError(f"refused {module}.{name}: the REALSumm score files hold only plain data")


def _summary_text(raw: object) -> str:
    return re.sub(r"\s*</?t>\s*", " ", str(raw)).strip()


def load_realsumm(path: Path, name: str) -> ItemSet:
    with path.open("rb") as f:
        docs = _PlainUnpickler(f).load()
    items = []
    for doc_id, doc in sorted(docs.items()):
        systems = doc["system_summaries"]
        items.append(
            Item(
                id=str(doc_id),
                ref=_summary_text(doc["ref_summ"]),
                tgt={s.removesuffix(".txt"): _summary_text(v["system_summary"]) for s, v in systems.items()},
                scores={s.removesuffix(".txt"): {k: float(x) for k, x in v["scores"].items()} for s, v in systems.items()},
            )
        )
    return ItemSet(items, name=name, human=HUMAN)


HANNA_CRITERIA = ("Relevance", "Coherence", "Empathy", "Surprise", "Engagement", "Complexity")
#: Text statistics with no "higher is better" direction: not metrics of quality.
HANNA_STATISTICS = ("Coverage", "Density", "Compression", "Text length", "Novelty-", "Repetition-")
#: Distances between the story and the reference: lower is better.
HANNA_DISTANCES = ("BaryScore", "DepthScore", "FisherRao")


def _hanna_metric(column: str) -> str | None:
    """The metric's name for a HANNA column (its family marks stripped), negated distances
    prefixed ``neg``; None for a column that is not a metric used here."""
    name = column.rsplit(" ", 1)[0]  # every metric column ends in its family's marks, e.g. "BLEU Ξ§"
    if name.startswith(HANNA_STATISTICS):
        return None
    return f"neg {name}" if any(d in name for d in HANNA_DISTANCES) else name


def load_hanna(path: Path) -> list[ItemSet]:
    """One set per criterion (see the module docstring, round 4)."""
    import ast
    import csv

    csv.field_size_limit(1 << 30)
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], [r for r in rows[1:] if r and r[0] != "Human"]
    first, last = header.index("BLEU Ξ§"), header.index("BARTScore-SP ¤Δ")
    metrics = {j: _hanna_metric(header[j]) for j in range(first, last + 1)}
    metrics = {j: m for j, m in metrics.items() if m is not None}
    values = {(r[0], j): ast.literal_eval(r[j]) for r in body for j in [*metrics, *(header.index(c) for c in HANNA_CRITERIA)]}
    systems = [r[0] for r in body]
    n_items = len(values[(systems[0], first)])
    sets = []
    for criterion in HANNA_CRITERIA:
        c = header.index(criterion)
        key = f"human_{criterion.lower()}"
        items = []
        for i in range(n_items):
            scores = {}
            for s in systems:
                negate = {j: m.startswith("neg ") for j, m in metrics.items()}
                scores[s] = {m: (-1 if negate[j] else 1) * float(values[(s, j)][i]) for j, m in metrics.items()}
                scores[s][key] = float(values[(s, c)][i])
            items.append(Item(id=str(i), scores=scores))
        sets.append(ItemSet(items, name=f"hanna_{criterion.lower()}", human=key))
    return sets


def _instances(data: ItemSet, resamples: int, human: str = HUMAN) -> list[ItemSet]:
    out = [data]
    for r in range(resamples):
        rng = np.random.default_rng(RESAMPLE_SEED + r)
        keep = np.sort(rng.choice(len(data), size=round(0.75 * len(data)), replace=False))
        out.append(ItemSet([data.items[i] for i in keep], name=data.name, human=human))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--realsumm", type=Path, help="a clone of github.com/neulab/REALSumm (round 3)")
    parser.add_argument("--hanna", type=Path, help="hanna_metric_scores_llm.csv of github.com/dig-team/hanna-benchmark-asg (round 4)")
    parser.add_argument("--resamples", type=int, default=5, help="75%% samples of each set besides the full set (default 5)")
    parser.add_argument("--seeds", type=int, default=10, help="seeds for stochastic methods (default 10, as bench/subset.py)")
    parser.add_argument("--random-seeds", type=int, default=100, help="seeds for the random baselines (default 100)")
    parser.add_argument("--irt-repeats", type=int, default=5, help="calls of subset2evaluate's IRT to average (default 5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    parser.add_argument("--declare", action="store_true", help="round 5: choose the declared (method, reading) pair on REALSumm and HANNA")
    args = parser.parse_args()

    if args.declare:
        folder = args.realsumm / "scores_dicts" if args.realsumm else None
        if folder is None or not all((folder / f).exists() for f in SETS.values()) or args.hanna is None or not args.hanna.is_file():
            print("SKIPPED: round 5 needs both --realsumm REALSumm and --hanna hanna_metric_scores_llm.csv", file=sys.stderr)
            return 0
        realsumm = {name: load_realsumm(folder / file, name) for name, file in SETS.items()}
        return _declare_round5(realsumm, {d.name: d for d in load_hanna(args.hanna)}, args)
    if args.hanna is not None:
        if not args.hanna.is_file():
            print(f"SKIPPED: no HANNA score file at {args.hanna}; get hanna_metric_scores_llm.csv from "
                  "github.com/dig-team/hanna-benchmark-asg", file=sys.stderr)  # fmt: skip
            if args.json:
                print(json.dumps({"skipped": "HANNA not given", "target_met": {}}))
            return 0
        loaded = {d.name: d for d in load_hanna(args.hanna)}
        return _compare(loaded, args, "HANNA, held out (round 4)")
    folder = args.realsumm / "scores_dicts" if args.realsumm else None
    if folder is None or not all((folder / f).exists() for f in SETS.values()):
        where = f"under {folder}" if folder else "given"
        print(f"SKIPPED: no REALSumm score files {where}; git clone https://github.com/neulab/REALSumm "
              "and pass --realsumm REALSumm", file=sys.stderr)  # fmt: skip
        if args.json:
            print(json.dumps({"skipped": "REALSumm not given", "target_met": {}}))
        return 0
    return _compare({name: load_realsumm(folder / file, name) for name, file in SETS.items()}, args,
                    "REALSumm, held out (round 3)")  # fmt: skip


PerSet = dict[str, dict[str, dict[str, np.ndarray]]]  # side -> method -> set -> (sizes, 2)


def _per_set(
    loaded: dict[str, ItemSet], args: argparse.Namespace, resamples: int, have_theirs: bool,
    irt_problem: str | None, notes: list[str],
) -> PerSet:  # fmt: skip
    """Every method on each set in full and on ``resamples`` random 75% samples of it: per side,
    method and set, the mean over those instances (a method that failed on one is left out)."""
    per_set: PerSet = {side: {} for side in SIDES}
    for name, data in loaded.items():
        started = time.perf_counter()
        runs: dict[str, dict[str, list[np.ndarray]]] = {side: {} for side in SIDES}
        for instance in _instances(data, resamples, data.human_keys[0]):
            for side, methods in evaluate_set(instance, args, have_theirs, irt_problem, notes).items():
                for label, value in methods.items():
                    if value is not None:
                        runs[side].setdefault(label, []).append(value)
        for side, methods in runs.items():
            for label, values in methods.items():
                if len(values) == resamples + 1:
                    per_set[side].setdefault(label, {})[name] = np.mean(values, axis=0)
        print(f"{name}: {len(data)} items x {len(data.systems)} systems, {resamples + 1} instances, "
              f"{time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)  # fmt: skip
    return per_set


#: Round 5's resamples per source (as rounds 3 and 4).
ROUND5_RESAMPLES = {"realsumm": 5, "hanna": 2}


def round5_candidates() -> list[str]:
    """Round 5's candidates in their tie-breaking order (see the module docstring)."""
    methods = [m for m in OURS if m not in ("diversity", "diversity-char", "combined")] + ["random"]
    return [m + reading for m in methods for reading in ("", CV)]


def round5_declare(scores: dict[str, dict[str, dict[str, np.ndarray]]]) -> tuple[str, dict[str, float]]:
    """Round 5's rule: ``scores[source][candidate][set]`` are (sizes, 2) arrays; a candidate's
    score is the mean over sources of its mean over the source's sets, sizes and statistics.
    Returns the declared candidate (ties to the first listed) and every candidate's score."""
    overall = {}
    for candidate in round5_candidates():
        per_source = [scores[src].get(candidate) for src in scores]
        if any(p is None or not p for p in per_source):
            continue
        overall[candidate] = float(np.mean([np.mean([v.mean() for v in p.values()]) for p in per_source]))  # type: ignore[union-attr]
    order = list(overall)
    return max(order, key=lambda c: (overall[c], -order.index(c))), overall


def _declare_round5(realsumm: dict[str, ItemSet], hanna: dict[str, ItemSet], args: argparse.Namespace) -> int:
    notes: list[str] = []
    scores = {}
    for source, loaded in (("realsumm", realsumm), ("hanna", hanna)):
        per_set = _per_set(loaded, args, ROUND5_RESAMPLES[source], False, None, notes)["budgetlab"]
        # A candidate that did not run on every set of the source is not a candidate.
        scores[source] = {m: by_set for m, by_set in per_set.items() if set(by_set) == set(loaded)}
    declared, overall = round5_declare(scores)
    sizes = " / ".join(f"{int(100 * s)}%" for s in SIZES)
    print(f"Round 5: budgetlab's (method, reading) pairs on the held-out sets; per source the mean over its sets "
          f"(Spearman / Kendall at {sizes}), and the score (mean over sources, sizes and statistics)")  # fmt: skip
    for candidate in sorted(overall, key=lambda c: -overall[c]):
        cells = []
        for source in scores:
            m = np.mean(list(scores[source][candidate].values()), axis=0)
            cells.append(f"{source} " + " ".join(f"{m[i, 0]:.3f}/{m[i, 1]:.3f}" for i in range(len(SIZES))))
        mark = "  <- declared" if candidate == declared else ""
        print(f"  {candidate:22s} {overall[candidate]:.4f}   " + "   ".join(cells) + mark)
    print(f"declared: {declared}")
    for note in notes:
        print(f"note: {note}")
    if args.json:
        print(json.dumps({
            "round": 5,
            "declared": declared,
            "scores": overall,
            "per_set": {src: {c: {s: {"spearman": r[:, 0].tolist(), "kendall": r[:, 1].tolist()} for s, r in by_set.items()}
                              for c, by_set in per.items()} for src, per in scores.items()},
        }))  # fmt: skip
    return 0


def _compare(loaded: dict[str, ItemSet], args: argparse.Namespace, title: str) -> int:
    try:
        import subset2evaluate  # noqa: F401
    except ImportError:
        print("subset2evaluate is not installed (pip install 'budgetlab[eval-baselines]'); it is the baseline", file=sys.stderr)
        return 1
    irt_problem = _patch_pyirt()
    notes: list[str] = [f"subset2evaluate pyirt_fic not run: {irt_problem}"] if irt_problem else []

    per_set = _per_set(loaded, args, args.resamples, True, irt_problem, notes)
    sets = list(loaded)
    means = {
        side: {label: np.mean([by_set[s] for s in sets], axis=0) for label, by_set in methods.items() if set(by_set) == set(sets)}
        for side, methods in per_set.items()
    }
    sizes = " / ".join(f"{int(100 * s)}%" for s in SIZES)
    print(f"{title}. Mean over {', '.join(sets)}, each the full set and {args.resamples} "
          f"random 75% samples (Spearman / Kendall at {sizes}):")  # fmt: skip
    for side in SIDES:
        for label, m in means[side].items():
            mark = "  <- declared" if side == "budgetlab" and label == DECLARED else ""
            print(f"  {SIDE_LABELS[side]:9s} {label:20s} " + "  ".join(f"{m[i, 0]:6.3f} / {m[i, 1]:6.3f}" for i in range(len(SIZES))) + mark)

    declared = means["budgetlab"][DECLARED]
    comparison: dict[str, dict] = {}
    print(f"\ndeclared '{DECLARED}' against subset2evaluate's best on these sets (chosen after the fact, random included):")
    for j, stat in enumerate(("spearman", "kendall")):
        for i, size in enumerate(SIZES):
            best = max(means["subset2evaluate"], key=lambda label: means["subset2evaluate"][label][i, j])
            theirs = float(means["subset2evaluate"][best][i, j])
            comparison[f"{stat}@{int(100 * size)}%"] = {"declared": float(declared[i, j]), "theirs_best": best, "theirs": theirs}
            print(f"  {stat}@{int(100 * size)}%: {declared[i, j]:.3f} vs {best} {theirs:.3f} ({declared[i, j] - theirs:+.3f})")
    target = {f"declared_beats_theirs_best_{k}": c["declared"] > c["theirs"] for k, c in comparison.items()}
    target["every_size_declared_vs_best"] = all(target.values())
    print(f"target (declared beats their best at every size, both statistics): {'met' if target['every_size_declared_vs_best'] else 'NOT met'}")
    for note in notes:
        print(f"note: {note}")
    if args.json:
        print(json.dumps({
            "declared": DECLARED,
            "sets": sets,
            "sizes": list(SIZES),
            "resamples": args.resamples,
            "per_set": {side: {label: {s: {"spearman": r[:, 0].tolist(), "kendall": r[:, 1].tolist()} for s, r in by_set.items()}
                               for label, by_set in methods.items()} for side, methods in per_set.items()},
            "means": {side: {label: {"spearman": m[:, 0].tolist(), "kendall": m[:, 1].tolist()} for label, m in methods.items()}
                      for side, methods in means.items()},
            "comparison": comparison,
            "notes": notes,
            "target_met": target,
        }))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
