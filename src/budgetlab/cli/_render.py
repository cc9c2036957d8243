"""Human-readable tables for reports and run listings."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from budgetlab.core.run import RunInfo

__all__ = ["print_budget_curves", "print_report", "print_runs"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _shown_ks(ks: list[int]) -> list[int]:
    """k = 1 and the two largest: enough to read the curve, narrow enough for a terminal."""
    rest = [k for k in ks if k != 1][-2:]
    return ([1] if 1 in ks else []) + rest


def print_report(console: Console, report: dict[str, Any]) -> None:
    ks = _shown_ks(sorted({int(k) for c in report["configs"].values() for k in c["pass_at_k"]}))
    maj_ks = [k for k in ks if k != 1]
    table = Table(title=f"run {report['run']} · {report['samples']:,} samples · {report['state']}")
    table.add_column("configuration", no_wrap=True)
    table.add_column("samples", justify="right")
    for k in ks:
        table.add_column(f"pass@{k}", justify="right")
    for k in maj_ks:
        table.add_column(f"maj@{k}", justify="right")
    for name, entry in report["configs"].items():
        passes = [_pct(entry["pass_at_k"].get(str(k))) for k in ks]
        majs = [_pct(entry["maj_at_k"].get(str(k))) for k in maj_ks]
        table.add_row(name, f"{entry['samples']:,}", *passes, *majs)
    console.print(table)
    console.print("% of problems solved (pass@k: any of k samples correct; maj@k: majority answer correct); intervals and every k: --json", style="dim")
    if any("adaptive" in entry for entry in report["configs"].values()):
        console.print(
            "this policy stops problems early: pass@k and maj@k above average the problems that drew k samples "
            "(the harder ones); estimates that stay unbiased under stopping: --json, 'adaptive'",
            style="dim",
        )
    if report.get("budget_curves"):
        print_budget_curves(console, report["budget_curves"])
    _print_selection(console, report)
    spent = report["spent"]
    console.print(
        f"spent: {spent['samples']:,} samples, {spent['tokens']:,} tokens, ${spent['dollars']:.4f}, "
        f"{spent['verify_seconds']:.2f} s verifying · budget: "
        + (", ".join(f"{k}={v:g}" for k, v in report["budget"].items()) or "unlimited")
    )
    if report["stopped_because"]:
        console.print(f"stopped because: {report['stopped_because']}")
    if report["failed"]:
        console.print(f"[yellow]{report['failed']} samples failed; see their errors with --json or in the store[/]")


def _print_selection(console: Console, report: dict[str, Any]) -> None:
    """The selector's accuracy per configuration, and what a self-stopping policy saved."""
    for name, entry in report["configs"].items():
        sel = entry.get("selection")
        if not sel or sel.get("accuracy") is None:
            continue
        ci = sel.get("ci") or [None, None]
        console.print(
            f"selected answer ({sel['selector']}), {name}: {_pct(sel['accuracy'])}% of {sel['problems']:,} problems correct "
            f"(95% CI {_pct(ci[0])}-{_pct(ci[1])})",
            highlight=False,
        )
    saved = report.get("savings")
    if saved:
        console.print(
            f"samples: mean {saved['mean_samples']:.1f} samples/problem vs max {saved['max_samples']} "
            f"({saved['drawn']:,} drawn vs {saved['fixed_k_samples']:,} for fixed k={saved['max_samples']}): "
            f"{100 * saved['saved']:.0f}% saved",
            highlight=False,
        )


def print_runs(console: Console, runs: list[RunInfo]) -> None:
    table = Table(title="runs")
    table.add_column("name", no_wrap=True)
    table.add_column("state", no_wrap=True)
    table.add_column("policy", no_wrap=True)
    for col in ("samples", "tokens", "dollars"):
        table.add_column(col, justify="right", no_wrap=True)
    for info in runs:
        args = ",".join(f"{k}={v}" for k, v in info.spec.policy_args.items())
        table.add_row(
            info.name,
            info.state.value,
            info.spec.policy + (f":{args}" if args else ""),
            f"{info.spent.samples:,}",
            f"{info.spent.tokens:,}",
            f"{info.spent.dollars:.4f}",
        )
    console.print(table)
    for info in runs:
        if info.state.value != "done" and info.stopped_because:
            console.print(f"{info.name}: {info.stopped_because}", highlight=False)


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
    table = Table(title=f"extrapolated pass@k ({curves['method']}, {curves['interval']} intervals)")
    table.add_column("configuration", no_wrap=True)
    table.add_column("drawn k", justify="right")
    table.add_column("tokens/sample", justify="right")
    for m in shown:
        table.add_column(f"k = {m} x drawn", justify="right")
    for name, e in ext.items():
        cells = []
        for m in shown:
            k = str(m * e["observed_k"])
            value = e["pass_at_k"].get(k)
            lo, hi = e["ci"].get(k, [None, None])
            cells.append("-" if value is None else f"{_pct(value)} @{k}\n[dim]{_pct(lo)}-{_pct(hi)}[/]")
        table.add_row(name, str(e["observed_k"]), f"{entries[name]['tokens_per_sample']:,.0f}", *cells)
    console.print(table)
    console.print("beyond the samples drawn the curve is a model: see docs/forecast.md for which fit to trust where",
                  style="dim")
