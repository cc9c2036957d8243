"""Evaluation sets as CSV (one row per item and system): read as the same set as its JSONL,
written by ``subset --output x.csv`` for raters, and refused with one line where malformed."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from budgetlab.cli._main import main
from budgetlab.errors import InputError
from budgetlab.evaluation.subset import load_items


def _as_csv(jsonl: Path, out: Path) -> Path:
    with out.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["item", "system", "src", "output", "bleu", "human_overall"])
        for line in jsonl.read_text().splitlines():
            row = json.loads(line)
            for system, values in row["scores"].items():
                writer.writerow([row["i"], system, row["src"], row["tgt"][system], values["bleu"], values["human_overall"]])
    return out


def test_a_csv_set_reads_as_its_jsonl_does(items_jsonl: Path, tmp_path: Path) -> None:
    from_json, from_csv = load_items(items_jsonl), load_items(_as_csv(items_jsonl, tmp_path / "items.csv"))
    assert from_csv.systems == from_json.systems and [it.id for it in from_csv.items] == [it.id for it in from_json.items]
    for key in ("bleu", "human_overall"):
        assert np.allclose(from_csv.matrix(key), from_json.matrix(key))
    assert from_csv.human_keys == ("human_overall",) and from_csv.items[3].tgt == from_json.items[3].tgt


def test_subset_writes_a_csv_for_raters_and_estimate_reads_the_rated_csv(items_jsonl: Path, tmp_path: Path, capsys) -> None:
    full = _as_csv(items_jsonl, tmp_path / "items.csv")
    to_rate = tmp_path / "to_rate.csv"
    assert main(["subset", str(full), "--size", "10", "--method", "random", "--output", str(to_rate), "--json"]) == 0
    chosen = json.loads(capsys.readouterr().out)["chosen"]
    rows = list(csv.DictReader(to_rate.open(encoding="utf-8")))
    assert "human_overall" not in rows[0] and [r["item"] for r in rows[::3]] == chosen and len(rows) == 30
    assert load_items(to_rate).metric_keys == ("bleu",)
    # The raters' scores go back into the full set; the rest of the items keep only their metric.
    lines = full.read_text().splitlines()
    kept = [lines[0]] + [ln if ln.split(",")[0] in chosen else ln.rsplit(",", 1)[0] + "," for ln in lines[1:]]
    rated = tmp_path / "rated.csv"
    rated.write_text("\n".join(kept) + "\n")
    assert main(["estimate", str(rated), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"].startswith("control variates") and {r["rated"] for r in report["systems"]} == {10}


def test_a_decimal_comma_is_told_to_write_a_point_not_to_drop_its_column(tmp_path: Path) -> None:
    path = tmp_path / "set.csv"
    path.write_text('item,model,bleu\nq1,a,"0,3"\n')
    with pytest.raises(InputError) as caught:
        load_items(path)
    assert "write a decimal point: 0.3" in str(caught.value) and "drop" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("item;system;bleu\nq1;a;0,3\n", "separated by ';'"),
        ("name,model,bleu\nq1,a,0.3\n", "no 'item' column"),
        ("item,model,notes,bleu\nq1,a,good,0.3\n", "in column 'notes'"),
        ("item,model,bleu\nq1,a,0.3\nq1,a,0.4\n", "have a row already (line 2)"),
        ("item,model,bleu\nq1,a,0.3,1\n", "4 fields, but the header has 3"),
        ("item,model,bleu\nq1,a,\"0,3\"\n", "write a decimal point: 0.3"),
        ("item,model,bleu\n,a,0.3\n", "field is empty"),
        ("item,id,model,bleu\nq1,q1,a,0.3\n", "all name the item"),
        ("item,model,cost,bleu\nq1,a,-2,0.3\n", "cost '-2' must be a positive number"),
    ],
)
def test_malformed_csv_sets_are_one_line_naming_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "set.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        load_items(path)
    assert "\n" not in str(caught.value)


def test_the_index_column_of_a_pandas_to_csv_is_not_read_as_a_metric(tmp_path: Path) -> None:
    """``DataFrame.to_csv`` writes the index as a first column with no name (``Unnamed: 0`` once
    read and written again): 0, 1, 2, ... were read as a metric named ''."""
    for name in ("", "Unnamed: 0"):
        path = tmp_path / "set.csv"
        path.write_text(f"{name},item,system,bleu,human_overall\n0,q1,a,0.3,4\n1,q1,b,0.5,3\n2,q2,a,0.1,2\n")
        data = load_items(path)
        assert data.metric_keys == ("bleu",) and data.keys == ("bleu", "human_overall")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # A blank line and a quoted output over two lines: the error names the line the row is on.
        ("item,model,output,bleu\n\nq1,a,\"two\nlines\",0.3\nq1,b,x,abc\n", "set.csv:5: score 'abc' is not a number"),
        ("item,model,output,bleu\nq1,a,\"two\nlines\",0.3\n,,,\nq1,a,again,0.4\n", "set.csv:5: item 'q1' and system 'a' have a row already (line 2)"),
        ("\nitem;model;bleu\nq1;a;0,3\n", "set.csv:2: the fields are separated by ';'"),
        # The item's cost, different on two of its rows, was the last one's.
        ("item,model,cost,bleu\nq1,a,2,0.3\nq1,b,5,0.4\n", "set.csv:3: item 'q1' has cost 5 here and 2 on line 2"),
    ],
)
def test_csv_errors_name_the_line_of_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "set.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        load_items(path)
    assert "\n" not in str(caught.value)


def test_the_raters_csv_has_no_row_for_a_system_with_nothing_to_rate(tmp_path: Path, capsys) -> None:
    """In E2E a system may have human scores on an item but no output: with the human scores left
    out its row was empty, for raters to score nothing. A source that is not text is JSON."""
    path = tmp_path / "set.jsonl"
    rows = [{"i": i, "src": {"name": f"place {i}"}, "tgt": {"a": f"out a{i}", "b": f"out b{i}"},
             "scores": {"a": {"quality": 3}, "b": {"quality": 4}, "c": {"quality": 2}}} for i in range(6)]  # fmt: skip
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    out = tmp_path / "to_rate.csv"
    assert main(["subset", str(path), "--size", "2", "--method", "random", "--output", str(out)]) == 0
    written = list(csv.DictReader(out.open(encoding="utf-8")))
    assert [r["system"] for r in written] == ["a", "b", "a", "b"]
    assert json.loads(written[0]["src"])["name"].startswith("place ")
