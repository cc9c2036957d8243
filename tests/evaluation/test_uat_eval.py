"""Bugs found by a user-acceptance pass over ``select``, ``subset`` and ``estimate``: each test
failed before its fix."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from budgetlab.cli._main import main
from budgetlab.evaluation import load_score_matrix, pooled_control_variate_means, pooled_plain_means


def _one_line_error(capsys, rc: int, *fragments: str) -> None:
    err = capsys.readouterr().err
    assert rc == 2
    assert err.count("\n") == 1 and err.startswith("budgetlab: error: "), err
    for fragment in fragments:
        assert fragment in err, err


def test_empty_npz_is_one_line_error(tmp_path: Path, capsys) -> None:
    # An empty .npz raised EOFError from numpy: a traceback and exit code 1.
    path = tmp_path / "scores.npz"
    path.write_bytes(b"")
    _one_line_error(capsys, main(["select", str(path)]), str(path), "npz")


def test_score_files_with_a_bom_are_read(tmp_path: Path) -> None:
    # Spreadsheet tools write a UTF-8 BOM: a long CSV's header was not recognised and JSON failed.
    csv = tmp_path / "long.csv"
    csv.write_bytes(b"\xef\xbb\xbfmethod,example,score\r\nm1,a,1\r\nm1,b,0\r\nm2,a,0\r\nm2,b,1\r\n")
    assert load_score_matrix(csv).methods == ("m1", "m2")
    js = tmp_path / "scores.json"
    js.write_bytes(b'\xef\xbb\xbf{"methods": ["a", "b"], "scores": [[1, 0], [0, 1]]}')
    assert load_score_matrix(js).methods == ("a", "b")


def test_livecodebench_capitalised_pass_at_1(tmp_path: Path) -> None:
    # LiveCodeBench's execution file spells the key 'Pass@1': it was refused with a message that
    # did not say which key was missing.
    rows = [
        {"model": m, "question_id": q, "sample_id": f"s{k}", "Pass@1": v, "Pass@1-COT": 0.0}
        for m, base in (("a", 100.0), ("b", 0.0))
        for q in range(3)
        for k, v in enumerate((base, 100.0 - base, base))
    ]
    path = tmp_path / "performances_execution.json"
    path.write_text(json.dumps({"performances": rows}))
    matrix = load_score_matrix(path)
    assert matrix.methods == ("a", "b")
    np.testing.assert_allclose(matrix.values, [[2 / 3] * 3, [1 / 3] * 3])


def test_livecodebench_missing_key_is_named(tmp_path: Path, capsys) -> None:
    path = tmp_path / "perf.json"
    path.write_text(json.dumps({"performances": [{"model": "a", "question_id": 1, "score": 1}]}))
    _one_line_error(capsys, main(["select", str(path)]), "'pass@1'", "score")


def test_subset_output_over_its_input_is_refused(items_jsonl: Path, capsys) -> None:
    # --output naming the input overwrote the evaluation set (and its human scores) with the subset.
    before = items_jsonl.read_bytes()
    _one_line_error(capsys, main(["subset", str(items_jsonl), "--size", "5", "--output", str(items_jsonl)]), "--output")
    assert items_jsonl.read_bytes() == before


def test_subset_output_gz_is_gzipped(items_jsonl: Path, tmp_path: Path, capsys) -> None:
    # --output x.jsonl.gz wrote plain text, which subset/estimate then refused as "not gzip".
    out = tmp_path / "to_rate.jsonl.gz"
    assert main(["subset", str(items_jsonl), "--size", "5", "--output", str(out), "--json"]) == 0
    chosen = json.loads(capsys.readouterr().out)["chosen"]
    with gzip.open(out, "rt", encoding="utf-8") as fh:
        assert [str(json.loads(line)["i"]) for line in fh] == chosen
    assert main(["subset", str(out), "--size", "2", "--json"]) == 0


def test_subset_human_score_as_metric_is_refused(items_jsonl: Path, capsys) -> None:
    # variance:metric=human_overall ordered the items by the very score the raters are to give.
    rc = main(["subset", str(items_jsonl), "--method", "variance:metric=human_overall"])
    _one_line_error(capsys, rc, "human_overall", "metric=bleu")


def test_select_negative_top_is_refused(tmp_path: Path, capsys) -> None:
    path = tmp_path / "s.csv"
    path.write_text("method,a,b\nm1,1,0\nm2,0,0\n")
    _one_line_error(capsys, main(["select", str(path), "--top", "-3"]), "--top", "-3")


def test_estimates_stay_on_the_given_scale() -> None:
    # A system rated 5 on every item of a 1-5 scale got a mean above 5 and an interval reaching
    # past 5 even with label_range=(1, 5) (budgetlab estimate --scale 1,5).
    rng = np.random.default_rng(0)
    items, systems = 60, 5
    quality = np.array([2.0, 2.5, 3.0, 3.5, 5.0])
    cheap = quality + rng.normal(0, 0.6, (items, systems))
    costly = np.clip(np.round(quality + rng.normal(0, 0.7, (items, systems))), 1, 5)
    costly[:, -1] = 5.0
    costly[20:] = np.nan
    for est in (
        pooled_control_variate_means(costly, cheap, label_range=(1, 5)),
        pooled_plain_means(costly, label_range=(1, 5)),
    ):
        for e in est:
            assert 1 <= e.lo <= e.mean <= e.hi <= 5, e


def test_single_system_estimate_stays_on_the_given_scale() -> None:
    from budgetlab.evaluation import control_variate_mean

    rng = np.random.default_rng(3)
    cheap = rng.normal(0, 1, 200)
    costly = np.full(200, np.nan)
    costly[:15] = 1.0  # every labelled item passed
    costly[3] = 0.0
    est = control_variate_mean(costly, cheap, label_range=(0, 1))
    assert 0 <= est.lo <= est.mean <= est.hi <= 1, est


def test_subset_says_when_a_count_is_capped_and_gives_no_ranking_for_one_system(tmp_path: Path, items_jsonl: Path, capsys) -> None:
    assert main(["subset", str(items_jsonl), "--size", "100"]) == 0
    assert "--size 100 is more than the set's 40 items: capped there" in " ".join(capsys.readouterr().out.split())
    one = tmp_path / "one.jsonl"
    one.write_text("".join(json.dumps({"i": i, "scores": {"a": {"human": float(i), "bleu": float(i % 3)}}}) + "\n" for i in range(10)))
    assert main(["subset", str(one), "--size", "3", "--json"]) == 0
    assert "ranking_agreement" not in json.loads(capsys.readouterr().out)


def test_select_delta_outside_zero_one_names_the_flag(tmp_path: Path, capsys) -> None:
    matrix = tmp_path / "m.csv"
    matrix.write_text("method,a,b,c\nm1,1,0,1\nm2,0,0,1\n")
    assert main(["select", str(matrix), "--delta", "0"]) == 2
    assert "--delta must be between 0 and 1" in capsys.readouterr().err
