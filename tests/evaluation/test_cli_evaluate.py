"""``budgetlab select`` and ``budgetlab subset``: happy paths and bad input (one line on stderr,
exit code 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from budgetlab.cli._main import main


@pytest.fixture
def scores_csv(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    means = [0.2, 0.4, 0.8, 0.5]
    rows = ["method," + ",".join(f"e{j}" for j in range(200))]
    for i, m in enumerate(means):
        rows.append(f"m{i}," + ",".join(str(int(v)) for v in rng.random(200) < m))
    path = tmp_path / "scores.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture
def items_jsonl(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    lines = []
    for i in range(40):
        scores = {
            s: {"human_overall": q + rng.normal(0, 0.3), "bleu": q + rng.normal(0, 0.5)}
            for s, q in (("a", 0.0), ("b", 0.5), ("c", 1.0))
        }
        lines.append(
            json.dumps(
                {"i": i, "src": f"src {i}", "ref": "r", "tgt": {s: f"out {s} {i}" for s in scores}, "scores": scores}
            )
        )
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _one_line_error(capsys, rc: int, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("budgetlab: error: ")
    for fragment in fragments:
        assert fragment in err


@pytest.mark.parametrize("algorithm", ["uniform", "halving", "ucbe:a=1", "ucbe-lrf"])
def test_select_json(scores_csv: Path, capsys, algorithm: str) -> None:
    assert main(["select", str(scores_csv), "--algorithm", algorithm, "--budget", "0.3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["best"] == "m2" and out["full_evaluation_best"] == "m2" and out["agrees_with_full_evaluation"]
    assert out["evaluations"] <= 240 and out["total"] == 800
    assert [r["method"] for r in out["ranking"]][0] == "m2"
    assert {"estimate", "evaluations", "full_mean"} <= set(out["ranking"][0])


def test_select_table(scores_csv: Path, capsys) -> None:
    assert main(["select", str(scores_csv), "--budget", "200", "--delta", "0.05"]) == 0
    out = capsys.readouterr().out
    assert "best method: m2" in out
    assert "evaluations used:" in out and "of 800" in out


def test_select_bad_input(tmp_path: Path, scores_csv: Path, capsys) -> None:
    _one_line_error(capsys, main(["select", str(tmp_path / "missing.csv")]), "does not exist")
    bad = tmp_path / "bad.csv"
    bad.write_text("method,e0,e1\nm0,1,0\nm1,1,oops\n")
    _one_line_error(capsys, main(["select", str(bad)]), f"{bad}:3", "oops")
    _one_line_error(capsys, main(["select", str(scores_csv), "--algorithm", "nope"]), "unknown selection algorithm")
    _one_line_error(capsys, main(["select", str(scores_csv), "--algorithm", "ucbe:eta=2"]), "does not take")
    _one_line_error(capsys, main(["select"]), "give a score file or --run")
    replay = tmp_path / "rec.jsonl"
    replay.write_text('{"problem": "p", "config": "c", "n": 2, "correct": 1}\n{"problem": "p"\n')
    _one_line_error(capsys, main(["select", str(replay)]), f"{replay}:2", "not valid JSON")


def test_subset_happy_path(items_jsonl: Path, tmp_path: Path, capsys) -> None:
    out_path = tmp_path / "chosen.jsonl"
    assert (
        main(
            [
                "subset",
                str(items_jsonl),
                "--method",
                "variance:metric=bleu",
                "--size",
                "0.25",
                "--output",
                str(out_path),
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert len(report["chosen"]) == 10
    assert set(report["ranking_agreement"]) == {"spearman", "kendall"}
    written = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert [str(r["i"]) for r in written] == report["chosen"]
    assert main(["subset", str(items_jsonl), "--cost-budget", "60"]) == 0
    table = capsys.readouterr().out
    assert "items chosen, total cost" in table and "Spearman" in table


def test_subset_default_method_follows_the_metric(tmp_path: Path, items_jsonl: Path, capsys) -> None:
    """Without --method: irt for a continuous metric, agreement for pass/fail, diversity without one."""
    assert main(["subset", str(items_jsonl), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "irt" and report["method_chosen"]
    assert main(["subset", str(items_jsonl)]) == 0
    assert "method irt: the default for a set with a continuous metric" in capsys.readouterr().out
    rng = np.random.default_rng(0)
    for name, metric, expected in (("pass", {"pass": 1.0}, "agreement"), ("none", {}, "diversity")):
        path = tmp_path / f"{name}.jsonl"
        rows = [
            {"i": i, "tgt": {s: f"out {i} {s}" for s in "abc"},
             "scores": {s: {"human": float(rng.random()), **{k: float(rng.random() < 0.5) for k in metric}} for s in "abc"}}
            for i in range(30)
        ]  # fmt: skip
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        assert main(["subset", str(path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["method"] == expected


def test_subset_bad_input(tmp_path: Path, items_jsonl: Path, capsys) -> None:
    _one_line_error(capsys, main(["subset", str(tmp_path / "none.jsonl")]), "does not exist")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(items_jsonl.read_text().splitlines()[0] + "\n{broken\n")
    _one_line_error(capsys, main(["subset", str(bad)]), f"{bad}:2", "not valid JSON")
    _one_line_error(capsys, main(["subset", str(items_jsonl), "--method", "oracle"]), "unknown subset method")
    _one_line_error(capsys, main(["subset", str(items_jsonl), "--method", "variance:metric=nope"]), "'nope' is not in")
