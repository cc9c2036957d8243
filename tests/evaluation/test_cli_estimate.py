"""``budgetlab estimate`` on the inputs a user-acceptance test broke it with: a human score not
named like one, non-finite scores, a set where every item is rated, and flags out of range.
(The happy paths are in tests/cli/test_estimate.py.)"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from budgetlab.cli._main import main

SYSTEMS = ("weak", "middling", "strong", "best")


def write_set(path: Path, *, rated: int, human: str = "human_overall", items: int = 60, seed: int = 0) -> Path:
    """Systems of rising quality on a 1-5 scale; the human score under ``human`` on the first
    ``rated`` items; a metric (bleu) tracking it on every item."""
    rng = np.random.default_rng(seed)
    lines = []
    for i in range(items):
        difficulty = rng.normal(0, 0.5)
        scores = {}
        for quality, system in enumerate(SYSTEMS):
            value = float(np.clip(2 + 0.6 * quality - difficulty + rng.normal(0, 0.6), 1, 5))
            scores[system] = {"bleu": value + rng.normal(0, 0.5)}
            if i < rated:
                scores[system][human] = value
        lines.append(json.dumps({"i": f"item{i}", "scores": scores}))
    path.write_text("\n".join(lines) + "\n")
    return path


def run(*argv: str) -> tuple[int, str]:
    console = Console(file=io.StringIO(), width=300)
    code = main(["estimate", *argv], console=console)
    return code, console.file.getvalue()  # type: ignore[attr-defined]


def one_line_error(capsys, code: int, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and err.startswith("budgetlab: error: "), err
    for fragment in fragments:
        assert fragment in err, err


def test_the_key_named_by_human_is_never_a_cheap_control(tmp_path: Path, capsys) -> None:
    """``--human rating``: the rating is the costly score, not also a control that fits itself
    (which gave r = 1.00 and zero-width intervals)."""
    path = write_set(tmp_path / "set.jsonl", rated=20, human="rating")
    code, _ = run(str(path), "--human", "rating", "--json")
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["held_out_correlation"] < 0.99
    for row in report["systems"]:
        assert row["rated"] == 20 and row["high"] - row["low"] > 0.05
    renamed = write_set(tmp_path / "named.jsonl", rated=20)  # the same set, under the recognised name
    assert run(str(renamed), "--json")[0] == 0
    assert json.loads(capsys.readouterr().out)["systems"] == report["systems"]


def test_no_human_score_says_which_keys_count_and_mentions_human(tmp_path: Path, capsys) -> None:
    path = write_set(tmp_path / "set.jsonl", rated=20, human="rating")
    one_line_error(capsys, run(str(path))[0], "no human score on any item", "starts with 'human'", "--human KEY",
                   "the set has: bleu, rating")  # fmt: skip


@pytest.mark.parametrize("key,value", [("human_overall", "Infinity"), ("human_overall", "NaN"), ("bleu", "Infinity")])
def test_non_finite_scores_are_refused_naming_file_line_system_and_key(
    tmp_path: Path, capsys, key: str, value: str
) -> None:
    path = write_set(tmp_path / "set.jsonl", rated=20)
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    row["scores"]["strong"][key] = float(value.replace("Infinity", "inf"))
    lines[2] = json.dumps(row)  # json writes Infinity / NaN, as a user's tool might
    path.write_text("\n".join(lines) + "\n")
    one_line_error(capsys, run(str(path), "--json")[0], f"{path}:3: score {key!r} of system 'strong' is not finite")


def test_every_item_rated_gets_a_notice_not_a_claim_about_unseen_items(tmp_path: Path, capsys) -> None:
    path = write_set(tmp_path / "set.jsonl", rated=25, items=25)
    code, text = run(str(path), "--cost-ratio", "100")
    flat = " ".join(text.split())
    assert code == 0 and "every item is rated: these are the exact means of these 25 items" in flat
    assert "unseen" not in flat and "plain averaging would need" not in flat
    assert run(str(path), "--json")[0] == 0
    assert "every item is rated" in json.loads(capsys.readouterr().out)["notice"]
    partly = write_set(tmp_path / "part.jsonl", rated=25, items=60)
    code, text = run(str(partly))
    flat = " ".join(text.split())
    assert code == 0 and "every item is rated" not in flat and "on rated items held out of the fit: r =" in flat


@pytest.mark.parametrize(
    "extra,message",
    [
        (("--cost-ratio", "inf"), "--cost-ratio must be finite, got inf; e.g. --cost-ratio 100"),
        (("--scale=-inf,inf",), "--scale must be finite"),
        (("--scale=2,4",), "--scale 2,4: the human scores run from"),
    ],
)
def test_bad_flags_are_one_line_in_the_flags_words(tmp_path: Path, capsys, extra: tuple, message: str) -> None:
    path = write_set(tmp_path / "set.jsonl", rated=20)
    one_line_error(capsys, run(str(path), *extra)[0], message)


def test_scale_error_gives_the_scale_the_scores_are_on(tmp_path: Path, capsys) -> None:
    path = write_set(tmp_path / "set.jsonl", rated=20)
    one_line_error(capsys, run(str(path), "--scale=2,4")[0], "e.g. --scale 1,5")


def test_a_metric_missing_on_a_rated_item_is_named(tmp_path: Path, capsys) -> None:
    path = write_set(tmp_path / "set.jsonl", rated=20)
    lines = path.read_text().splitlines()
    row = json.loads(lines[4])
    del row["scores"]["weak"]["bleu"]
    lines[4] = json.dumps(row)
    path.write_text("\n".join(lines) + "\n")
    one_line_error(capsys, run(str(path))[0], "system 'weak' has a human score on item 'item4'", "but no 'bleu' there")


def test_reads_a_gz_suffix_in_capitals(tmp_path: Path, capsys) -> None:
    import gzip

    plain = write_set(tmp_path / "set.jsonl", rated=20)
    packed = tmp_path / "set.jsonl.GZ"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert run(str(packed), "--json")[0] == 0
    assert len(json.loads(capsys.readouterr().out)["systems"]) == len(SYSTEMS)


def test_no_runtime_warning_reaches_stderr(tmp_path: Path, capsys) -> None:
    """An item no system has a metric on (an item mean of nothing) once leaked numpy's warning."""
    path = write_set(tmp_path / "set.jsonl", rated=20)
    with path.open("a") as fh:
        fh.write(json.dumps({"i": "bare", "scores": {s: {} for s in SYSTEMS}}) + "\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pytest would otherwise collect the warning, not let it print
        code, _ = run(str(path), "--json")
    captured = capsys.readouterr()
    assert code == 0 and captured.err == ""
    json.loads(captured.out)
