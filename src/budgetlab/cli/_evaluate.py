"""``budgetlab select`` (best method from a score matrix) and ``budgetlab subset`` (which items
to rate). Heavy imports stay inside the commands, so ``budgetlab --help`` stays fast."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from rich.console import Console

from budgetlab.cli._output import output_file
from budgetlab.cli._tables import fitted_tables
from budgetlab.core.spec import parse_spec
from budgetlab.errors import InputError

__all__ = ["add_select_parser", "add_subset_parser", "cmd_select", "cmd_subset", "json_text"]


def json_text(report: Any) -> str:
    """``report`` as JSON, a non-finite number as null: JSON has no NaN or Infinity, and most
    readers (jq, JSON.parse) refuse Python's spelling of them."""

    def finite(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: finite(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [finite(v) for v in value]
        return value

    return json.dumps(finite(report), indent=2)


def _count_or_fraction(text: str, flag: str, whole: str, example: str) -> float | int:
    """``--budget``/``--size``: a whole count (an ``int``) or a fraction in (0, 1] (a ``float``;
    1 is all of ``whole``). Anything else is refused: 1.5 meant as 1.5% would otherwise buy one."""
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{flag} {text!r} is not a number; give a count or a fraction, e.g. {example}") from None
    if not 0 < value < math.inf or (value > 1 and not value.is_integer()):
        raise InputError(f"{flag} {text} is neither a whole count nor a fraction in (0, 1] of {whole}; e.g. {example}")
    return int(value) if value > 1 else value


def _positive_number(text: str, flag: str, example: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise InputError(f"{flag} must be a positive finite number, got {text}; e.g. {example}")
    return value


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise InputError(f"--seed must be a whole number >= 0, got {seed}; e.g. --seed 0")


def add_select_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("select", help="name the best method of a score matrix for a fraction of the evaluations")
    p.add_argument("path", nargs="?", help="score matrix (.json/.csv/.npz, methods x examples) or replay .jsonl")
    p.add_argument("--run", help="read the matrix from this run of --store instead of a file")
    p.add_argument("--store", default="budgetlab.db", help="store holding --run (default: budgetlab.db)")
    p.add_argument(
        "--algorithm",
        default="ucbe-lrf",
        help="uniform, halving, ucbe or ucbe-lrf, with arguments, e.g. ucbe:a=1 (default ucbe-lrf)",
    )
    p.add_argument(
        "--budget",
        default="0.05",
        help="evaluations: a whole count (e.g. 900; at least one per method), or a fraction of the full matrix "
        "in (0, 1] (e.g. 0.05; 1 is the whole matrix) (default 0.05)",
    )
    p.add_argument("--delta", type=float, help="also stop once the best is identified with confidence 1-DELTA (e.g. 0.05)")
    p.add_argument("--seed", type=int, default=0, help="seed of the example order (default 0)")
    p.add_argument(
        "--bernoulli", action="store_true", help="an evaluation draws 0/1 with the cell's score as probability"
    )
    p.add_argument("--top", type=int, default=10, help="rows of the ranking to print (default 10)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def add_subset_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("subset", help="choose the items of an evaluation set worth rating by (costly) humans")
    p.add_argument(
        "path", help="evaluation set: JSONL (gz ok) in the subset2evaluate format, or CSV with a row per item and system"
    )
    p.add_argument(
        "--method",
        default="auto",
        help="random, variance, agreement, consistency, diversity, irt, separation or combined (several methods' "
        "orders averaged), with arguments, e.g. variance:metric=BLEU_4 or combined:methods=irt+diversity (default "
        "auto: agreement for a set with a metric, the most robust over the human-evaluation sets of "
        "bench/subset.py and bench/subset_heldout.py and declared in advance on the recorded-LLM sets of "
        "bench/subset_validation.py; diversity for a set with no metric)",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument(
        "--size",
        help="items to choose: a whole count (e.g. 50), or a fraction of the set in (0, 1] (e.g. 0.25; 1 is every "
        "item) (default 0.25)",
    )
    size.add_argument(
        "--cost-budget",
        help="choose the most useful items whose costs ('cost' field, else words to read) fit this budget",
    )
    p.add_argument("--seed", type=int, default=0, help="seed for random and stochastic methods (default 0)")
    p.add_argument(
        "--human",
        help="human score to check the subset's ranking against (default: the overall dimension); never used "
        "as a metric",
    )
    p.add_argument(
        "--output",
        help="write the chosen items, in selection order and without their human scores, to this file: JSONL, or CSV "
        "(a row per item and system, for raters' spreadsheets) when its name ends in .csv",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")


def cmd_select(args: argparse.Namespace, console: Console) -> int:
    import numpy as np

    from budgetlab.evaluation import load_run_matrix, load_score_matrix
    from budgetlab.evaluation.selection import make_algorithm, simulate

    if (args.path is None) == (args.run is None):
        raise InputError(
            "give a score file or --run NAME (with --store), not both or neither; e.g. budgetlab select scores.csv"
        )
    budget = _count_or_fraction(args.budget, "--budget", "the full matrix", "--budget 0.05 or --budget 900")
    _check_seed(args.seed)
    if args.delta is not None and not 0 < args.delta < 1:
        raise InputError(f"--delta must be between 0 and 1 (the chance of naming a wrong best), got {args.delta:g}; e.g. --delta 0.05")
    if args.top < 1:
        raise InputError(f"--top must be a whole number >= 1 (rows of the ranking to print), got {args.top}; e.g. --top 10")
    name, options = parse_spec(args.algorithm, "algorithm")
    algorithm = make_algorithm(name, options)
    matrix = load_run_matrix(args.store, args.run) if args.run else load_score_matrix(args.path)
    result = simulate(algorithm, matrix, budget, seed=args.seed, delta=args.delta, bernoulli=args.bernoulli)
    full = matrix.means()
    index = {m: i for i, m in enumerate(matrix.methods)}
    full_best = matrix.methods[int(full.argmax())]
    tied = [m for m, v in zip(matrix.methods, full) if m != full_best and np.isclose(v, full.max())]
    report = result.to_dict() | {
        "source": args.run or args.path,
        "methods": len(matrix.methods),
        "examples": len(matrix.examples),
        "full_evaluation_best": full_best,
        "agrees_with_full_evaluation": result.best == full_best or result.best in tied,
    }
    if tied:
        report["full_evaluation_tied_with"] = tied
    for row in report["ranking"]:
        row["full_mean"] = float(full[index[row["method"]]])
    capped = isinstance(budget, int) and budget > result.total
    if capped:
        report["budget_asked"] = budget
    missing = len(matrix.methods) * len(matrix.examples) - matrix.available
    if missing:
        # A live run (or a sheet with gaps) has cells with no score: "full" means what is there,
        # and a run that stopped early, or chose what to evaluate, is not a full evaluation.
        report["missing_cells"] = missing
        report["missing_notice"] = (
            f"{missing:,} of the {len(matrix.methods) * len(matrix.examples):,} (method, example) cells have no "
            "score: the full-matrix means and the full evaluation's best are over the scored cells only"
            + (", which the run's policy chose (evaluate every cell, e.g. -k 1, for a full one)" if args.run else "")
        )
    if args.path is not None and len(matrix.methods) > len(matrix.examples):
        # A sheet of items x prompts (rows are examples) reads as hundreds of "methods".
        report["notice"] = (
            f"{len(matrix.methods)} methods x {len(matrix.examples)} examples: more methods than examples; if the "
            "file's rows are examples and its columns methods, transpose it (one row per method)"
        )
    if args.json:
        print(json_text(report))
        return 0
    title = f"{result.algorithm} on {report['source']} · {len(matrix.methods)} methods x {len(matrix.examples)} examples"
    rows = [[str(rank), row["method"], "-" if row["estimate"] is None else f"{row['estimate']:.4f}", f"{row['evaluations']:,}",
             f"{row['full_mean']:.4f}"] for rank, row in enumerate(report["ranking"][: max(1, args.top)], 1)]  # fmt: skip
    headers = ["estimate", "evaluations", "full-matrix mean"]
    for table in fitted_tables(console, (title, f"{title}, continued"), ["rank", "method"], headers, rows):
        console.print(table)
    console.print(f"best method: [bold]{result.best}[/]", highlight=False)
    console.print(
        f"evaluations used: {result.evaluations:,} of {result.total:,} ({100 * result.fraction:.1f}%) · {result.stopped_because}",
        highlight=False,
    )
    if capped:
        console.print(
            f"--budget {budget:,} is more than the {result.total:,} evaluations of the full matrix: capped there",
            highlight=False,
        )
    verdict = "agrees" if result.best == full_best else "DISAGREES"
    if tied:  # the full evaluation cannot tell them apart: any of them is as right as the other
        verdict = "agrees" if result.best in tied else verdict
        console.print(f"the full evaluation ties {full_best} with {', '.join(tied)} at the best mean: this choice {verdict}",
                      highlight=False)  # fmt: skip
    else:
        console.print(f"the full evaluation names {full_best} best: this choice {verdict}", highlight=False)
    for key in ("missing_notice", "notice"):
        if key in report:
            console.print(f"note: {report[key]}", highlight=False)
    return 0


def cmd_subset(args: argparse.Namespace, console: Console) -> int:
    import numpy as np

    from budgetlab.evaluation.subset import ItemSet, choose, load_items, make_subset_method, method_for, rank_agreement

    size = cost_budget = None
    if args.cost_budget is not None:
        cost_budget = _positive_number(args.cost_budget, "--cost-budget", "--cost-budget 1000")
    else:
        size = _count_or_fraction(
            "0.25" if args.size is None else args.size, "--size", "the set", "--size 0.25 or --size 50"
        )
    _check_seed(args.seed)
    output = None if args.output is None else output_file(args.output, "a file path", "to_rate.jsonl")
    if output is not None and output.exists() and Path(args.path).exists() and output.samefile(args.path):
        # Writing the subset there would replace the evaluation set, human scores and all.
        raise InputError(
            f"--output {args.output} is the evaluation set being read; give another file, e.g. --output to_rate.jsonl"
        )
    data = load_items(args.path, human=args.human or ())
    name, options = (method_for(data), {}) if args.method == "auto" else parse_spec(args.method, "subset method")
    metric = options.get("metric")
    if isinstance(metric, str) and metric in data.keys and data.is_human(metric):
        # Ordering the items by the score the raters are about to give is not a choice before rating.
        raise InputError(
            f"--method {args.method}: {metric!r} is a human score, not a metric; name an automatic one, e.g. "
            f"{name}:metric={(data.metric_keys or ('auto',))[0]} (the set's metrics: "
            f"{', '.join(data.metric_keys) or 'none'})"
        )
    method = make_subset_method(name, options)
    rated = _rated_items(data, args.human)
    if rated.any() and not rated.all():
        # A second round: the items raters have scored already would be paid for again.
        # (A set rated in full is the other use: measuring how well a subset ranks the systems.)
        fresh = np.flatnonzero(~rated)
        pool = ItemSet([data.items[i] for i in fresh], name=data.name, human=tuple(data.declared_human))
        chosen = fresh[choose(pool, method, size=size, cost_budget=cost_budget, seed=args.seed)]
    else:
        chosen = choose(data, method, size=size, cost_budget=cost_budget, seed=args.seed)
    costs = data.costs()
    report: dict = {
        "source": args.path,
        "method": name,
        "method_chosen": args.method == "auto",
        "items": len(data),
        "chosen": [data.items[i].id for i in chosen],
        "cost": float(costs[chosen].sum()),
    }
    pool_size = int((~rated).sum()) if rated.any() and not rated.all() else len(data)
    capped = isinstance(size, int) and size > pool_size
    if capped:
        report["size_asked"] = size
    if pool_size < len(data):
        report["already_rated"] = int(rated.sum())
    elif (data.human_keys or args.human) and len(data.systems) > 1:  # one system has no ranking to agree with
        rho, tau = rank_agreement(data.human(args.human), chosen)
        report["ranking_agreement"] = {"spearman": rho, "kendall": tau}
    if output is not None:
        _write_items(output, data, chosen)
    if args.json:
        print(json_text(report))
        return 0
    title = f"{name} on {data.name} · {len(chosen)} of {len(data)} items"
    rows = [[str(rank), data.items[i].id, f"{costs[i]:g}"] for rank, i in enumerate(chosen[:20], 1)]
    for table in fitted_tables(console, (title, f"{title}, continued"), ["#", "item"], ["cost"], rows):
        console.print(table)
    if len(chosen) > 20:
        console.print(f"... and {len(chosen) - 20} more (all of them: --json or --output)")
    console.print(f"{len(chosen)} items chosen, total cost {float(np.sum(costs[chosen])):g}", highlight=False)
    if "already_rated" in report:
        console.print(
            f"{report['already_rated']:,} items already have a human score and are left out: chosen among the "
            f"{pool_size:,} not rated yet", highlight=False,
        )  # fmt: skip
    if capped:
        among = f"the set's {pool_size} items" if pool_size == len(data) else f"the {pool_size} items not rated yet"
        console.print(f"--size {size} is more than {among}: capped there", highlight=False)
    if "ranking_agreement" in report:
        agreement = report["ranking_agreement"]
        console.print(
            f"system ranking on the subset vs all items (human scores): Spearman {agreement['spearman']:.3f}, "
            f"Kendall {agreement['kendall']:.3f}",
            highlight=False,
        )
    if args.method == "auto":
        why = {"agreement": "a metric", "diversity": "no metric"}[name]
        console.print(f"method {name}: the default for a set with {why} (--method to choose another)", highlight=False)
    if args.output:
        console.print(f"chosen items written to {args.output}", highlight=False)
    return 0


def _rated_items(data, human: str | None):  # type: ignore[no-untyped-def]
    """Which items have a human score for some system (none when the set has no human score)."""
    import numpy as np

    if not (data.human_keys or human):
        return np.zeros(len(data), bool)
    return ~np.isnan(data.human(human)).all(axis=1)


def _write_csv_rows(fh, data, chosen) -> None:  # type: ignore[no-untyped-def]
    """The chosen items as CSV, one row per item and system (the reader's ``item,system,...``
    shape), without human scores: a spreadsheet raters can fill in. A system with neither an
    output nor a metric on an item (only the human scores left out) has nothing to rate there."""
    import csv

    def text(value) -> str:  # type: ignore[no-untyped-def]
        return "" if value is None else value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)

    items = [data.items[i] for i in chosen]
    keys = list(dict.fromkeys(k for it in items for v in it.scores.values() for k in v if not data.is_human(k)))
    writer = csv.writer(fh)
    writer.writerow(["item", "system", "src", "ref", "output", "cost", *keys])
    for it in items:
        for system in data.systems:
            values = {k: v for k, v in it.scores.get(system, {}).items() if not data.is_human(k) and v is not None}
            if system not in it.tgt and not values:
                continue
            writer.writerow(
                [it.id, system, text(it.src), text(it.ref), it.tgt.get(system, ""), "" if it.cost is None else it.cost,
                 *(values.get(k, "") for k in keys)]
            )  # fmt: skip


def _item_row(data, it) -> dict:  # type: ignore[no-untyped-def]
    """An item as a JSONL row of the subset2evaluate format, without its human scores."""
    row = {
        "i": it.id,
        "src": it.src,
        "ref": it.ref,
        "tgt": dict(it.tgt),
        "scores": {s: {k: v for k, v in values.items() if not data.is_human(k)} for s, values in it.scores.items()},
    }
    if it.cost is not None:
        row["cost"] = it.cost
    return row


def _write_items(path: Path, data, chosen) -> None:  # type: ignore[no-untyped-def]
    """The chosen items for the raters, without the human scores the set already has: the
    raters' file should not show them the answers, nor carry old ratings into new ones."""
    import gzip

    tmp = path.with_name(path.name + ".tmp")
    # A .gz name is written gzipped, as every command that reads the file expects.
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    as_csv = ".csv" in [s.lower() for s in path.suffixes[-2:]]
    try:
        with opener(tmp, "wt", encoding="utf-8", newline="" if as_csv else None) as fh:
            if as_csv:
                _write_csv_rows(fh, data, chosen)
            else:
                for i in chosen:
                    fh.write(json.dumps(_item_row(data, data.items[i]), ensure_ascii=False) + "\n")
        tmp.replace(path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise InputError(
            f"cannot write the chosen items to {path} ({exc.strerror or exc}); give another --output"
        ) from None
