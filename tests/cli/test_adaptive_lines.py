"""The report's lines for a policy that stops problems early give the unbiased figures."""

from __future__ import annotations

import io

from rich.console import Console

from budgetlab.cli._render import _adaptive_lines, print_report

ADAPTIVE = {
    "prefix": 5,
    "problems": 500,
    "pass_at_k": {"1": 0.7888, "40": 0.98},
    "maj_at_k": {"1": 0.7888, "40": 0.47},
    "ci": {"pass_at_k": {"1": [0.755, 0.82], "40": [0.97, 0.99]}, "maj_at_k": {"1": [0.755, 0.82], "40": [0.33, 0.6]}},
    "undetermined": {"pass_at_k": {"1": 0, "40": 54}, "maj_at_k": {"1": 0, "40": 453}},
    "all_problems_bounds": {"pass_at_k": {"1": [0.7888, 0.7888], "40": [0.88, 0.988]},
                            "maj_at_k": {"1": [0.7888, 0.7888], "40": [0.044, 0.95]}},
}  # fmt: skip


def test_the_unbiased_pass_at_1_from_every_problems_first_samples_is_named() -> None:
    lines = _adaptive_lines("m", ADAPTIVE)
    assert lines[0] == (
        "  m: pass@1 78.9 (75.5-82.0) from each problem's first 5 samples, unbiased "
        "(the table's pass@1 counts every sample drawn)"
    )
    assert "pass@40 lies in 88.0-98.8 over all problems; 54 of 500" in lines[1]


def test_the_pass_at_1_line_is_left_out_when_first_samples_do_not_settle_it() -> None:
    unsettled = {**ADAPTIVE, "undetermined": {"pass_at_k": {"1": 3, "40": 54}, "maj_at_k": {"1": 3, "40": 453}}}
    assert not any("first 5 samples" in line for line in _adaptive_lines("m", unsettled))


def test_the_report_prints_it_under_the_table() -> None:
    report = {
        "run": "esc", "samples": 4735, "state": "done", "problems": 500, "failed": 0,
        "spent": {"samples": 4735, "tokens": 0, "dollars": 0.0, "verify_seconds": 0.0}, "budget": {},
        "stopped_because": "complete",
        "configs": {"m": {"samples": 4735, "pass_at_k": {"1": 0.796}, "maj_at_k": {"1": 0.796},
                          "n_problems": {"1": 500}, "adaptive": ADAPTIVE}},
    }  # fmt: skip
    out = io.StringIO()
    print_report(Console(file=out, width=200), report)
    assert "m: pass@1 78.9 (75.5-82.0) from each problem's first 5 samples" in out.getvalue()


def test_a_run_cut_by_its_budget_bounds_only_the_problems_it_reached() -> None:
    reached = {**ADAPTIVE, "problems": 200}
    lines = _adaptive_lines("m", reached, run_problems=500)
    assert "first 5 samples over the 200 problems reached, unbiased" in lines[0]
    assert "pass@40 lies in 88.0-98.8 over the 200 problems reached (of 500); 54 of 200" in lines[1]
    assert all("over all problems" not in line for line in lines)


def test_the_coverage_plot_says_what_its_curve_and_bands_are(monkeypatch) -> None:
    import budgetlab.analysis as analysis
    from budgetlab.cli._main import _plot

    seen: dict = {}
    monkeypatch.setattr(analysis, "plot_coverage", lambda curves, path, **kw: seen.update(kw))
    entry = {"pass_at_k": {"1": 0.5}, "maj_at_k": {}, "ci": {"pass_at_k": {"1": [0.4, 0.6]}, "maj_at_k": {}},
             "n_problems": {"1": 200}, "problems": 200}  # fmt: skip
    _plot({"run": "cut", "problems": 500, "configs": {"m": {**entry, "adaptive": {**entry, "undetermined": {}}}}}, "x.png")
    assert seen["interval"] == "95% bootstrap"
    assert seen["title"] == ("cut: pass@k (solid) and maj@k (dashed), from each problem's first samples "
                             "(200 of 500 problems reached)")
