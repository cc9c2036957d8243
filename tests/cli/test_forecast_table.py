"""``budgetlab forecast``'s tables in an 80-column terminal: every figure whole (no "…"), no
line wider than the terminal, however many --budgets rows and however large the figures."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from budgetlab.analysis import Estimate
from budgetlab.cli._forecast import print_forecast
from budgetlab.forecast import Forecast, ForecastRow


def _forecast(ks: list[tuple[str, int]], per_sample: float, usd_per_token: float = 0.0, tokens_per_second: float = 241.0,
              config: str = "smollm2") -> Forecast:
    """Rows as the forecast of the docs' example gives them (200 problems, pilot at k=4), with
    ``per_sample`` tokens per sample at ``usd_per_token``; its measured pilot drew 241 tokens/s."""
    rows = []
    for label, k in ks:
        tokens = 200 * k * per_sample
        tok = Estimate(tokens, 0.97 * tokens, 1.03 * tokens, k, 0)
        usd = Estimate(tokens * usd_per_token, 0.9 * tokens * usd_per_token, 1.1 * tokens * usd_per_token, k, 0)
        secs = Estimate(tokens / tokens_per_second, 0.97 * tokens / tokens_per_second, 1.03 * tokens / tokens_per_second, k, 0)
        cover = Estimate(min(0.1 * k ** 0.5, 1.0), 0.041, 1.0, k, 10)
        rows.append(ForecastRow(label, k, 200 * k, tok, usd, secs, {config: cover}, {config: cover} if k <= 4 else {}, k > 4))
    return Forecast("embedded-arithmetic-fixed-k-4-7533e6", 200, [config], 10, 4, 40, {}, rows, "bracket", None)


def _render(fc: Forecast) -> str:
    console = Console(width=80, record=True, file=io.StringIO())
    print_forecast(console, fc)
    return console.export_text()


DOCS_EXAMPLE = [("planned k=4", 4), ("k=16", 16), ("k=64", 64), ("tokens=1e+06", 61)]


@pytest.mark.parametrize("ks, per_sample, usd_per_token", [
    # the docs' example (embedded backend, so no dollars): planned k=4, 4x and 16x it, what tokens=1e6 buys
    (DOCS_EXAMPLE, 81.0, 0.0),
    # the same priced as an API
    (DOCS_EXAMPLE, 81.0, 1e-5),
    # many --budgets rows, and figures as wide as a large run makes them
    ([("planned k=4", 4), ("k=16", 16), ("k=64", 64), ("k=256", 256), ("k=1000", 1000), ("samples=1e+06", 5000),
      ("dollars=5000", 2500), ("tokens=1e+09", 1234)], 4000.0, 1e-5),
])
def test_forecast_tables_fit_80_columns_with_every_figure_whole(ks: list[tuple[str, int]], per_sample: float,
                                                                usd_per_token: float) -> None:
    fc = _forecast(ks, per_sample, usd_per_token)
    text = _render(fc)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    for row in fc.rows:  # each figure is on some line whole
        assert f"{row.k:,}" in text and f"{row.samples:,}" in text
        assert f"{row.tokens.lo:,.0f}-{row.tokens.hi:,.0f}" in text
        assert f"${row.dollars.lo:,.4f}-{row.dollars.hi:,.4f}" in text
        assert f"k={row.k:,}" in text


def test_the_docs_example_is_one_table_each_at_80_columns() -> None:
    text = _render(_forecast(DOCS_EXAMPLE, 81.5))
    assert "continued" not in text
    assert "k=16 *" in text and "k=64 *" in text
    assert "│ 16 │   3,200 │" in text and "│ 64 │  12,800 │" in text  # the k column whole, not "…"


def test_columns_that_need_two_tables_are_spread_evenly_so_names_stay_whole() -> None:
    from budgetlab.cli._tables import fitted_tables

    name = "gpt-3.5-turbo/last_letters/T0.7"
    headers = [f"k={k} *" for k in (8, 32, 128, 16, 40, 64)]
    rows = [[name, "pass@k", *["86.1\n71.2-97.1"] * 6], [name, "maj@k", *["-"] * 6]]
    out = io.StringIO()
    console = Console(file=out, width=80)
    tables = fitted_tables(console, ("coverage", "coverage, continued"), ["configuration", "metric"], headers, rows)
    assert [len(t.columns) - 2 for t in tables] == [3, 3]
    for table in tables:
        console.print(table)
    assert out.getvalue().count(name) == 4  # each name on one line, in both tables



def test_coverage_columns_run_in_order_of_k_once_each() -> None:
    fc = _forecast([("planned k=8", 8), ("k=32", 32), ("k=128", 128), ("k=16", 16), ("samples=2e4", 40), ("k=8", 8)], 81.0)
    out = io.StringIO()
    print_forecast(Console(file=out, width=200), fc)
    header = next(line for line in out.getvalue().splitlines() if "metric" in line)
    shown = [int(cell.split("=")[1].rstrip(" *")) for cell in header.split("┃") if "k=" in cell]
    assert shown == [8, 16, 32, 40, 128]


def test_a_pilot_without_token_counts_shows_tokens_and_dollars_as_unknown_not_zero() -> None:
    fc = _forecast([("planned k=4", 4), ("k=16", 16)], 0.0)
    text = _render(fc)
    assert "$" not in text  # no dollar figure at all
    assert "no pilot sample recorded its tokens, so tokens and dollars are unknown (-)" in " ".join(text.split())
    assert "200 problems x 1 configuration ·" in " ".join(text.split())
