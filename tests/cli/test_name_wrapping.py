"""Long names in an 80-column terminal: a configuration, run, method or item name that must wrap
breaks after one of its break points (``,`` ``:`` ``=`` ``/`` ``-`` ``_`` or a space), never
mid-word where a break point fits; its lines joined give the name exactly (no zero-width
characters); figures stay whole; and no line is wider than the terminal. Runs are real replay
runs through the CLI, as a user makes them offline."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from budgetlab.cli._main import main
from budgetlab.cli._tables import wrap_name

WIDTH = 80
BREAKS = ",:=/-_ "
CONFIGS = ["openai:model=Qwen2.5-7B-Instruct,temperature=0.7",
           "openai:model=Llama-3.1-8B-Instruct,temperature=1.0,top_p=0.95"]  # fmt: skip
RUN = "gsm8k-qwen2.5-7b-instruct-vs-llama-3.1-8b-instruct-temperature-sweep"


def write_samples(path: Path) -> Path:
    """3 problems x the two configurations x 4 recorded samples: half of the first's right, a third
    of the second's."""
    with open(path, "w", encoding="utf-8") as fh:
        for p in range(3):
            for c, config in enumerate(CONFIGS):
                for i in range(4):
                    ok = (p + i) % (2 + c) == 0
                    fh.write(json.dumps({"problem": f"p{p}", "config": config, "answer": "a" if ok else f"w{i}",
                                         "correct": ok, "prompt_tokens": 10, "completion_tokens": 5, "cost": 0.001}) + "\n")
    return path


def cli80(*args: object) -> str:
    """``budgetlab ARGS`` as an 80-column terminal shows it."""
    console = Console(width=WIDTH, record=True, file=io.StringIO(), no_color=True)
    assert main([str(a) for a in args], console=console) == 0
    return console.export_text()


def json_of(capsys: pytest.CaptureFixture[str], *args: object) -> dict:
    """``budgetlab ARGS --json``'s object (printed to stdout, whatever the terminal)."""
    capsys.readouterr()
    assert main([str(a) for a in args] + ["--json"], console=Console(width=WIDTH, file=io.StringIO())) == 0
    return json.loads(capsys.readouterr().out)


def column_cells(text: str, header: str, column: int = 0) -> list[str]:
    """Column ``column``'s cell text, line by line, of the table whose header there is ``header``."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("┃") and line[1:].split("┃")[column].strip() == header)
    cells = []
    for line in lines[start + 1:]:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            cells.append(line[1:].split("│")[column].strip())
    return cells


def assert_wrapped_at_break_points(cells: list[str], names: list[str]) -> None:
    """``cells`` (a column's lines, top to bottom) hold ``names`` in order, each on one or more
    whole lines; every line of a name but its last ends at a break point."""
    lines = [c for c in cells if c]
    for name in names:
        taken = [lines.pop(0)]
        while "".join(taken) != name:
            assert name.startswith("".join(taken)) and lines, f"{name!r} is not on the lines {taken}"
            taken.append(lines.pop(0))
        for line in taken[:-1]:
            assert line[-1] in BREAKS, f"{name!r} breaks mid-word after {line!r}: {taken}"


def assert_fits(text: str) -> None:
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= WIDTH
    assert "\u200b" not in text


@pytest.fixture
def store(tmp_path: Path) -> Path:
    samples = write_samples(tmp_path / "samples.jsonl")
    store = tmp_path / "store.db"
    cli80("run", "--backend", f"replay:{samples}", "--name", RUN, "-k", "4", "--no-progress", "--store", store)
    return store


def test_report_wraps_configuration_names_at_break_points(capsys: pytest.CaptureFixture[str], store: Path) -> None:
    text = cli80("report", RUN, "--store", store)
    assert_fits(text)
    cells = column_cells(text, "configuration")
    assert len([c for c in cells if c]) > len(CONFIGS)  # they do have to wrap at 80 columns
    assert_wrapped_at_break_points(cells, CONFIGS)
    # the figures beside them are whole: one row's pass@1 per configuration
    report = json_of(capsys, "report", RUN, "--store", store)
    assert list(report["configs"]) == CONFIGS  # --json keeps the names as they are
    for config in CONFIGS:
        assert f"{100 * report['configs'][config]['pass_at_k']['1']:.1f}" in text


def test_runs_wraps_a_long_run_name_at_break_points_and_keeps_the_figures(store: Path) -> None:
    text = cli80("runs", "--store", store)
    assert_fits(text)
    cells = column_cells(text, "name")
    assert len(cells) > 1  # beside its state and samples the name has to wrap at 80 columns
    assert_wrapped_at_break_points(cells, [RUN])
    assert "samples" in text and "24" in text  # the sample count, once cut off the right edge


def test_select_keeps_figures_whole_and_wraps_methods_at_break_points(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    samples = write_samples(tmp_path / "samples.jsonl")
    text = cli80("select", samples, "--budget", "0.5")
    assert_fits(text)
    ranking = [row["method"] for row in json_of(capsys, "select", samples, "--budget", "0.5")["ranking"]]
    assert sorted(ranking) == sorted(CONFIGS)
    assert_wrapped_at_break_points(column_cells(text, "method", 1), ranking)


@pytest.mark.parametrize("name", [CONFIGS[1], RUN, "mix (all configurations pooled)", "a-very-long-word-without-any",
                                  "supercalifragilisticexpialidocious,k=v", "x"])
@pytest.mark.parametrize("width", [1, 5, 10, 17, 23, 40, 200])
def test_wrap_name_lines_fit_and_join_back_to_the_name(name: str, width: int) -> None:
    lines = wrap_name(name, width)
    assert all(len(line) <= width for line in lines)
    ends, at = [], 0  # where each line ends in the name
    for line in lines:
        assert name.startswith(line, at), (name, lines)
        at += len(line)
        at += name.startswith(" ", at)  # a space a line ends on is dropped, as a terminal's wrap drops it
        ends.append(at)
    assert at == len(name)
    if width >= max(len(part.rstrip()) for part in re.findall(r"[^,:=/\-_ ]*[,:=/\-_ ]*", name)):
        for end in ends[:-1]:  # every part fits a line: no line ends mid-word
            assert name[end - 1] in BREAKS, (name, lines)


def test_wrap_name_breaks_between_pairs_before_inside_one() -> None:
    # "temperature=1.0,top_p=" / "0.95" would split a pair: the pair moves to the next line whole
    assert wrap_name(CONFIGS[1], 23) == ["openai:model=Llama-3.1-", "8B-Instruct,", "temperature=1.0,", "top_p=0.95"]
    assert wrap_name("temperature=1.0,top_p=0.95", 20) == ["temperature=1.0,", "top_p=0.95"]
    assert wrap_name("short,name", 80) == ["short,name"]
