"""Coverage plots: pass@k (solid, with CI band) and maj@k (dashed) against k on a log2 axis."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["plot_coverage"]

EstimateLike = Any  # an Estimate, or a mapping with "value", "lo" and "hi"


def _triple(point: EstimateLike) -> tuple[float, float, float]:
    if isinstance(point, Mapping):
        return float(point["value"]), float(point["lo"]), float(point["hi"])
    return float(point.value), float(point.lo), float(point.hi)


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
) -> Path:
    """Write a PNG of pass@k per configuration, optionally with maj@k, and return its path.

    A configuration present in both mappings keeps one colour so the two lines read as
    a pair. Parent folders of ``path`` are created.
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

    for name, curve in curves.items():
        ks, points = _series(curve)
        if not ks:
            continue
        value, lo, hi = zip(*points)
        ax.plot(ks, value, marker="o", ms=3.5, color=colour[name], label=f"{name} pass@k")
        ax.fill_between(ks, lo, hi, color=colour[name], alpha=0.18, linewidth=0)
        all_ks.update(ks)
    for name, curve in maj_curves.items():
        ks, points = _series(curve)
        if not ks:
            continue
        value, lo, hi = zip(*points)
        ax.plot(ks, value, ls="--", marker="s", ms=3, color=colour[name], label=f"{name} maj@k")
        ax.fill_between(ks, lo, hi, color=colour[name], alpha=0.08, linewidth=0)
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
        ax.legend(loc="best", fontsize="small", frameon=True)

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, format="png")
    return out
