"""The coverage plot writes a real PNG."""

from __future__ import annotations

from pathlib import Path

from budgetlab.analysis import Estimate, coverage_curve, plot_coverage

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_plot_writes_png(tmp_path: Path) -> None:
    cool = [(1, 0.3), (2, 0.4), (4, 0.5)]
    hot = [(1, 0.2), (4, 0.6), (8, 0.8)]
    pass_curves = {
        "cool": {k: {"value": v, "lo": v - 0.05, "hi": v + 0.05} for k, v in cool},
        "hot": {k: Estimate(v, v - 0.1, min(1.0, v + 0.1), k, 20) for k, v in hot},
    }
    maj_curves = {"hot": {k: {"value": v, "lo": v, "hi": v} for k, v in [(1, 0.2), (8, 0.35)]}}
    out = plot_coverage(pass_curves, tmp_path / "sub" / "cov.png", maj_curves=maj_curves)
    data = out.read_bytes()
    assert out == tmp_path / "sub" / "cov.png"
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_plot_accepts_plain_coverage_points(tmp_path: Path) -> None:
    curve = coverage_curve([8, 8], [1, 4], [1, 2, 4, 8])
    points = {k: {"value": v, "lo": v, "hi": v} for k, v in curve.items()}
    out = plot_coverage({"cfg": points}, str(tmp_path / "c.png"))
    assert out.read_bytes()[:8] == PNG_MAGIC


def test_many_curves_put_the_legend_beside_the_plot_not_over_it() -> None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from budgetlab.analysis._plot import _legend

    for curves, inside in ((3, True), (12, False)):
        fig = Figure(layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        for i in range(curves):
            ax.plot([1, 2], [0.1 * i, 0.1 * i + 0.05], label=f"config-{i}")
        _legend(fig, ax)
        assert (ax.get_legend() is not None) is inside and (len(fig.legends) == 1) is not inside


def test_points_over_fewer_problems_are_drawn_hollow_and_said_so(tmp_path: Path, monkeypatch) -> None:
    from matplotlib.axes import Axes

    legends = []
    original = Axes.legend

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        legends.append(kwargs.get("title"))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "legend", spy)
    curve = {1: {"value": 0.4, "lo": 0.3, "hi": 0.5}, 8: {"value": 0.1, "lo": 0.0, "hi": 0.3}}
    assert plot_coverage({"a": curve}, tmp_path / "p.png", partial={"a": {8}}).stat().st_size > 1000
    plot_coverage({"a": curve}, tmp_path / "q.png")
    assert legends[0] and "hollow: over fewer problems" in legends[0] and legends[1] is None


def test_a_stopping_policys_plot_keeps_only_the_ks_every_problem_settles() -> None:
    from budgetlab.cli._main import _curve, _settled

    adaptive = {"pass_at_k": {"1": 0.2, "4": 0.4, "16": 1.0}, "maj_at_k": {"4": 0.3, "16": 0.0},
                "ci": {"pass_at_k": {"1": [0.1, 0.3], "4": [0.3, 0.5], "16": [0.9, 1.0]},
                       "maj_at_k": {"4": [0.2, 0.4], "16": [0.0, 0.1]}},
                "undetermined": {"pass_at_k": {"1": 0, "4": 0, "16": 12}, "maj_at_k": {"4": 0, "16": 30}}}  # fmt: skip
    shown = _settled(adaptive)
    assert sorted(_curve(shown, "pass_at_k")) == [1, 4] and sorted(_curve(shown, "maj_at_k")) == [4]
