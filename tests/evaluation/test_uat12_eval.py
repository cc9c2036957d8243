"""Bugs found by a user-acceptance pass (a prompt engineer's own data: a spreadsheet export, judge
scores on 1-10, a partly rated set): each test failed before its fix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from budgetlab.cli._main import main
from budgetlab.evaluation import ScoreMatrix
from budgetlab.evaluation.selection import make_algorithm, simulate


def _one_line_error(capsys, rc: int, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("budgetlab: error: "), err
    for fragment in fragments:
        assert fragment in err, err
    return err


@pytest.mark.parametrize("algorithm", ["ucbe", "ucbe-lrf"])
def test_ucbe_does_not_depend_on_the_scale_of_the_scores(algorithm: str) -> None:
    # UCB-E's bonus sqrt(a/n) assumed scores in [0, 1]: a judge's 1-10 scores made it all but
    # greedy, and UCB-E-LRF's ridge weaker; on the same prompts rescaled, it spent its budget
    # differently and named the best less often (ucbe-lrf at 30% of summeval: 0.78 against 1.0).
    rng = np.random.default_rng(3)
    quality = np.linspace(0.3, 0.6, 8)[:, None]
    unit = np.clip(quality + 0.25 * rng.standard_normal((8, 200)), 0, 1)
    names = tuple(f"prompt {i}" for i in range(8)), tuple(map(str, range(200)))
    on_unit = simulate(make_algorithm(algorithm), ScoreMatrix(unit, *names), 0.2, seed=1)
    on_ten = simulate(make_algorithm(algorithm), ScoreMatrix(1 + 9 * unit, *names), 0.2, seed=1)
    assert on_ten.best == on_unit.best
    assert [r.evaluations for r in on_ten.ranking] == [r.evaluations for r in on_unit.ranking]


def test_spreadsheet_header_with_other_column_names_is_named(tmp_path: Path, capsys) -> None:
    # A long sheet with its own column names was read as a wide matrix: "score 'doc-000' is not
    # a number", which names neither the header nor the columns to give.
    path = tmp_path / "sheet.csv"
    path.write_bytes(
        b"Prompt Name,Item ID,Output,Judge Score (1-10)\r\n"
        b'prompt 1,doc-000,"Hi, there",7\r\nprompt 2,doc-000,"Yes, no",NA\r\n'
    )
    _one_line_error(capsys, main(["select", str(path)]), "header Prompt Name,Item ID", "method,example,score")


def test_semicolon_csv_says_so(tmp_path: Path, capsys) -> None:
    # A European spreadsheet's CSV (';' between fields) was told "the header names no examples".
    path = tmp_path / "scores.csv"
    path.write_text("method;a;b\np1;0,5;1\np2;1;0\n")
    _one_line_error(capsys, main(["select", str(path)]), "separated by ';'", "comma-separated")


def test_decimal_comma_and_short_rows_give_the_fix(tmp_path: Path, capsys) -> None:
    path = tmp_path / "scores.csv"
    path.write_text('method,a,b\np1,"1,5",2\np2,3,4\n')
    _one_line_error(capsys, main(["select", str(path)]), "'1,5'", "write a decimal point: 1.5")
    path.write_text("method,a,b,c\np1,1,2\np2,3,4,5\n")
    _one_line_error(capsys, main(["select", str(path)]), "3 fields", "one field per column")


def test_long_csv_with_three_own_columns_is_pointed_to_the_names(tmp_path: Path, capsys) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("Prompt,Item,Judge\np1,d1,7\np2,d1,5\n")
    _one_line_error(capsys, main(["select", str(path)]), "'d1'", "name its columns method,example,score")


def test_items_as_rows_is_pointed_out(tmp_path: Path, capsys) -> None:
    # A sheet of items x prompts read as 100 "methods": the budget error and the ranking said
    # nothing of the likely cause.
    path = tmp_path / "scores.csv"
    rng = np.random.default_rng(0)
    lines = ["item,p1,p2,p3"] + [f"d{i}," + ",".join(f"{v:.2f}" for v in rng.random(3)) for i in range(100)]
    path.write_text("\n".join(lines) + "\n")
    _one_line_error(capsys, main(["select", str(path)]), "100 methods once", "transpose")
    assert main(["select", str(path), "--budget", "1", "--json"]) == 0
    assert "transpose" in json.loads(capsys.readouterr().out)["notice"]


def _item(i: int, judge: float | None, human: float | None) -> str:
    scores = {}
    for s, shift in (("a", 0.0), ("b", 1.0)):
        row: dict = {"judge": None if judge is None else judge + shift}
        if human is not None:
            row["human_overall"] = human + shift
        scores[s] = row
    return json.dumps({"i": f"doc-{i}", "scores": scores})


def test_rated_item_without_a_judge_score_gives_both_fixes(tmp_path: Path, capsys) -> None:
    # The judge failed (NA) on an item the raters scored: the message only said to name a human
    # key with --human, which is not the fix here.
    path = tmp_path / "rated.jsonl"
    lines = [_item(i, None if i == 0 else float(i % 7), float(1 + i % 5) if i < 8 else None) for i in range(30)]
    path.write_text("\n".join(lines) + "\n")
    _one_line_error(capsys, main(["estimate", str(path)]), "'doc-0'", "'judge'", "remove that human score")


def test_quoted_number_says_to_unquote(tmp_path: Path, capsys) -> None:
    path = tmp_path / "rated.jsonl"
    path.write_text(json.dumps({"i": "x", "scores": {"a": {"judge": 3, "human_overall": "4.5"}}}) + "\n")
    _one_line_error(capsys, main(["estimate", str(path)]), "'4.5'", "without quotes")


def test_missing_cells_are_said_to_limit_the_full_evaluation(tmp_path: Path, capsys) -> None:
    # A live run's matrix (or a sheet with gaps) was called "the full evaluation" with no word
    # that most of its cells were never evaluated.
    path = tmp_path / "scores.csv"
    path.write_text("method,a,b,c,d\np1,1,,0,1\np2,0,1,NA,0\n")
    assert main(["select", str(path), "--budget", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["missing_cells"] == 2 and "scored cells only" in report["missing_notice"]
    assert main(["select", str(path), "--budget", "1"]) == 0
    assert "2 of the 8 (method, example) cells have no score" in " ".join(capsys.readouterr().out.split())


def test_bernoulli_on_judge_scores_names_range_and_fix(tmp_path: Path, capsys) -> None:
    path = tmp_path / "scores.csv"
    path.write_text("method,a,b\np1,7,9\np2,3,10\n")
    _one_line_error(capsys, main(["select", str(path), "--bernoulli", "--budget", "1"]), "from 3 to 10", "no --bernoulli")


def test_a_second_round_of_subset_leaves_out_the_items_already_rated(tmp_path, capsys) -> None:
    """With 40 of 100 items rated, `subset --size 20` chose 5 of the rated ones again, paying the
    raters twice; a set rated in full still measures the subset's ranking agreement."""
    import json as _json

    from budgetlab.cli._main import main as cli_main

    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        scores = {}
        for s in ("a", "b", "c"):
            scores[s] = {"judge": float(rng.integers(1, 11))}
            if i < 12:
                scores[s]["human_overall"] = float(rng.integers(1, 6))
        rows.append({"i": f"item{i:02d}", "src": "x", "tgt": {s: f"text {i} {s}" for s in scores}, "scores": scores})
    partial = tmp_path / "partial.jsonl"
    partial.write_text("".join(_json.dumps(r) + "\n" for r in rows))
    assert cli_main(["subset", str(partial), "--size", "10", "--json"]) == 0
    report = _json.loads(capsys.readouterr().out)
    assert len(report["chosen"]) == 10 and report["already_rated"] == 12
    assert not {f"item{i:02d}" for i in range(12)} & set(report["chosen"])
    assert "ranking_agreement" not in report

    for r in rows:  # rated in full: the agreement mode, over every item
        for s in r["scores"]:
            r["scores"][s].setdefault("human_overall", 3.0)
    full = tmp_path / "full.jsonl"
    full.write_text("".join(_json.dumps(r) + "\n" for r in rows))
    assert cli_main(["subset", str(full), "--size", "10", "--json"]) == 0
    report = _json.loads(capsys.readouterr().out)
    assert "already_rated" not in report and "ranking_agreement" in report
