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
