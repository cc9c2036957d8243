"""``budgetlab forecast``: draw a pilot of a run, then predict its cost and coverage."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from rich.console import Console

from budgetlab.cli._output import close_or_discard
from budgetlab.cli._render import plural
from budgetlab.cli._tables import fitted_tables
from budgetlab.errors import BudgetlabError, InputError

__all__ = ["add_forecast_parser", "cmd_forecast"]


def add_forecast_parser(sub: Any) -> None:
    p = sub.add_parser(
        "forecast",
        help="draw a small pilot of a run, then predict tokens, dollars, time and coverage before paying for it",
        description="Draws a pilot (a random --pilot fraction of the problems, all k samples each) as part of the run "
        "that `budgetlab run` with the same options would start, so that run later reuses it; then predicts the "
        "planned run and every --budgets entry.",
    )
    p.add_argument("--backend", help="where samples come from, e.g. replay:samples.jsonl or embedded")
    p.add_argument("--name", help="run name (default: the name budgetlab run derives from the same options)")
    p.add_argument("--problems", help="JSONL file of problems (default: the problems the backend lists)")
    p.add_argument("--task", help="a generated task with arguments, e.g. arithmetic:n=200,digits=2")
    p.add_argument("--configs", help="comma-separated configurations to sample (default: all the backend lists)")
    p.add_argument("--config", action="append", metavar="SPEC", help="a sampling configuration (repeat for several)")
    p.add_argument("--policy", help="fixed:k=K (default: fixed:k=8); forecasts need a fixed k")
    p.add_argument("-k", type=int, help="shorthand for --policy fixed:k=K")
    p.add_argument("--verifier", help="auto (default), exact or recorded")
    p.add_argument("--budget", help="the full run's limits, e.g. tokens=2e6,dollars=5 (the pilot keeps to them too)")
    p.add_argument("--seed", type=int, help="run seed (default 0); it also picks the pilot problems")
    p.add_argument("--replay-seed", type=int, help="replay backend: draw recordings in a seeded random order")
    p.add_argument("--backend-arg", action="append", metavar="KEY=VALUE", help="an option of the backend")
    p.add_argument("--concurrency", type=int, help="samples in flight at once (default 64)")
    p.add_argument("--pilot", type=float, default=0.05, help="fraction of the problems in the pilot (default 0.05)")
    p.add_argument("--budgets", help="what-ifs besides the planned run: k=64,samples=1000,tokens=2e6,dollars=5")
    p.add_argument("--method", default="bracket", help="extrapolation method for k beyond the pilot's (default bracket)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--store", default="budgetlab.db", help="store file or SQLAlchemy URL (default: budgetlab.db)")


def _options(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    from budgetlab.cli._main import _backend_options, _run_name
    from budgetlab.core import Budget
    from budgetlab.core.spec import parse_spec
    from budgetlab.tasks import load_problems, load_task

    if args.k is not None and args.policy is not None:
        raise InputError("give either -k or --policy, not both; e.g. --policy fixed:k=8")
    if args.problems and args.task:
        raise InputError("give either --problems or --task, not both")
    if not 0.0 < args.pilot <= 1.0:
        raise InputError(f"--pilot is the fraction of problems to draw first, in (0, 1], got {args.pilot}; e.g. --pilot 0.05")
    policy_text = f"fixed:k={args.k}" if args.k is not None else args.policy
    policy, policy_args = parse_spec(policy_text, "policy") if policy_text else (None, None)
    name = args.name or _run_name(args, policy_text or "fixed")
    options: dict[str, Any] = {
        "backend_options": _backend_options(args),
        "policy": policy,
        "policy_args": policy_args,
        "verifier": args.verifier,
        "budget": Budget.parse(args.budget) if args.budget is not None else None,
        "problems": load_problems(args.problems) if args.problems else (load_task(args.task) if args.task else None),
        "seed": args.seed,
        "concurrency": args.concurrency,
    }
    return name, options


def cmd_forecast(args: argparse.Namespace, console: Console) -> int:
    from budgetlab.cli._main import _select_configs
    from budgetlab.cli._progress import ProgressBar
    from budgetlab.forecast import forecast, parse_scenarios
    from budgetlab.stores import open_store

    name, options = _options(args)
    scenarios = parse_scenarios(args.budgets)
    new_store = "://" not in args.store and not Path(args.store).exists()
    store = open_store(args.store)
    try:
        try:
            if args.configs or args.config:
                options["configs"] = _select_configs(store, name, args, options["backend_options"])
            if store.find_run(name) is None and options["policy"] is None:
                options["policy"], options["policy_args"] = "fixed", {"k": 8}
            kwargs = {"store": store, "pilot": args.pilot, "scenarios": scenarios, "method": args.method}
            if args.json or args.no_progress:
                result, pilot = forecast(name, args.backend, **kwargs, **options)
            else:
                console.print(f"forecast [bold]{name}[/] · pilot {args.pilot:.0%} of the problems · store {args.store}",
                              highlight=False)
                with ProgressBar(console, f"pilot {name}") as bar:
                    result, pilot = forecast(name, args.backend, on_progress=bar, **kwargs, **options)
        except BudgetlabError:
            close_or_discard(store, args.store, new_store)
            raise
    finally:
        store.close()
    if args.json:
        print(json.dumps({**result.to_dict(), "pilot_drawn_now": pilot.drawn, "resume_with": _resume(name, args)}, indent=2))
        return 0
    print_forecast(console, result)
    console.print(f"pilot: {pilot.drawn:,} samples drawn now, kept in run {name}. The full run reuses them: "
                  f"{_resume(name, args)}", highlight=False)
    return 0


def _resume(name: str, args: argparse.Namespace) -> str:
    return f"budgetlab run --name {name} --store {args.store}"


def _fmt(value: float, kind: str) -> str:
    if kind == "tokens":
        return f"{value:,.0f}"
    if kind == "dollars":
        return f"${value:,.4f}"
    if kind == "seconds":
        unit = _time_unit(value)
        return f"{_in_unit(value, unit)} {unit}"
    return f"{100 * value:.1f}"


def _range(lo: float, hi: float, kind: str) -> str:
    """``lo-hi`` with the unit written once (the upper end's), so a range is not much wider than
    a value and the tables fit a terminal."""
    if kind == "dollars":
        return f"${lo:,.4f}-{hi:,.4f}"
    if kind == "seconds":
        unit = _time_unit(hi)
        return f"{_in_unit(lo, unit)}-{_in_unit(hi, unit)} {unit}"
    return f"{_fmt(lo, kind)}-{_fmt(hi, kind)}"


_SECONDS_PER = {"s": 1, "min": 60, "h": 3600}


def _time_unit(seconds: float) -> str:
    return "s" if seconds < 120 else "min" if seconds < 7200 else "h"


def _in_unit(seconds: float, unit: str) -> str:
    """Whole seconds; minutes and hours to two figures (a tenth below ten), which is all the
    precision a forecast of time has."""
    amount = seconds / _SECONDS_PER[unit]
    return f"{amount:,.1f}" if unit != "s" and amount < 10 else f"{amount:,.0f}"


def _cell(est: Any, kind: str) -> str:
    if est is None:
        return "-"
    return f"{_fmt(est.value, kind)}\n[dim]{_range(est.lo, est.hi, kind)}[/]"


def print_forecast(console: Console, fc: Any) -> None:
    # No pilot sample recorded its tokens (a replay file without them): tokens and dollars are
    # unknown, not zero.
    untold = all(row.tokens is None or row.tokens.hi == 0 for row in fc.rows)
    cost_rows = [[row.label, f"{row.k:,}", f"{row.samples:,}", "-" if untold else _cell(row.tokens, "tokens"),
                  "-" if untold else _cell(row.dollars, "dollars"), _cell(row.seconds, "seconds")] for row in fc.rows]  # fmt: skip
    title = (f"forecast {fc.run} · {plural(fc.problems, 'problem')} x {plural(len(fc.configs), 'configuration')} · "
             f"pilot {plural(fc.pilot_problems, 'problem')} at k={fc.pilot_k}")
    headers = ["k", "samples", "tokens", "dollars", "wall time"]
    for table in fitted_tables(console, (title, "forecast, continued"), ["what"], headers, cost_rows):
        console.print(table)
    # Coverage depends on k alone: one column per k, in order, reads as the coverage curve.
    by_k = sorted({row.k: row for row in reversed(fc.rows)}.values(), key=lambda row: row.k)
    cover_rows = []
    for name in fc.configs:
        cover_rows.append([name, "pass@k", *[_cell(r.pass_at_k.get(name), "pct") for r in by_k]])
        if any(name in r.maj_at_k for r in by_k):
            cover_rows.append([name, "maj@k", *[_cell(r.maj_at_k.get(name), "pct") for r in by_k]])
    ks = [f"k={row.k:,}" + (" *" if row.extrapolated else "") for row in by_k]
    titles = ("expected coverage, % of problems", "expected coverage, continued")
    for table in fitted_tables(console, titles, ["configuration", "metric"], ks, cover_rows):
        console.print(table)
    console.print(f"90% intervals below each value; * extrapolated beyond the pilot's k={fc.pilot_k} with method {fc.method}; "
                  "time assumes the pilot's throughput (same machine and load)", style="dim")
    if untold:
        console.print("note: no pilot sample recorded its tokens, so tokens and dollars are unknown (-)", style="dim",
                      highlight=False)  # fmt: skip
    for note in fc.notes:
        if "extrapolated" not in note:
            console.print(f"note: {note}", style="dim", highlight=False)
