"""The plots and tables a researcher pastes into a report, checked on the figure objects.

Found by producing every plot of the product for realistic runs (a dozen GPT-3.5 configurations
with long names, an ESC stopping run, a run cut by its budget, all-wrong answers): the coverage
plot's legend of a dozen configurations covered the title and the curves, configurations 11-13
repeated the colours of 1-3, a stopping run's coverage-by-budget plot joined points over ever
fewer (harder) problems into one falling curve and drew its extrapolation backwards from k=40 to
k=10, its axis read 2^e, a run cut by the budget did not say which problems its curve covers, and
the report said "of 1 problems" and "0 tokens per sample" for samples that recorded no tokens.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from budgetlab import Budget, build_report, open_store, run
from budgetlab.analysis import budget_curves, plot_budget_curves, plot_coverage

LONG = [f"meta-llama/Llama-3.1-70B-Instruct/prompt=cot-v{i}/temperature=0.{i}/top_p=0.95" for i in range(10)] + [
    f"gpt-3.5-turbo/date_pot{i}_t=0.8" for i in range(3)
]


@pytest.fixture
def figures(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every figure the plotting functions save, drawn, for inspection."""
    from matplotlib.figure import Figure

    saved: list[Any] = []
    original = Figure.savefig

    def keep(self: Figure, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        saved.append(self)
        return result

    monkeypatch.setattr(Figure, "savefig", keep)
    return saved


def _legend(fig: Any) -> Any:
    ax = fig.axes[0]
    return ax.get_legend() or (fig.legends[0] if fig.legends else None)


def _overlap(a: Any, b: Any) -> bool:
    return a.x0 < b.x1 - 1 and b.x0 < a.x1 - 1 and a.y0 < b.y1 - 1 and b.y0 < a.y1 - 1


def _curve(lo: float, hi: float, ks: list[int]) -> dict[int, dict[str, float]]:
    return {k: {"value": lo + (hi - lo) * i / len(ks), "lo": lo - 0.05, "hi": hi + 0.05} for i, k in enumerate(ks)}


def test_a_dozen_configurations_get_their_own_colours_and_a_legend_beside_the_plot(tmp_path: Path, figures: list[Any]) -> None:
    ks = [1, 2, 4, 8, 16]
    curves = {name: _curve(0.55 + 0.02 * i, 0.8 + 0.01 * i, ks) for i, name in enumerate(LONG)}
    majs = {name: _curve(0.5 + 0.02 * i, 0.6 + 0.01 * i, ks) for i, name in enumerate(LONG)}
    plot_coverage(curves, tmp_path / "cov.png", title="date13: pass@k (solid) and maj@k (dashed)", maj_curves=majs)
    fig = figures[-1]
    ax = fig.axes[0]
    pass_lines = [line for line in ax.get_lines() if line.get_linestyle() == "-"]
    colours = {tuple(__import__("matplotlib.colors", fromlist=["to_rgba"]).to_rgba(line.get_color())) for line in pass_lines}
    assert len(colours) == len(LONG)  # configurations 11-13 used to repeat the colours of 1-3
    legend = _legend(fig)
    assert legend is not None and ax.get_legend() is None  # beside the plot, not over the curves
    renderer = fig.canvas.get_renderer()
    box = legend.get_window_extent(renderer)
    assert not _overlap(box, ax.get_window_extent(renderer))
    assert not _overlap(box, ax.title.get_window_extent(renderer))
    assert box.y1 <= fig.bbox.y1 + 1 and box.x1 <= fig.bbox.x1 + 1  # and inside the figure
    # One entry per configuration and one per line style, not one per (configuration, metric).
    texts = [t.get_text() for t in legend.get_texts()]
    assert len(texts) <= len(LONG) + 3 and "pass@k" in texts and "maj@k" in texts
    # Long names lose the parts they all share (named once in the legend's title) and stay distinct.
    assert all(len(t) <= 40 for t in texts) and len(set(texts)) == len(texts)
    assert "prompt=cot-v3/temperature=0.3/top_p=0.95" not in texts  # the mixed set shares nothing: cut in the middle


def test_shared_parts_of_the_names_go_once_into_the_legend_title() -> None:
    from budgetlab.analysis._plot import _short_labels

    labels, shared = _short_labels(LONG[:10])
    assert labels[LONG[3]] == "prompt=cot-v3/temperature=0.3"
    assert shared == "all: meta-llama/Llama-3.1-70B-Instruct/…/top_p=0.95"
    assert _short_labels(["a/x", "a/x/y"])[0] == {"a/x": "x", "a/x/y": "x/y"}
    assert _short_labels(["small", "large"]) == ({"small": "small", "large": "large"}, None)


def test_many_bands_are_drawn_lighter_so_the_lines_stay_visible(tmp_path: Path, figures: list[Any]) -> None:
    ks = [1, 2, 4, 8]
    plot_coverage({"a": _curve(0.2, 0.5, ks)}, tmp_path / "one.png")
    one = max(c.get_alpha() for c in figures[-1].axes[0].collections)
    plot_coverage({f"c{i}": _curve(0.2, 0.5, ks) for i in range(12)}, tmp_path / "many.png")
    many = max(c.get_alpha() for c in figures[-1].axes[0].collections)
    assert many <= one / 2


def _stopping_entry() -> dict[str, Any]:
    """A budget_curves entry of an ESC run: every problem has 5 samples, a few up to 40; pass@k
    beyond 5 averages only those few, harder problems (it falls)."""
    ks = [1, 2, 4, 5, 8, 16, 32, 40]
    values = [0.80, 0.83, 0.85, 0.855, 0.80, 0.79, 0.86, 0.86]
    ext_ks = [10, 20, 40, 80]
    return {
        "problems": 500, "observed_k": 5, "tokens_per_sample": 120.0, "dollars_per_sample": 0.0,
        "pass_at_k": {str(k): v for k, v in zip(ks, values)}, "ci": {str(k): [v - 0.03, v + 0.03] for k, v in zip(ks, values)},
        "extrapolated": {"pass_at_k": {str(k): 0.88 + 0.01 * i for i, k in enumerate(ext_ks)},
                         "ci": {str(k): [0.85, 0.95] for k in ext_ks}},
    }  # fmt: skip


def test_a_stopping_runs_budget_plot_keeps_partial_points_off_the_curve(tmp_path: Path, figures: list[Any]) -> None:
    curves = {"method": "bracket", "interval": "90%", "configs": {"esc": _stopping_entry()}, "mix": None, "run_problems": 500}
    plot_budget_curves(curves, tmp_path / "b.png", tmp_path / "f.png", title="esc")
    ax = figures[0].axes[0]
    lines = {line.get_linestyle(): line for line in ax.get_lines() if line.get_xdata().size}
    solid, dashed = list(lines["-"].get_xdata()), list(lines["--"].get_xdata())
    assert solid == [1, 2, 4, 5]  # measured over every problem, up to the samples every problem has
    assert dashed[0] == 5 and dashed == sorted(dashed)  # the extrapolation starts there and runs forward
    hollow = [line for line in ax.get_lines() if line.get_linestyle() in ("None", "none", "") and line.get_xdata().size]
    assert [list(h.get_xdata()) for h in hollow] == [[8, 16, 32, 40]] and hollow[0].get_markerfacecolor() == "white"
    assert any("fewer problems" in t.get_text() for t in _legend(figures[0]).get_texts())
    # The frontier takes no point over fewer problems either.
    frontier_x = [x for line in figures[1].axes[0].get_lines() for x in line.get_xdata()]
    assert not {8 * 120.0, 16 * 120.0, 32 * 120.0} & set(frontier_x)


def test_the_budget_axis_reads_in_plain_integers(tmp_path: Path, figures: list[Any]) -> None:
    curves = {"method": "bracket", "interval": "90%", "configs": {"esc": _stopping_entry()}, "mix": None}
    plot_budget_curves(curves, tmp_path / "b.png", title="esc")
    ax = figures[-1].axes[0]
    figures[-1].canvas.draw()
    lo, hi = ax.get_xlim()
    labels = [t.get_text() for t in ax.get_xticklabels() if t.get_text() and lo <= t.get_position()[0] <= hi]
    assert labels and all(label.replace(",", "").isdigit() for label in labels), labels  # not $\mathdefault{2^{3}}$


def test_the_budget_legend_does_not_sit_on_curves_at_the_bottom(tmp_path: Path, figures: list[Any]) -> None:
    # Every answer wrong: the curves lie along 0, where a legend fixed at the lower right covered them.
    ks = [1, 2, 4, 8]
    entry = {"problems": 30, "observed_k": 8, "tokens_per_sample": 150.0, "pass_at_k": {str(k): 0.0 for k in ks},
             "ci": {str(k): [0.0, 0.0] for k in ks},
             "extrapolated": {"pass_at_k": {"16": 0.0, "64": 0.0, "128": 0.0}, "ci": {k: [0.0, 0.08] for k in ("16", "64", "128")}}}  # fmt: skip
    plot_budget_curves({"method": "bracket", "interval": "90%", "configs": {"c": entry}}, tmp_path / "b.png")
    fig = figures[-1]
    ax = fig.axes[0]
    renderer = fig.canvas.get_renderer()
    box = ax.get_legend().get_window_extent(renderer)
    points = [ax.transData.transform((x, y)) for line in ax.get_lines() for x, y in zip(line.get_xdata(), line.get_ydata())]
    assert points and not any(box.x0 <= px <= box.x1 and box.y0 <= py <= box.y1 for px, py in points)


def test_a_dozen_long_configurations_in_the_budget_plot_get_one_entry_each(tmp_path: Path, figures: list[Any]) -> None:
    entry = _stopping_entry()
    entry["observed_k"] = 40
    curves = {"method": "bracket", "interval": "90%", "configs": {name: entry for name in LONG}, "mix": entry}
    plot_budget_curves(curves, tmp_path / "b.png", tmp_path / "f.png", title="long")
    for fig in figures:
        legend = _legend(fig)
        texts = [t.get_text() for t in legend.get_texts()]
        assert len(texts) <= len(LONG) + 5 and not any("(extrapolated)" in t for t in texts)
        renderer = fig.canvas.get_renderer()
        assert not _overlap(legend.get_window_extent(renderer), fig.axes[0].get_window_extent(renderer))
        assert not _overlap(legend.get_window_extent(renderer), fig.axes[0].title.get_window_extent(renderer))


def test_an_empty_frontier_has_no_meaningless_ticks(tmp_path: Path, figures: list[Any]) -> None:
    entry = _stopping_entry()
    entry["tokens_per_sample"] = 0.0
    plot_budget_curves({"method": "bracket", "interval": "90%", "configs": {"c": entry}}, tmp_path / "b.png", tmp_path / "f.png")
    ax = figures[-1].axes[0]
    assert list(ax.get_xticks()) == [] and any("no configuration recorded token counts" in t.get_text() for t in ax.texts)


def _replay_store(tmp_path: Path, rows: list[dict[str, Any]], **run_args: Any) -> Path:
    replay = tmp_path / "samples.jsonl"
    replay.write_text("".join(json.dumps(r) + "\n" for r in rows))
    path = tmp_path / "runs.db"
    run("r", f"replay:{replay}", store=str(path), **run_args)
    return path


def test_a_run_cut_by_its_budget_says_which_problems_its_budget_curve_covers(tmp_path: Path, figures: list[Any]) -> None:
    rows = [{"problem": f"p{j}", "config": "m", "answer": "a", "correct": (i + j) % 3 == 0} for j in range(10) for i in range(4)]
    store = _replay_store(tmp_path, rows, policy="fixed:k=4", budget=Budget(samples=16))
    curves = budget_curves(str(store), "r", n_boot=5)
    assert curves["run_problems"] == 10 and curves["configs"]["m"]["problems"] == 4
    plot_budget_curves(curves, tmp_path / "b.png", title="r")
    texts = [t.get_text() for t in _legend(figures[-1]).get_texts()]
    assert "m (4 of 10 problems)" in texts


def test_the_measured_curve_reaches_the_samples_every_problem_has(tmp_path: Path) -> None:
    # 5 samples on one problem, 7 on another: pass@5 is where the extrapolation starts.
    rows = [{"problem": p, "config": "m", "answer": "a", "correct": i % 2 == 0} for p, n in (("p0", 5), ("p1", 7)) for i in range(n)]
    store = _replay_store(tmp_path, rows, policy="fixed:k=7")
    entry = budget_curves(str(store), "r", n_boot=5)["configs"]["m"]
    assert entry["observed_k"] == 5 and "5" in entry["pass_at_k"]


def test_report_text_says_one_problem_and_unknown_tokens(tmp_path: Path) -> None:
    from budgetlab.cli._render import print_report

    rows = [{"problem": "p0", "config": "m", "answer": str(i % 3), "correct": i % 3 == 0} for i in range(8)]
    store = _replay_store(tmp_path, rows, policy="fixed:k=8")
    with open_store(str(store)) as st:
        report = build_report(st, "r", n_boot=20)
        report["budget_curves"] = budget_curves(st, "r", n_boot=5)
    console = Console(width=120, record=True, color_system=None)
    print_report(console, report)
    text = console.export_text()
    assert "of 1 problem correct" in text and "1 problems" not in text
    row = [line for line in text.splitlines() if line.startswith("│ m ")][-1]  # the extrapolated table
    assert row.split("│")[3].strip() == "-"  # tokens per sample: none recorded, not "0"


def test_a_long_run_name_keeps_the_title_inside_the_figure(tmp_path: Path, figures: list[Any]) -> None:
    name = "a-really-long-run-name-for-the-ablation-study-of-temperature-and-prompts-v2"
    ks = [1, 2, 4, 8]
    plot_coverage({f"c{i}": _curve(0.2, 0.5, ks) for i in range(24)}, tmp_path / "c.png",  # a legend in two columns
                  title=f"{name}: pass@k (solid) and maj@k (dashed)")  # fmt: skip
    plot_budget_curves({"method": "bracket", "interval": "90%", "configs": {"esc": _stopping_entry()}}, tmp_path / "b.png",
                       tmp_path / "f.png", title=name)  # fmt: skip
    for fig in figures:
        renderer = fig.canvas.get_renderer()
        title = fig.axes[0].title.get_window_extent(renderer)
        assert fig.bbox.x0 - 1 <= title.x0 and title.x1 <= fig.bbox.x1 + 1 and title.y1 <= fig.bbox.y1 + 1
        for legend in fig.legends:
            assert not _overlap(legend.get_window_extent(renderer), title)
