"""Human-readable tables for reports and run listings."""

from __future__ import annotations

from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from budgetlab.analysis._timeouts import timed_out_note
from budgetlab.cli._tables import Name, fitted_tables
from budgetlab.core.budget import format_amount
from budgetlab.core.run import RunInfo

__all__ = ["plural", "print_budget_curves", "print_report", "print_runs"]


def plural(count: int, noun: str) -> str:
    """``1 sample``, ``2 samples``, ``1,600 samples``."""
    return f"{count:,} {noun}" + ("" if count == 1 else "s")


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _shown_ks(ks: list[int]) -> list[int]:
    """k = 1 and the two largest: enough to read the curve, narrow enough for a terminal."""
    rest = [k for k in ks if k != 1][-2:]
    return ([1] if 1 in ks else []) + rest


def print_report(console: Console, report: dict[str, Any]) -> None:
    ks = _shown_ks(sorted({int(k) for c in report["configs"].values() for k in c["pass_at_k"]}))
    maj_ks = [k for k in ks if k != 1]
    rows = []
    total = report.get("problems", 0)
    partial: dict[str, str] = {}  # configuration -> the problems its starred values cover, e.g. "105 (k=1), 42 (k=8)"

    def cell(entry: dict[str, Any], metric: str, k: int) -> str:
        value = entry[metric].get(str(k))
        n = entry.get("n_problems", {}).get(str(k))
        return _pct(value) + ("*" if value is not None and n is not None and n < total else "")

    for name, entry in report["configs"].items():
        passes = [cell(entry, "pass_at_k", k) for k in ks]
        majs = [cell(entry, "maj_at_k", k) for k in maj_ks]
        rows.append([name, f"{entry['samples']:,}", *passes, *majs])
        counts = entry.get("n_problems", {})
        short = [(k, counts[str(k)]) for k in ks if entry["pass_at_k"].get(str(k)) is not None and counts.get(str(k), total) < total]
        if len({n for _, n in short}) == 1:
            partial[name] = f"{short[0][1]:,}"
        elif short:
            partial[name] = ", ".join(f"{n:,} (k={k})" for k, n in short)
    headers = ["samples", *(f"pass@{k}" for k in ks), *(f"maj@{k}" for k in maj_ks)]
    title = f"run {report['run']} · {plural(report['samples'], 'sample')} · {report['state']}"
    for table in fitted_tables(console, (title, f"{title}, continued"), ["configuration"], headers, rows):
        console.print(table)
    console.print("% of problems solved (pass@k: any of k samples correct; maj@k: majority answer correct); intervals and every k: --json", style="dim")
    if partial:
        # A policy that stops or skips problems (esc, planner, ...), the budget or failures left some problems
        # without k samples: those values cover other problems than the rest of the table.
        which = "; ".join(f"{name} over {counts}" for name, counts in partial.items())
        console.print(
            f"* over only some of the run's {total:,} problems, those with k samples of that configuration (a policy, "
            f"the budget or failures left out the rest); values over different problems do not compare: {which}; "
            "counts per k: --json n_problems",
            style="dim", highlight=False,
        )
    for caveat in ("mixed_verdicts", "scores_only"):  # whose verdicts the table counts, or why it counts none
        if report.get(caveat):
            console.print(f"warning: {report[caveat]['note']}", style="yellow", highlight=False, markup=False, soft_wrap=True)
    for name, entry in report["configs"].items():
        if entry.get("empty") and entry["empty"] * 4 >= max(entry.get("samples", 0), 1):  # a quarter or more: a set-up problem
            console.print(
                f"warning: {entry['empty']:,} of {name}'s samples are empty text: the model stopped before writing "
                "anything; check stop= and chat= in --config (the embedded model's default stops at the first "
                "newline and sends the prompt as plain text, for few-shot prompts)",
                style="yellow", highlight=False,
            )
    if any("adaptive" in entry for entry in report["configs"].values()):
        console.print(
            "this policy stops problems early: pass@k and maj@k above average only the problems that drew k samples "
            "(the harder ones). From every problem's first samples (--json, 'adaptive'):",
            style="dim",
        )
        for name, entry in report["configs"].items():
            if "adaptive" in entry:
                for line in _adaptive_lines(name, entry["adaptive"], total):
                    console.print(line, style="dim", highlight=False)
    if report.get("budget_curves"):
        print_budget_curves(console, report["budget_curves"])
    _print_selection(console, report)
    _print_best_arm(console, report.get("best_arm"))
    spent = report["spent"]
    console.print(
        f"spent: {plural(spent['samples'], 'sample')}, {plural(spent['tokens'], 'token')}, ${spent['dollars']:.4f}, "
        f"{spent['verify_seconds']:.2f} s verifying · budget: "
        + (", ".join(f"{k}={format_amount(v)}" for k, v in report["budget"].items()) or "unlimited")
    )
    if note := timed_out_note(report):
        console.print(note, style="dim", highlight=False)
    if report["stopped_because"]:
        console.print(f"stopped because: {report['stopped_because']}")
    if report["failed"]:
        console.print(f"[yellow]{plural(report['failed'], 'sample')} failed; see their errors with --json or in the store[/]")


def _print_selection(console: Console, report: dict[str, Any]) -> None:
    """The selector's accuracy per configuration, and what a self-stopping policy saved."""
    unjudged: dict[tuple[str, str], list[tuple[str, int]]] = {}  # (selector, why) -> configurations: one line
    for name, entry in report["configs"].items():
        sel = entry.get("selection")
        if not sel or not sel.get("problems"):
            continue
        if sel.get("accuracy") is None:
            why = sel.get("unjudged_because") or "no selected answer has a verdict"
            unjudged.setdefault((sel["selector"], why), []).append((name, sel["problems"]))
            continue
        ci = sel.get("ci") or [None, None]
        note = f" · {sel['note']}" if sel.get("note") else ""
        left_out = report.get("problems", 0) - sel["problems"]
        if left_out > 0:  # failed or never drawn: the accuracy above is not over the whole run
            note += f" · {left_out:,} of the run's {report['problems']:,} problems have no finished sample and are left out"
        console.print(
            f"selected answer ({sel['selector']}), {name}: {_pct(sel['accuracy'])}% of {plural(sel['problems'], 'problem')} correct "
            f"(95% CI {_pct(ci[0])}-{_pct(ci[1])}){note}",
            highlight=False,
        )
    for (selector, why), entries in unjudged.items():
        if len(entries) == 1:
            (name, problems), = entries
            console.print(f"selected answer ({selector}), {name}: n/a for {plural(problems, 'problem')}: {why}", highlight=False)
        else:
            names = ", ".join(name for name, _ in entries)
            console.print(f"selected answer ({selector}): n/a for {len(entries)} configurations ({names}): {why}", highlight=False)
    saved = report.get("savings")
    if saved:
        # A budget that stopped the run cut the samples too: the policy alone did not save them.
        cut = " (the budget stopped the run: not all of it is the policy's saving)" if saved.get("cut_by_budget") else ""
        console.print(
            f"samples: mean {saved['mean_samples']:.1f} samples/problem vs max {saved['max_samples']} "
            f"({saved['drawn']:,} drawn vs {saved['fixed_k_samples']:,} for fixed k={saved['max_samples']}): "
            f"{100 * saved['saved']:.0f}% saved{cut}",
            highlight=False,
        )


def _print_best_arm(console: Console, best: dict[str, Any] | None) -> None:
    """What a best-arm policy (--policy ucbe, ...) names best, and how sure it is."""
    if not best:
        return
    mean = best["means"].get(best["best"])
    shown = f" (mean evaluation {mean:.3f} over {best['evaluations_per_config'][best['best']]:,})" if mean is not None else ""
    if best["identified"]:
        sure = f"identified: better than every other configuration with confidence {1 - best['delta']:.0%}"
    elif best["delta"] is None:
        sure = "its algorithm's choice (no confidence test: delta=none)"
    elif best.get("complete") or best.get("policy_done"):
        done = (f"every (problem, configuration) pair evaluated (passes={best['passes']})" if best.get("complete")
                else f"{best['algorithm']} has nothing more to draw")  # fmt: skip
        sure = (f"{done}, and the lead is within noise at confidence {1 - best['delta']:.0%}; more samples per "
                f"pair: run it again with --policy {best['more_passes']}")  # fmt: skip
    else:
        sure = (f"not yet told apart from every other configuration with confidence {1 - best['delta']:.0%}; "
                "raise the budget and run the same name again to continue")  # fmt: skip
    console.print(
        f"[bold]best configuration ({best['algorithm']}, {plural(best['evaluations'], 'evaluation')}): {best['best']}[/]"
        f"{shown} · {sure}",
        highlight=False,
    )


# Left out in this order when the terminal is too narrow for every column (--json has them all);
# the name, needed to resume or report a run, is never cut.
_RUNS_OPTIONAL = ("policy", "dollars", "tokens")
_RUNS_NUMBERS = ("samples", "tokens", "dollars")


def print_runs(console: Console, runs: list[RunInfo]) -> None:
    rows = []
    for info in runs:
        # A prior or calibrator read from a file is recorded whole: shown by its size, not its numbers.
        args = ",".join(f"{k}=<{len(v)} values>" if isinstance(v, (list, tuple, dict)) else f"{k}={v}"
                        for k, v in info.spec.policy_args.items())  # fmt: skip
        rows.append({
            "name": info.name,
            "state": info.state.value,
            "policy": info.spec.policy + (f":{args}" if args else ""),
            "samples": f"{info.spent.samples:,}",
            "tokens": f"{info.spent.tokens:,}",
            "dollars": f"{info.spent.dollars:.4f}",
        })  # fmt: skip
    shown = list(rows[0]) if rows else ["name"]
    for optional in _RUNS_OPTIONAL:
        if _table_width(shown, rows) <= console.width:
            break
        shown.remove(optional)
    table = Table(title="runs")
    for column in shown:
        # The name, the one column that may wrap, does so only when even it and the figures alone do not fit.
        table.add_column(column, no_wrap=column != "name", justify="right" if column in _RUNS_NUMBERS else "left")
    for row in rows:
        table.add_row(*(Name(row[c]) if c == "name" else row[c] for c in shown))
    console.print(table)
    left_out = [c for c in _RUNS_OPTIONAL if c not in shown]
    if left_out:
        console.print(f"({', '.join(left_out)} left out to fit the terminal: see budgetlab runs --json)", style="dim", highlight=False)
    for info in runs:
        if info.state.value != "done" and info.stopped_because:
            console.print(f"{info.name}: {info.stopped_because}", highlight=False)


def _table_width(columns: list[str], rows: list[dict[str, str]]) -> int:
    """The width of a rich table showing ``columns`` unsqueezed: each cell padded by one space
    each side, and one rule between and around the columns."""
    widths = [max([cell_len(column)] + [cell_len(r[column]) for r in rows]) for column in columns]
    return sum(widths) + 3 * len(widths) + 1


def _adaptive_lines(name: str, adaptive: dict, run_problems: int | None = None) -> list[str]:
    """pass@k and maj@k at the largest k, unbiased where every problem's first samples settle
    them; where some do not, the value covers the settled ones only, and the bounds (each
    unsettled problem counted as 0 and as 1) are what holds for all of them."""
    lines = []
    total = adaptive.get("problems")
    # A run cut by its budget has problems with no sample at all: nothing bounds those.
    cut = bool(total and run_problems and total < run_problems)
    first = adaptive["pass_at_k"].get("1")
    if first is not None and not adaptive["undetermined"]["pass_at_k"].get("1"):
        # The table's pass@1 averages every sample drawn; where a policy stopped on what it saw,
        # that average leans towards the answers that stopped it.
        lo, hi = adaptive["ci"]["pass_at_k"]["1"]
        lines.append(f"  {name}: pass@1 {_pct(first)} ({_pct(lo)}-{_pct(hi)}) from each problem's first "
                     f"{plural(adaptive['prefix'], 'sample')}{f' over the {total:,} problems reached' if cut else ''}, unbiased "
                     "(the table's pass@1 counts every sample drawn)")
    for metric, label in (("pass_at_k", "pass"), ("maj_at_k", "maj")):
        ks = [k for k, v in adaptive[metric].items() if v is not None]
        if not ks:
            continue
        k = max(ks, key=int)
        value, (lo, hi) = adaptive[metric][k], adaptive["ci"][metric][k]
        left = adaptive["undetermined"][metric][k]
        low, high = adaptive["all_problems_bounds"][metric][k]
        if not left:
            settled = f"every one of the {total:,} problems reached settled" if cut else "every problem settled"
            lines.append(f"  {name}: {label}@{k} {_pct(value)} ({_pct(lo)}-{_pct(hi)}), {settled}")
        else:
            of = f" of {total}" if total else ""
            over = f"over the {total:,} problems reached (of {run_problems:,})" if cut else "over all problems"
            lines.append(f"  {name}: {label}@{k} lies in {_pct(low)}-{_pct(high)} {over}; {left}{of} "
                         f"are not settled by their samples ({_pct(value)} over the settled ones only)")
    return lines


def print_budget_curves(console: Console, curves: dict[str, Any]) -> None:
    """pass@k extrapolated beyond the samples drawn, per configuration and for the mix."""
    entries = dict(curves.get("configs", {}))
    if curves.get("mix"):
        entries["mix (all configurations pooled)"] = curves["mix"]
    ext = {name: e["extrapolated"] for name, e in entries.items() if e.get("extrapolated") and "pass_at_k" in e["extrapolated"]}
    if not ext:
        return
    # Each configuration has its own drawn k: columns are multiples of it.
    multiples = sorted({int(k) // e["observed_k"] for e in ext.values() for k in e["pass_at_k"]})
    shown = multiples[:1] + multiples[-2:] if len(multiples) > 3 else multiples
    rows = []
    for name, e in ext.items():
        cells = []
        for m in shown:
            k = str(m * e["observed_k"])
            value = e["pass_at_k"].get(k)
            lo, hi = e["ci"].get(k, [None, None])
            cells.append("-" if value is None else f"{_pct(value)} @{k}\n[dim]{_pct(lo)}-{_pct(hi)}[/]")
        # No sample recorded its tokens (a replay file without them): unknown, not free.
        tokens = entries[name].get("tokens_per_sample") or 0
        rows.append([name, str(e["observed_k"]), f"{tokens:,.0f}" if tokens > 0 else "-", *cells])
    headers = ["drawn k", "tokens per sample", *(f"k = {m}x drawn" for m in shown)]
    title = f"extrapolated pass@k ({curves['method']}, {curves['interval']} intervals)"
    for table in fitted_tables(console, (title, f"{title}, continued"), ["configuration"], headers, rows):
        console.print(table)
    console.print("beyond the samples drawn the curve is a model: see docs/forecast.md for which fit to trust where",
                  style="dim")
