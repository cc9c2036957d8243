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
