"""Coverage plots: pass@k (solid, with CI band) and maj@k (dashed) against k on a log2 axis."""

from __future__ import annotations

import numbers
import os
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from budgetlab.errors import InvalidArgument

__all__ = ["plot_budget_curves", "plot_coverage"]

EstimateLike = Any  # an Estimate, a mapping with "value", "lo" and "hi", or a plain number (no band)


def _triple(point: EstimateLike) -> tuple[float, float, float]:
    if isinstance(point, numbers.Real):  # e.g. build_report(...)["configs"][name]["pass_at_k"][k]
        return float(point), float(point), float(point)
    if isinstance(point, Mapping) and {"value", "lo", "hi"} <= set(point):
        return float(point["value"]), float(point["lo"]), float(point["hi"])
    if all(hasattr(point, a) for a in ("value", "lo", "hi")):
        return float(point.value), float(point.lo), float(point.hi)
    raise InvalidArgument(
        f"a curve point must be a number, an Estimate or a mapping with value, lo and hi, got {type(point).__name__} "
        f"{point!r:.40}; e.g. {{1: 0.4, 8: 0.8}} or {{k: pass_at_k_with_ci(ns, cs, k) for k in (1, 8)}}"
    )


def _series(
    curve: Mapping[int, EstimateLike],
) -> tuple[list[int], list[tuple[float, float, float]]]:
    ks = sorted(int(k) for k in curve)
    return ks, [_triple(curve[k]) for k in ks]


def plot_coverage(
    curves: Mapping[str, Mapping[int, EstimateLike]],
    path: str | os.PathLike[str],
    title: str = "Coverage vs. samples",
    maj_curves: Mapping[str, Mapping[int, EstimateLike]] | None = None,
    partial: Mapping[str, Collection[int]] | None = None,
) -> Path:
    """Write a PNG of pass@k per configuration, optionally with maj@k, and return its path.
    ``curves`` maps a configuration to ``{k: point}``, a point being an :class:`Estimate` (drawn
    with its interval as a band), a mapping with ``value``, ``lo`` and ``hi``, or a plain number
    such as a report's ``pass_at_k`` values (no band).

    A configuration present in both mappings keeps one colour so the two lines read as
    a pair. ``partial``: per configuration, the ks whose points cover fewer problems than the
    others (a policy or the budget left the rest without k samples); they are drawn hollow and a
    note says why. Parent folders of ``path`` are created.
    """
    # Figure + the Agg canvas directly, never pyplot: no global backend switch and no
    # figure registry, so this is safe in headless workers and threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import FixedLocator, NullLocator

    maj_curves = maj_curves or {}
    fig = Figure(figsize=(7.0, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    palette = [f"C{i}" for i in range(10)]
    names = list(dict.fromkeys([*curves, *maj_curves]))
    colour = {name: palette[i % len(palette)] for i, name in enumerate(names)}
    all_ks: set[int] = set()

    partial = partial or {}
    for style, lines in (({"marker": "o", "ms": 3.5}, curves), ({"ls": "--", "marker": "s", "ms": 3}, maj_curves)):
        for name, curve in lines.items():
            ks, points = _series(curve)
            if not ks:
                continue
            value, lo, hi = zip(*points)
            label = f"{name} {'pass' if lines is curves else 'maj'}@k"
            ax.plot(ks, value, color=colour[name], label=label, **style)
            hollow = [i for i, k in enumerate(ks) if k in set(partial.get(name, ()))]
            if hollow:
                ax.plot([ks[i] for i in hollow], [value[i] for i in hollow], ls="none", marker=style["marker"],
                        ms=style["ms"] + 2, mfc="white", color=colour[name])  # fmt: skip
            ax.fill_between(ks, lo, hi, color=colour[name], alpha=0.18 if lines is curves else 0.08, linewidth=0)
            all_ks.update(ks)

    ax.set_xscale("log", base=2)
    if all_ks:
        # Integer tick labels at the measured ks read better than 2^e notation.
        ax.xaxis.set_major_locator(FixedLocator(sorted(all_ks)))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.set_xticklabels([str(k) for k in sorted(all_ks)])
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("fraction of problems solved")
    ax.set_title(title)
    ax.grid(True, which="major", alpha=0.35)
    if curves or maj_curves:
        note = "hollow: over fewer problems\n(those with k samples)" if any(partial.values()) else None
        ax.legend(loc="best", fontsize="small", frameon=True, title=note, title_fontsize="x-small")

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, format="png")
    return out


def _budget_series(entry: Mapping[str, Any]) -> tuple[list[int], list[tuple[float, float, float]], list[int], list[tuple[float, float, float]]]:
    """(observed ks, points, extrapolated ks, points) of one entry of ``budget_curves``."""
    ks = sorted(int(k) for k in entry["pass_at_k"])
    seen = [(entry["pass_at_k"][str(k)], *entry["ci"][str(k)]) for k in ks]
    ext = entry.get("extrapolated") or {}
    eks = sorted(int(k) for k in ext.get("pass_at_k", {}))
    far = [(ext["pass_at_k"][str(k)], *ext["ci"][str(k)]) for k in eks]
    if eks and ks:  # join the dashed curve to the last measured point
        eks, far = [ks[-1], *eks], [seen[-1], *far]
    return ks, seen, eks, far


def _legend(fig: Any, ax: Any) -> None:
    """A few curves: the legend inside, lower right. Many (a run of ten configurations has twenty
    labels): beside the plot, where it cannot cover the curves."""
    labels = ax.get_legend_handles_labels()[1]
    if not labels:
        return
    if len(labels) <= 6:
        ax.legend(loc="lower right", fontsize="x-small")
    else:
        fig.legend(loc="outside right upper", fontsize="x-small")


def plot_budget_curves(
    curves: Mapping[str, Any],
    coverage_path: str | os.PathLike[str],
    frontier_path: str | os.PathLike[str] | None = None,
    title: str = "Coverage vs. budget",
) -> list[Path]:
    """PNGs of :func:`budgetlab.analysis.budget_curves`: coverage against samples per problem
    (measured: solid with its band; extrapolated: dashed with its band; the mix in black), and,
    with ``frontier_path``, coverage against tokens per problem, with the frontier (the best
    coverage any configuration reaches for a spend) drawn under the curves."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    entries = dict(curves.get("configs", {}))
    if curves.get("mix"):
        entries["mix (all configurations pooled)"] = curves["mix"]
    colour = {name: ("black" if name.startswith("mix") else f"C{i % 10}") for i, name in enumerate(entries)}
    written = []

    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for name, entry in entries.items():
        ks, seen, eks, far = _budget_series(entry)
        if ks:
            v, lo, hi = zip(*seen)
            ax.plot(ks, v, marker="o", ms=3, color=colour[name], label=name)
            ax.fill_between(ks, lo, hi, color=colour[name], alpha=0.15, linewidth=0)
        if len(eks) > 1:
            v, lo, hi = zip(*far)
            ax.plot(eks, v, ls="--", color=colour[name], label=f"{name} (extrapolated)")
            ax.fill_between(eks, lo, hi, color=colour[name], alpha=0.08, linewidth=0, hatch="//")
    ax.set_xscale("log", base=2)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("samples per problem (k)")
    ax.set_ylabel("fraction of problems solved (pass@k)")
    ax.set_title(f"{title} ({curves.get('method', '')}, {curves.get('interval', '')} bands)")
    ax.grid(True, alpha=0.35)
    _legend(fig, ax)
    out = Path(coverage_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, format="png")
    written.append(out)

    if frontier_path is not None:
        fig = Figure(figsize=(7.5, 4.8), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        frontier: list[tuple[float, float]] = []
        for name, entry in entries.items():
            per = float(entry.get("tokens_per_sample") or 0.0)
            if per <= 0:
                continue
            ks, seen, eks, far = _budget_series(entry)
            xs = [k * per for k in ks] + [k * per for k in eks[1:]]
            ys = [p[0] for p in seen] + [p[0] for p in far[1:]]
            ax.plot(xs[: len(ks)], ys[: len(ks)], marker="o", ms=3, color=colour[name], label=name)
            if len(eks) > 1:
                ax.plot([k * per for k in eks], [p[0] for p in far], ls="--", color=colour[name])
            if not name.startswith("mix"):
                frontier.extend(zip(xs, ys))
        if frontier:
            frontier.sort()
            best, fx, fy = -1.0, [], []
            for x, y in frontier:
                if y > best:
                    best = y
                    fx.append(x)
                    fy.append(y)
            ax.step(fx, fy, where="post", color="grey", lw=4, alpha=0.3, label="frontier (best configuration)")
        ax.set_xscale("log")
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("tokens per problem")
        ax.set_ylabel("fraction of problems solved (pass@k)")
        ax.set_title(f"{title}: cost frontier")
        ax.grid(True, alpha=0.35)
        if ax.get_legend_handles_labels()[1]:
            _legend(fig, ax)
        else:
            # No sample recorded its tokens (e.g. a replay file without them): say so on the
            # figure, rather than an empty plot and matplotlib's "no artists" warning.
            ax.text(0.5, 0.5, "no configuration recorded token counts: no cost to plot against",
                    transform=ax.transAxes, ha="center", va="center", fontsize="small", color="grey")
        out = Path(frontier_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=150, format="png")
        written.append(out)
    return written
