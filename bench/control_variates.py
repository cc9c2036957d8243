"""Benchmark control-variate estimation on the NLG human-evaluation sets.

Question: to estimate each system's mean human score over a set's items, how many human
labels does the control-variate estimator (human labels on ``n`` random items + the cheap
metric on every item) need for the same 95% confidence-interval width as plain averaging of
``n0`` human labels?

* Human score and cheap metric as in bench/subset.py (the overall human dimension; ``auto``, the
  mean of the standardized automatic metrics). A labelled item gets the human score of every
  system on it; each system's mean is estimated separately, and widths are averaged over systems.
* ``n0`` = a quarter of the items (at least 12). Plain averaging's width at ``n0`` is the mean
  over ``--draws`` random label sets; the labels needed by control variates are the smallest
  ``n`` whose mean width is no larger (bisection over ``n``, the same draws for every ``n``).
* Coverage: the share of draws whose 95% interval holds the all-items mean (the truth here, since
  every item has its human score), for both estimators, at ``n0`` and at the ``n`` found.
* ``rho``: the item-level correlation of the human score and the cheap metric (per system, then
  averaged). The target: at least 30% fewer labels on every set where the metric correlates,
  taken as ``rho >= 0.6`` (control variates can save about ``rho^2`` of the labels, so below 0.55
  30% is out of reach in theory).
* Also shown: the optimal split of a budget between cheap and human labels when a human label
  costs 100 cheap ones (:func:`budgetlab.evaluation.optimal_split`) and its variance against
  spending the budget on human labels alone.

Usage::

    python bench/control_variates.py            # human table (under a minute)
    python bench/control_variates.py --json     # the table, then one JSON object, last
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from budgetlab.errors import InputError
from budgetlab.evaluation import control_variate_mean, optimal_split, plain_mean
from budgetlab.evaluation.subset import load_items

ROOT = Path(__file__).resolve().parents[1]
SETS = (
    "e2e_challenge", "emnlp_2017", "persona_chat", "story_gen_roc",
    "sum_cnndm1_openai", "sum_cnndm3_openai", "sum_newsroom", "summeval_gpt",
)  # fmt: skip
RHO_CORRELATES = 0.6
TARGET_SAVING = 0.30


def _data_dir() -> Path:
    return Path(os.environ.get("BUDGETLAB_SHARED_DATA", ROOT.parent / "shared" / "data"))


class SetStudy:
    def __init__(self, human: np.ndarray, cheap: np.ndarray, draws: int, seed: int) -> None:
        self.human, self.cheap = human, cheap
        n_items = human.shape[0]
        rng = np.random.default_rng(seed)
        self.orders = [rng.permutation(n_items) for _ in range(draws)]
        self.truth = np.nanmean(human, axis=0)
        # Per system: the items where it has both scores.
        self.present = [~np.isnan(human[:, j]) & ~np.isnan(cheap[:, j]) for j in range(human.shape[1])]

    def run(self, n: int, method: str) -> tuple[float, float]:
        """Mean interval width (averaged over systems) and coverage, over the draws."""
        widths, covered, total = [], 0, 0
        for order in self.orders:
            labelled = order[:n]
            for j, present in enumerate(self.present):
                y = np.full(len(present), np.nan)
                rows = labelled[present[labelled]]
                if len(rows) < 4:
                    continue
                y[rows] = self.human[rows, j]
                y, c = y[present], self.cheap[present, j]
                try:
                    est = control_variate_mean(y, c) if method == "cv" else plain_mean(y)
                except InputError:
                    continue
                widths.append(est.width)
                covered += est.lo <= self.truth[j] <= est.hi
                total += 1
        return float(np.mean(widths)), covered / max(total, 1)

    def labels_needed(self, target_width: float, lo: int, hi: int) -> int:
        """The smallest n in [lo, hi] whose mean control-variate width is <= target_width."""
        if self.run(hi, "cv")[0] > target_width:
            return hi + 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self.run(mid, "cv")[0] <= target_width:
                hi = mid
            else:
                lo = mid + 1
        return lo


def _rho(human: np.ndarray, cheap: np.ndarray) -> float:
    values = []
    for j in range(human.shape[1]):
        ok = ~np.isnan(human[:, j]) & ~np.isnan(cheap[:, j])
        if ok.sum() > 2 and human[ok, j].std() > 0 and cheap[ok, j].std() > 0:
            values.append(np.corrcoef(human[ok, j], cheap[ok, j])[0, 1])
    return float(np.mean(values)) if values else float("nan")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--draws", type=int, default=300, help="random label sets per n (default 300)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object last")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    folder = _data_dir() / "subset2evaluate_nlg"
    if not folder.exists():
        print(f"SKIPPED: {folder} not found (set BUDGETLAB_SHARED_DATA to the shared data folder)", file=sys.stderr)
        if args.json:
            print(json.dumps({"skipped": f"{folder} not found", "target_met": {}}))
        return 0

    rows = {}
    print(
        f"{'set':20s} {'items':>5s} {'sys':>3s} {'rho':>6s} {'n0':>4s} {'plain width':>11s} {'n (CV)':>6s} {'saving':>7s} "
        f"{'cover plain':>11s} {'cover CV@n0':>11s} {'cover CV@n':>10s} {'split 1:100 var ratio':>21s}"
    )
    for name in SETS:
        path = folder / f"{name}.jsonl.gz"
        if not path.exists():
            print(f"{name:20s} missing: skipped")
            continue
        data = load_items(path)
        if not data.has_metric:
            rows[name] = {"items": len(data), "skipped": "no automatic metric in this set"}
            print(f"{name:20s} {len(data):5d} {len(data.systems):3d}   (no automatic metric: no control variate)")
            continue
        human, cheap = data.human(), data.metric("auto")
        rho = _rho(human, cheap)
        study = SetStudy(human, cheap, args.draws, args.seed)
        n0 = max(12, round(0.25 * len(data)))
        plain_width, plain_cover = study.run(n0, "plain")
        cv_width0, cv_cover0 = study.run(n0, "cv")
        needed = study.labels_needed(plain_width, 5, n0)
        _, cv_cover = study.run(min(needed, n0), "cv")
        saving = 1 - needed / n0
        split = optimal_split(100.0 * n0, 100.0, 1.0, max(-1.0, min(1.0, rho)), n_items=len(data))
        rows[name] = {
            "items": len(data), "systems": len(data.systems), "rho": rho, "n0": n0,
            "plain_width": plain_width, "cv_width_at_n0": cv_width0, "labels_needed": needed, "saving": saving,
            "coverage_plain_at_n0": plain_cover, "coverage_cv_at_n0": cv_cover0, "coverage_cv_at_needed": cv_cover,
            "split_100to1": {"costly": split.costly, "cheap": split.cheap, "variance_ratio": split.variance_ratio},
            "correlates": rho >= RHO_CORRELATES,
        }  # fmt: skip
        print(
            f"{name:20s} {len(data):5d} {len(data.systems):3d} {rho:6.3f} {n0:4d} {plain_width:11.4f} {needed:6d} {100 * saving:6.1f}% "
            f"{plain_cover:11.3f} {cv_cover0:11.3f} {cv_cover:10.3f} {split.variance_ratio:21.3f}"
        )
    correlating = [n for n, r in rows.items() if r.get("correlates")]
    target = {f"{n}_saves_30pct": rows[n]["saving"] >= TARGET_SAVING for n in correlating}
    target["every_correlating_set"] = bool(correlating) and all(target.values())
    print(
        f"\nsets where the metric correlates (rho >= {RHO_CORRELATES}): {', '.join(correlating) or 'none'}; "
        f"target: >= {100 * TARGET_SAVING:.0f}% fewer human labels on each"
    )
    if args.json:
        print(json.dumps({"draws": args.draws, "rho_correlates": RHO_CORRELATES, "sets": rows, "target_met": target}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
