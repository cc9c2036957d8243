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


def _palette(n: int) -> list[Any]:
    """``n`` colours that stay apart: matplotlib's ten, then tab20's light shades after its dark
    ones (eleven configurations used to repeat the first colours), then a sampled colormap."""
    from matplotlib import colormaps

    if n <= 10:
        return [f"C{i}" for i in range(n)]
    if n <= 20:
        tab20: Any = colormaps["tab20"].colors  # type: ignore[attr-defined]  # a ListedColormap
        return [tab20[2 * i] for i in range(10)] + [tab20[2 * i + 1] for i in range(n - 10)]
    turbo = colormaps["turbo"]
    return [turbo(0.05 + 0.9 * i / (n - 1)) for i in range(n)]


_LABEL_MAX = 40  # characters of a legend label; a longer one keeps its head and tail around "…"


def _short_labels(names: list[str]) -> tuple[dict[str, str], str | None]:
    """Legend labels for configuration names, and a line naming what they all share. Names such as
    ``meta-llama/Llama-3.1-70B-Instruct/prompt=v0/top_p=0.95`` differ in one or two path parts:
    the parts every name shares (whole ``/`` parts, leading and trailing) go once into the
    legend's title, and a label still too long is cut in its middle. Labels stay distinct, or the
    names are kept whole."""
    labels = {name: name for name in names}
    shared = None
    parts = [name.split("/") for name in names]
    if len(names) >= 2 and all(len(p) >= 2 for p in parts):
        lead = 0
        while all(len(p) > lead + 1 for p in parts) and len({p[lead] for p in parts}) == 1:
            lead += 1
        tail = 0
        while all(len(p) > lead + tail + 1 for p in parts) and len({p[-1 - tail] for p in parts}) == 1:
            tail += 1
        if lead or tail:
            cut = {name: "/".join(p[lead : len(p) - tail]) for name, p in zip(names, parts)}
            if len(set(cut.values())) == len(names):
                labels = cut
                head = "/".join(parts[0][:lead]) + "/" if lead else ""
                end = "/" + "/".join(parts[0][len(parts[0]) - tail :]) if tail else ""
                shared = f"all: {head}…{end}"
    short = {}
    for name, label in labels.items():
        if len(label) > _LABEL_MAX:
            keep = (_LABEL_MAX - 1) // 2
            label = label[:keep] + "…" + label[-keep:]
        short[name] = label
    if len(set(short.values())) < len(short):  # the cut made two the same: the full labels
        short = labels
    return short, shared


def _place_legend(fig: Any, ax: Any, handles: list[Any] | None = None, labels: list[str] | None = None,
                  title: str | None = None) -> None:
    """A few entries: inside the axes where they cover the least data. Many (a run of ten
    configurations): beside the plot, where they cannot cover the curves, in columns of 20."""
    if handles is None or labels is None:
        handles, labels = ax.get_legend_handles_labels()
    if not labels:
        return
    options = {"fontsize": "x-small", "title": title, "title_fontsize": "x-small", "alignment": "left"}
    if len(labels) <= 6:
        ax.legend(handles, labels, loc="best", frameon=True, **options)
    else:
        fig.legend(handles, labels, loc="outside right upper", ncols=-(-len(labels) // 20), **options)


def _style_key(styles: list[tuple[str, dict[str, Any]]]) -> list[Any]:
    """Grey legend entries that say what each line style means (one entry per style, so that a
    configuration needs one entry, its colour, whatever it is drawn as)."""
    from matplotlib.lines import Line2D

    return [Line2D([], [], color="0.3", label=label, **style) for label, style in styles]


def _fit_title(fig: Any, ax: Any, title: str) -> None:
    """The title, on as many lines as it takes to stay over the axes: a long run name ran off both
    sides of the figure and under a legend beside the plot."""
    import textwrap

    renderer = None
    for width in (70, 60, 50, 42, 34, 28, 22):
        ax.set_title("\n".join(textwrap.fill(line, width) for line in title.split("\n")))
        fig.canvas.draw()  # lays the figure out (constrained layout), with this title
        renderer = renderer or fig.canvas.get_renderer()
        box, room = ax.title.get_window_extent(renderer), ax.get_window_extent(renderer)
        if box.x0 >= room.x0 - 2 and box.x1 <= room.x1 + 2:
            return


def _band_fade(curves: int) -> float:
    """How much lighter each band is drawn with many curves: a dozen overlapping bands at full
    strength turn the plot into one grey-brown smear that hides the lines."""
    return min(1.0, 4 / max(curves, 1))


def _band_key(interval: str | None) -> Any:
    """The legend entry of the shaded bands: which interval they are, when the caller says."""
    from matplotlib.patches import Patch

    return Patch(facecolor="0.3", alpha=0.2, linewidth=0, label=f"{interval} interval" if interval else "interval (shaded)")


def _colour_key(names: list[str], colour: dict[str, Any], labels: dict[str, str]) -> list[Any]:
    from matplotlib.lines import Line2D

    return [Line2D([], [], color=colour[name], lw=2.5, label=labels.get(name, name)) for name in names]


def _integer_log2_axis(axis: Any, ticks: list[int] | None = None) -> None:
    """A base-2 log axis labelled with plain integers (1, 4, 16, ...), not 2^e."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullLocator

    axis.set_major_locator(FixedLocator(ticks) if ticks else LogLocator(base=2))
    axis.set_minor_locator(NullLocator())
    axis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:,.0f}" if x >= 1 else f"{x:g}"))


def plot_coverage(
    curves: Mapping[str, Mapping[int, EstimateLike]],
    path: str | os.PathLike[str],
    title: str = "Coverage vs. samples",
    maj_curves: Mapping[str, Mapping[int, EstimateLike]] | None = None,
    partial: Mapping[str, Collection[int]] | None = None,
    interval: str | None = None,
) -> Path:
    """Write a PNG of pass@k per configuration, optionally with maj@k, and return its path.
    ``curves`` maps a configuration to ``{k: point}``, a point being an :class:`Estimate` (drawn
    with its interval as a band), a mapping with ``value``, ``lo`` and ``hi``, or a plain number
    such as a report's ``pass_at_k`` values (no band).

    A configuration present in both mappings keeps one colour so the two lines read as
    a pair; the legend has one entry per configuration (its colour) and one per line style
    (pass@k solid, maj@k dashed). ``partial``: per configuration, the ks whose points cover fewer
    problems than the others (a policy or the budget left the rest without k samples); they are
    drawn hollow and a note says why. ``interval`` names the bands in the legend (e.g. "95%
    bootstrap"). Parent folders of ``path`` are created.
    """
    # Figure + the Agg canvas directly, never pyplot: no global backend switch and no
    # figure registry, so this is safe in headless workers and threads.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    maj_curves = maj_curves or {}
    fig = Figure(figsize=(7.0, 4.5), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    names = list(dict.fromkeys([*curves, *maj_curves]))
    colour = dict(zip(names, _palette(len(names))))
    all_ks: set[int] = set()
    drawn: list[str] = []
    fade = _band_fade(len(names))
    banded = False

    partial = partial or {}
    pass_style: dict[str, Any] = {"marker": "o", "ms": 3.5}
    maj_style: dict[str, Any] = {"ls": "--", "marker": "s", "ms": 3}
    for style, lines in ((pass_style, curves), (maj_style, maj_curves)):
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
            ax.fill_between(ks, lo, hi, color=colour[name], alpha=(0.18 if lines is curves else 0.08) * fade, linewidth=0)
            banded = banded or any(h > low for low, h in zip(lo, hi))
            all_ks.update(ks)
            drawn.append(name)

    ax.set_xscale("log", base=2)
    if all_ks:
        # Integer tick labels at the measured ks read better than 2^e notation.
        _integer_log2_axis(ax.xaxis, sorted(all_ks))
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("k (samples per problem)")
    ax.set_ylabel("fraction of problems solved")
    ax.grid(True, which="major", alpha=0.35)
    shown = list(dict.fromkeys(drawn))
    if shown:
        labels, shared = _short_labels(shown)
        notes = [shared] if shared else []
        if any(partial.get(name) for name in shown):
            notes.append("hollow: over fewer problems\n(those with k samples)")
        has_maj = any(name in maj_curves and maj_curves[name] for name in shown)
        if len(shown) == 1 and not has_maj:
            handles = ax.get_legend_handles_labels()[0]
        else:
            key = _style_key([("pass@k", pass_style)] + ([("maj@k", maj_style)] if has_maj else []))
            handles = _colour_key(shown, colour, labels) + key
        if banded:
            handles.append(_band_key(interval))
        texts = [str(h.get_label()) for h in handles]
        _place_legend(fig, ax, handles, texts, title="\n".join(notes) or None)
    _fit_title(fig, ax, title)

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, format="png")
    return out


def _budget_series(entry: Mapping[str, Any]) -> tuple[list[int], list[tuple[float, float, float]], list[int], list[tuple[float, float, float]], list[int], list[tuple[float, float, float]]]:
    """(measured ks, points, extrapolated ks, points, partial ks, points) of one entry of
    ``budget_curves``. Measured points are over every problem up to ``observed_k`` (the fewest
    samples any problem has); beyond it (a stopping policy, the budget) a point covers only the
    problems that drew k samples, usually the harder ones: those are the *partial* points, never
    joined to the curve. The extrapolated curve starts at the last measured point."""
    ks = sorted(int(k) for k in entry["pass_at_k"])
    points = {k: (entry["pass_at_k"][str(k)], *entry["ci"][str(k)]) for k in ks}
    observed = int(entry.get("observed_k") or (ks[-1] if ks else 0))
    full = [k for k in ks if k <= observed]
    part = [k for k in ks if k > observed]
    ext = entry.get("extrapolated") or {}
    eks = sorted(int(k) for k in ext.get("pass_at_k", {}))
    far = [(ext["pass_at_k"][str(k)], *ext["ci"][str(k)]) for k in eks]
    if eks and full:  # join the dashed curve to the last measured point
        eks, far = [full[-1], *eks], [points[full[-1]], *far]
    return full, [points[k] for k in full], eks, far, part, [points[k] for k in part]


def _legend(fig: Any, ax: Any) -> None:
    """A few curves: the legend inside, where it covers the least. Many (a run of ten
    configurations has twenty labels): beside the plot, where it cannot cover the curves."""
    _place_legend(fig, ax)


def _problems_note(entry: Mapping[str, Any], run_problems: int | None) -> str:
    """" (125 of 369 problems)" for a configuration the budget or failures left short of the run."""
    problems = entry.get("problems")
    if run_problems and problems is not None and problems < run_problems:
        return f" ({problems:,} of {run_problems:,} problems)"
    return ""


def plot_budget_curves(
    curves: Mapping[str, Any],
    coverage_path: str | os.PathLike[str],
    frontier_path: str | os.PathLike[str] | None = None,
    title: str = "Coverage vs. budget",
) -> list[Path]:
    """PNGs of :func:`budgetlab.analysis.budget_curves`: coverage against samples per problem
    (measured: solid with its band; extrapolated: dashed with its band; the mix in black;
    points beyond the samples every problem has, over fewer problems, hollow and unjoined), and,
    with ``frontier_path``, coverage against tokens per problem, with the frontier (the best
    coverage any configuration reaches for a spend, measured or extrapolated) drawn under the
    curves. The legend has one entry per configuration and one per line style."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    entries = dict(curves.get("configs", {}))
    mix = "mix (all configurations pooled)"
    if curves.get("mix"):
        entries[mix] = curves["mix"]
    configs = [name for name in entries if name != mix]
    colour: dict[str, Any] = dict(zip(configs, _palette(len(configs))))
    colour[mix] = "black"
    short, shared = _short_labels(configs)
    run_problems = curves.get("run_problems")
    labels = {name: f"{short.get(name, name)}{_problems_note(entries[name], run_problems)}" for name in entries}
    written = []
    measured_style: dict[str, Any] = {"marker": "o", "ms": 3}
    extrapolated_style: dict[str, Any] = {"ls": "--"}
    interval = curves.get("interval") or ""
    method = curves.get("method") or ""

    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    any_ext = any_part = False
    all_x: list[int] = []
    fade = _band_fade(len(entries))
    for name, entry in entries.items():
        ks, seen, eks, far, pks, part = _budget_series(entry)
        if ks:
            v, lo, hi = zip(*seen)
            ax.plot(ks, v, color=colour[name], **measured_style)
            ax.fill_between(ks, lo, hi, color=colour[name], alpha=0.15 * fade, linewidth=0)
        if len(eks) > 1:
            v, lo, hi = zip(*far)
            ax.plot(eks, v, color=colour[name], **extrapolated_style)
            ax.fill_between(eks, lo, hi, color=colour[name], alpha=0.08 * fade, linewidth=0, hatch="//")
            any_ext = True
        if pks:
            ax.plot(pks, [p[0] for p in part], ls="none", marker="o", ms=5, mfc="white", color=colour[name])
            any_part = True
        all_x += ks + eks + pks
    ax.set_xscale("log", base=2)
    if all_x:
        _integer_log2_axis(ax.xaxis)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("samples per problem (k)")
    ax.set_ylabel("fraction of problems solved (pass@k)")
    ax.grid(True, alpha=0.35)
    key = [("measured", measured_style)]
    if any_ext:
        key.append((f"extrapolated ({method})" if method else "extrapolated", extrapolated_style))
    if any_part:
        key.append(("over fewer problems (those with k samples)", {"ls": "none", "marker": "o", "ms": 5, "mfc": "white"}))
    handles = _colour_key(list(entries), colour, labels) + _style_key(key)
    if entries:
        handles.append(_band_key(interval or None))
    _place_legend(fig, ax, handles, [h.get_label() for h in handles], title=shared)
    _fit_title(fig, ax, f"{title}: pass@k against samples per problem")
    out = Path(coverage_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=150, format="png")
    written.append(out)

    if frontier_path is not None:
        fig = Figure(figsize=(7.5, 4.8), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        frontier: list[tuple[float, float]] = []
        costed: list[str] = []
        any_ext = False
        for name, entry in entries.items():
            per = float(entry.get("tokens_per_sample") or 0.0)
            if per <= 0:
                continue
            ks, seen, eks, far, _pks, _part = _budget_series(entry)
            xs = [k * per for k in ks] + [k * per for k in eks[1:]]
            ys = [p[0] for p in seen] + [p[0] for p in far[1:]]
            ax.plot(xs[: len(ks)], ys[: len(ks)], color=colour[name], **measured_style)
            if len(eks) > 1:
                ax.plot([k * per for k in eks], [p[0] for p in far], color=colour[name], **extrapolated_style)
                any_ext = True
            if name != mix:
                frontier.extend(zip(xs, ys))
            costed.append(name)
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("tokens per problem (prompt + completion)")
        ax.set_ylabel("fraction of problems solved (pass@k)")
        ax.grid(True, alpha=0.35)
        if costed:
            ax.set_xscale("log")
            handles = _colour_key(costed, colour, labels)
            if frontier:
                frontier.sort()
                best, fx, fy = -1.0, [], []
                for x, y in frontier:
                    if y > best:
                        best = y
                        fx.append(x)
                        fy.append(y)
                handles.append(ax.step(fx, fy, where="post", color="grey", lw=4, alpha=0.3,
                                       label="frontier (best configuration)")[0])  # fmt: skip
            key = [("measured", measured_style)] + ([("extrapolated", extrapolated_style)] if any_ext else [])
            handles += _style_key(key)
            _place_legend(fig, ax, handles, [h.get_label() for h in handles], title=shared)
        else:
            # No sample recorded its tokens (e.g. a replay file without them): say so on the
            # figure, rather than an empty plot, meaningless ticks and matplotlib's "no artists"
            # warning.
            ax.set_xticks([])
            ax.set_yticks([])
            ax.text(0.5, 0.5, "no configuration recorded token counts: no cost to plot against",
                    transform=ax.transAxes, ha="center", va="center", fontsize="small", color="grey")
        _fit_title(fig, ax, f"{title}: cost frontier")
        out = Path(frontier_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, dpi=150, format="png")
        written.append(out)
    return written
