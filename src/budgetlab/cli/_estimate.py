"""``budgetlab estimate``: each system's mean costly (human) score from the items rated so far
plus the cheap scores of every item, with confidence intervals: the step after ``budgetlab
subset`` chose the items and raters scored them."""

from __future__ import annotations

import argparse
import dataclasses
import math

from rich.console import Console

from budgetlab.cli._evaluate import json_text
from budgetlab.cli._tables import fitted_tables
from budgetlab.errors import InputError

__all__ = ["add_estimate_parser", "cmd_estimate"]

_RATE_FIRST = "rate some items first (budgetlab subset SET --output to_rate.jsonl) and add their scores under a human key"


def add_estimate_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "estimate", help="each system's mean human score from a few rated items plus cheap scores on all of them"
    )
    p.add_argument(
        "path",
        help="evaluation set, JSONL (gz ok) in the subset2evaluate format or CSV with a row per item and system: "
        "metric scores on every item, human scores on the rated ones",
    )
    p.add_argument(
        "--human",
        help="the human score to estimate, e.g. --human rating (default: the overall dimension); never used as a "
        "cheap score",
    )
    p.add_argument("--confidence", type=float, default=0.95, help="confidence level of the intervals (default 0.95)")
    p.add_argument(
        "--scale",
        help="LOW,HIGH: the scale the human scores are on (e.g. 1,5 or 0,1), so that scores piled at an end "
        "still get honest intervals (default: the range of the scores given)",
    )
    p.add_argument(
        "--cost-ratio",
        type=float,
        help="what one human label costs in cheap scorings (e.g. 100): also print how to split the next budget",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def cmd_estimate(args: argparse.Namespace, console: Console) -> int:
    import numpy as np

    from budgetlab.evaluation import (
        cheap_controls,
        optimal_split,
        pooled_control_variate_means,
        pooled_held_out_correlation,
        pooled_plain_means,
    )
    from budgetlab.evaluation._rated_sample import check_rated_sample
    from budgetlab.evaluation.subset import load_items
    from budgetlab.evaluation.subset._data import HUMAN_KEYS_ARE

    if not 0 < args.confidence < 1:
        raise InputError(f"--confidence must lie in (0, 1), got {args.confidence}; e.g. --confidence 0.95")
    if args.cost_ratio is not None and not args.cost_ratio > 0:
        raise InputError(f"--cost-ratio must be a positive number, got {args.cost_ratio}; e.g. --cost-ratio 100")
    if args.cost_ratio is not None and not math.isfinite(args.cost_ratio):
        raise InputError(f"--cost-ratio must be finite, got {args.cost_ratio}; e.g. --cost-ratio 100")
    scale = _parse_scale(args.scale)
    # The score named by --human is the costly one: declared so, it is never a cheap control.
    data = load_items(args.path, human=args.human or ())
    if not (data.human_keys or args.human):
        raise InputError(
            f"{args.path} has no human score on any item; {_RATE_FIRST} ({HUMAN_KEYS_ARE}), or name the key yours "
            f"are under with --human KEY (the set has: {', '.join(data.keys) or 'no scores'})"
        )
    human = data.human(args.human)
    if scale is not None:
        _check_scale(human, scale, args.scale)
    labels = (~np.isnan(human)).sum(axis=0)
    few = [(s, int(n)) for s, n in zip(data.systems, labels) if n < 3]
    if few:
        system, n = few[0]
        raise InputError(f"system {system!r} has {n} human-rated items in {args.path}; each needs at least 3: {_RATE_FIRST}")
    report: dict = {"source": args.path, "items": len(data), "confidence": args.confidence, "systems": []}
    # A system's mean is over the items it is on (systems may vary item by item).
    if data.has_metric:
        controls = cheap_controls(data)
        present = ~np.isnan(controls).any(axis=2)
        unscored = np.argwhere(~np.isnan(human) & ~present)
        if unscored.size:
            i, j = (int(k) for k in unscored[0])
            lacking = [repr(k) for k in data.metric_keys if np.isnan(data.matrix(k)[i, j])] or ["output ('tgt')"]
            raise InputError(
                f"system {data.systems[j]!r} has a human score on item {data.items[i].id!r} of {args.path} but no "
                f"{', '.join(lacking)} there; every rated item needs the system's cheap scores too: give "
                f"{lacking[0]} there, or remove that human score (a score on rated items only is a human one: name "
                "it with --human KEY)"
            )
    else:
        present = np.array([[s in it.tgt or s in it.scores for s in data.systems] for it in data.items])
    plain = pooled_plain_means(human, present, confidence=args.confidence, label_range=scale)
    if data.has_metric:
        estimates = pooled_control_variate_means(human, controls, confidence=args.confidence, label_range=scale)
        r = pooled_held_out_correlation(human, controls)
        report["method"] = "control variates (pooled over systems)"
        report["held_out_correlation"] = r
    else:
        estimates, r = plain, 0.0
        report["method"] = "plain averaging (the set has no automatic metric)"
    for system, est, base in zip(data.systems, estimates, plain):
        report["systems"].append(
            {"system": system, "rated": est.labels, "mean": est.mean, "low": est.lo, "high": est.hi,
             "plain_mean": base.mean, "plain_low": base.lo, "plain_high": base.hi}
        )  # fmt: skip
    report["systems"].sort(key=lambda row: -row["mean"])
    if (labels == present.sum(axis=0)).all():
        report["notice"] = (
            f"every item is rated: these are the exact means of these {len(data)} items, nothing was estimated; "
            "to estimate the means over a whole set, give it with metric scores on every item and these ratings "
            "merged in"
        )
    if data.has_metric and "notice" not in report:
        check = check_rated_sample(data.metric(), ~np.isnan(human).all(axis=1))
        if check is not None:
            report["rated_sample"] = {**dataclasses.asdict(check), "unlike_random": check.unlike_random}
    widths = [(row["high"] - row["low"], row["plain_high"] - row["plain_low"]) for row in report["systems"]]
    ratio = float(np.mean([w / p for w, p in widths if p > 0])) if any(p > 0 for _, p in widths) else 1.0
    # Width shrinks as 1/sqrt(labels): the same width by plain averaging needs 1/ratio^2 as many.
    report["plain_labels_for_same_width"] = round(float(np.mean(labels)) / ratio**2) if ratio > 0 else None
    if args.cost_ratio is not None:
        rated = float(np.mean(labels))
        split = optimal_split(rated * args.cost_ratio, args.cost_ratio, 1.0, max(-1.0, min(1.0, r)), n_items=len(data))
        report["split"] = {"costly": split.costly, "cheap": split.cheap, "variance_ratio": split.variance_ratio}
    if args.json:
        print(json_text(report))
        return 0
    _print(report, data.name, console)
    return 0


def _check_scale(human, scale: tuple[float, float], text: str) -> None:  # type: ignore[no-untyped-def]
    """Human scores outside --scale, refused in the flag's words (the estimators name their
    parameter, ``label_range``)."""
    import numpy as np

    low, high = float(np.nanmin(human)), float(np.nanmax(human))
    if low < scale[0] or high > scale[1]:
        raise InputError(
            f"--scale {text}: the human scores run from {low:g} to "
            f"{high:g}, outside it; give the scale they are on, e.g. --scale {math.floor(low):g},{math.ceil(high):g}"
        )


def _parse_scale(text: str | None) -> tuple[float, float] | None:
    if text is None:
        return None
    parts = text.split(",")
    try:
        low, high = (float(p) for p in parts)
    except ValueError:
        low = high = math.nan
    if not low < high:
        raise InputError(f"--scale must be LOW,HIGH with LOW < HIGH, got {text!r}; e.g. --scale 1,5")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise InputError(
            f"--scale must be finite, got {text!r}; give the scale the human scores are on, e.g. --scale 1,5"
        )
    return low, high


#: The rated-sample check's statistics, in the note's words.
_STATISTICS = {
    "level": "level across systems",
    "spread": "spread across systems",
    "middling": "distance from the set's median level",
}


def _print(report: dict, name: str, console: Console) -> None:
    level = f"{100 * report['confidence']:g}%"
    rows = [[row["system"], str(row["rated"]), f"{row['mean']:.3f}", f"[{row['low']:.3f}, {row['high']:.3f}]",
             f"{row['plain_mean']:.3f} [{row['plain_low']:.3f}, {row['plain_high']:.3f}]"]
            for row in report["systems"]]  # fmt: skip
    title = f"{name} · {report['items']} items · {report['method']}"
    headers = ["rated", "mean", f"{level} interval", "plain averaging"]
    for table in fitted_tables(console, (title, f"{title}, continued"), ["system"], headers, rows):
        console.print(table)
    if "notice" in report:
        console.print(f"note: {report['notice']}", highlight=False)
    elif "held_out_correlation" in report:
        # Held out of the regression's fit (cross-validated), not items without a rating.
        console.print(
            "cheap scores vs human score on rated items held out of the fit: "
            f"r = {report['held_out_correlation']:.2f}; "
            f"plain averaging would need about {report['plain_labels_for_same_width']} rated items per system "
            "for intervals this narrow",
            highlight=False,
        )
    sample = report.get("rated_sample")
    if sample and sample["unlike_random"]:
        console.print(
            f"note: the rated items are not like a random sample of the set: their metric {_STATISTICS[sample['statistic']]} "
            f"averages {sample['rated']:.3g}, where random items as many average {sample['random']:.3g} "
            f"(99% of draws within {sample['random_low']:.3g}-{sample['random_high']:.3g}; p = {sample['p_value']:.2g}), "
            "as an informative subset method chooses them. The intervals assume randomly chosen items and are only "
            "indicative here; for intervals, rate items chosen with `budgetlab subset --method random`",
            highlight=False,
        )
    if "split" in report:
        split = report["split"]
        if split["cheap"] == 0:
            console.print(
                f"the same spend again is best put all on human ratings ({split['costly']} items): at this correlation "
                "and --cost-ratio the cheap scores do not pay for themselves",
                highlight=False,
            )
        else:
            less = 100 * (1 - split["variance_ratio"])
            gain = "" if math.isclose(less, 0.0) else f" ({less:.0f}% less variance than human labels alone)"
            console.print(
                f"the same spend again is best split as {split['costly']} human-rated items and cheap scores on "
                f"{split['cheap']}{gain}",
                highlight=False,
            )
