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
    """Without --method: agreement for a continuous metric and for pass/fail, diversity without one."""
    assert main(["subset", str(items_jsonl), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "agreement" and report["method_chosen"]
    assert main(["subset", str(items_jsonl)]) == 0
    assert "method agreement: the default for a set with a metric" in capsys.readouterr().out
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


# ---- flags checked before any work, in the flag's own words ---------------------------------------
@pytest.mark.parametrize(
    "extra,message",
    [
        (("--budget", "nan"), "--budget nan is neither a whole count nor a fraction in (0, 1]"),
        (("--budget", "inf"), "--budget inf is neither"),
        (("--budget", "1e400"), "--budget 1e400 is neither"),
        (("--budget", "1.5"), "--budget 1.5 is neither a whole count nor a fraction in (0, 1] of the full matrix"),
        (("--budget", "-1"), "--budget -1 is neither"),
        (("--budget", "abc"), "--budget 'abc' is not a number"),
        (("--budget", "3"), "a budget of 3 evaluations cannot evaluate each of the 4 methods once"),
        (("--seed", "-1"), "--seed must be a whole number >= 0, got -1"),
        (("--algorithm", "ucbe:a=abc"), "a must be finite and a > 0"),
        (("--algorithm", "ucbe:batch=1.5"), "batch must be a whole number >= 1"),
        (("--algorithm", "uniform:batch=0"), "batch must be a whole number >= 1"),
        (("--algorithm", "halving:budget=abc"), "budget must be a whole number >= 1"),
    ],
)
def test_select_bad_flags(scores_csv: Path, capsys, extra: tuple, message: str) -> None:
    _one_line_error(capsys, main(["select", str(scores_csv), *extra]), message)


def test_select_says_a_budget_over_the_matrix_was_capped(scores_csv: Path, capsys) -> None:
    assert main(["select", str(scores_csv), "--budget", "5000", "--algorithm", "uniform"]) == 0
    assert "--budget 5,000 is more than the 800 evaluations of the full matrix: capped there" in capsys.readouterr().out
    assert main(["select", str(scores_csv), "--budget", "5000", "--algorithm", "uniform", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["budget_asked"] == 5000 and report["evaluations"] == 800


def test_select_help_says_one_is_the_whole_matrix(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["select", "--help"])
    assert "1 is the whole matrix" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize(
    "extra,message",
    [
        (("--size", "nan"), "--size nan is neither a whole count nor a fraction in (0, 1] of the set"),
        (("--size", "inf"), "--size inf is neither"),
        (("--size", "1.5"), "--size 1.5 is neither"),
        (("--size", "-1"), "--size -1 is neither"),
        (("--seed", "-1"), "--seed must be a whole number >= 0, got -1"),
        (("--cost-budget", "inf"), "--cost-budget must be a positive finite number, got inf"),
        (("--cost-budget", "-1"), "--cost-budget must be a positive finite number, got -1; e.g. --cost-budget 1000"),
        (("--cost-budget", "1"), "no item fits a cost budget of 1; the cheapest, "),
    ],
)
def test_subset_bad_flags(items_jsonl: Path, capsys, extra: tuple, message: str) -> None:
    _one_line_error(capsys, main(["subset", str(items_jsonl), *extra]), message)


def test_subset_output_that_cannot_be_written_is_one_line_and_leaves_nothing(
    items_jsonl: Path, tmp_path: Path, capsys
) -> None:
    missing = tmp_path / "no-such-folder" / "x.jsonl"
    _one_line_error(capsys, main(["subset", str(items_jsonl), "--output", str(missing)]), "does not exist")
    folder = tmp_path / "adir"
    folder.mkdir()
    _one_line_error(capsys, main(["subset", str(items_jsonl), "--output", str(folder)]), "is a directory")
    assert not (tmp_path / "adir.tmp").exists()


def test_subset_output_drops_the_human_scores(items_jsonl: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "to_rate.jsonl"
    assert main(["subset", str(items_jsonl), "--size", "5", "--output", str(out), "--json"]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5
    assert all(set(scores) == {"bleu"} for row in rows for scores in row["scores"].values())


def test_subset_never_ranks_items_by_the_human_key_it_is_given(tmp_path: Path, capsys) -> None:
    """``--human rating``: the rating, named unlike a human score, is not a metric; with no other
    metric the default method is the one for a set without a metric."""
    rng = np.random.default_rng(0)
    path = tmp_path / "rated.jsonl"
    path.write_text("".join(
        json.dumps({"i": i, "tgt": {s: f"out {s} {i} {rng.integers(9)}" for s in "abc"},
                    "scores": {s: {"rating": float(rng.random())} for s in "abc"}}) + "\n"
        for i in range(20)
    ))  # fmt: skip
    assert main(["subset", str(path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["method"] == "agreement"  # 'rating' read as a metric
    assert main(["subset", str(path), "--human", "rating", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["method"] == "diversity" and "ranking_agreement" in report


def test_subset_refuses_non_finite_metric_scores(tmp_path: Path, capsys) -> None:
    path = tmp_path / "nan.jsonl"
    path.write_text('{"i": 1, "scores": {"a": {"bleu": NaN}, "b": {"bleu": 1}}}\n')
    _one_line_error(capsys, main(["subset", str(path)]), f"{path}:1: score 'bleu' of system 'a' is not finite: nan")


@pytest.mark.parametrize("command", ["select", "subset", "estimate"])
def test_a_directory_as_input_is_called_a_directory(tmp_path: Path, capsys, command: str) -> None:
    folder = tmp_path / "scores.csv"
    folder.mkdir()
    _one_line_error(capsys, main([command, str(folder)]), f"{folder} is a directory")


def test_select_reads_duplicate_long_rows_as_samples_and_refuses_duplicate_wide_rows(tmp_path: Path, capsys) -> None:
    long = tmp_path / "long.csv"
    long.write_text("method,example,score\nm1,a,1\nm1,a,0\nm2,a,0.75\n")
    assert main(["select", str(long), "--budget", "1.0", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["best"] == "m2"
    assert {r["method"]: r["full_mean"] for r in report["ranking"]} == {"m1": 0.5, "m2": 0.75}
    wide = tmp_path / "wide.csv"
    wide.write_text("method,a,b\nm1,1,0\nm1,0,1\nm2,0,0\n")
    _one_line_error(capsys, main(["select", str(wide)]), f"{wide}:3: method 'm1' has a row already (line 2)")


@pytest.mark.parametrize("command", [["select", "--budget", "1.0"], ["estimate"]])
def test_a_reader_that_stops_early_gets_no_traceback(tmp_path: Path, command: list) -> None:
    """``budgetlab select --json | head -1``: the closed pipe ends the command quietly."""
    import shlex
    import subprocess
    import sys

    if command[0] == "select":
        path = tmp_path / "big.json"
        rng = np.random.default_rng(0)
        path.write_text(json.dumps({f"method{i}": rng.random(3).tolist() for i in range(4000)}))
    else:
        path = tmp_path / "items.jsonl"
        rng = np.random.default_rng(0)
        systems = [f"system{j}" for j in range(600)]
        path.write_text("".join(
            json.dumps({"i": i, "scores": {s: {"bleu": float(rng.random()), "human_overall": float(rng.random())}
                                           for s in systems}}) + "\n"
            for i in range(5)
        ))  # fmt: skip
    argv = [command[0], str(path), *command[1:], "--json"]
    cli = f"import sys; from budgetlab.cli._main import main; sys.exit(main({argv!r}))"
    shell = f"{shlex.quote(sys.executable)} -c {shlex.quote(cli)} | head -c 10"
    done = subprocess.run(["bash", "-c", shell], capture_output=True, text=True, timeout=300, check=False)
    assert done.stdout.startswith("{")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
