"""``budgetlab judge``: a run stopped by a broken verifier, then judged once it is fixed, without
drawing again; ``--all`` with another verifier; and bad input, one line each."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from rich.console import Console

from budgetlab.cli._main import main
from budgetlab.runner._workers import new_worker_id
from budgetlab.stores import SQLiteStore

# 3 problems, 2 recorded samples each: the first right, the second wrong.
PROBLEMS = {"p0": "10", "p1": "11", "p2": "12"}
CHECKS = '''
from pathlib import Path

def check(problem, completion):
    """Breaks on p1 while the file BROKEN lies beside it (a bug the user then fixes)."""
    if problem.id == "p1" and (Path(__file__).parent / "BROKEN").exists():
        raise KeyError("normaliser")
    answer = completion.text.rsplit(" ", 1)[-1]
    return answer, answer == problem.reference

def always_right(problem, completion):
    return completion.text.rsplit(" ", 1)[-1], True

def right_until_ctrl_c_on_p1(problem, completion):
    if problem.id == "p1":
        raise KeyboardInterrupt
    return completion.text.rsplit(" ", 1)[-1], True

def similarity(problem, completion):
    """A scorer: a bare number, which is a score and no verdict without threshold=."""
    return 0.9 if completion.text.endswith(" " + problem.reference) else 0.2
'''


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    with open(tmp_path / "samples.jsonl", "w") as fh:
        for problem, reference in PROBLEMS.items():
            for answer in (reference, "99"):
                fh.write(json.dumps({"problem": problem, "config": "m", "text": f"the answer is {answer}",
                                     "prompt_tokens": 10, "completion_tokens": 5, "cost": 0.001}) + "\n")  # fmt: skip
    with open(tmp_path / "problems.jsonl", "w") as fh:
        for problem, reference in PROBLEMS.items():
            fh.write(json.dumps({"id": problem, "prompt": "what?", "reference": reference}) + "\n")
    (tmp_path / "checks.py").write_text(CHECKS)
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args], console=Console(width=400, no_color=True, highlight=False))
    out, err = capsys.readouterr()
    return rc, out, err


def run_x(capsys, d: Path, verifier: str) -> tuple[int, str, str]:
    return cli(capsys, "run", "--backend", f"replay:{d / 'samples.jsonl'}", "--problems", d / "problems.jsonl", "--name", "x",
               "-k", 2, "--verifier", verifier, "--concurrency", 2, "--store", d / "s.db", "--no-progress")  # fmt: skip


def runs_json(capsys, d: Path) -> dict:
    rc, out, err = cli(capsys, "runs", "--store", d / "s.db", "--json")
    assert rc == 0, err
    return json.loads(out)[0]


def report_samples(capsys, d: Path) -> int:
    rc, out, err = cli(capsys, "report", "x", "--store", d / "s.db", "--json")
    assert rc == 0, err
    return json.loads(out)["configs"]["m"]["samples"]


def dump(path: Path) -> str:
    con = sqlite3.connect(path)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


def one_line_error(rc: int, err: str) -> str:
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("budgetlab: error: "), err
    return err


def test_a_run_stopped_by_its_verifier_is_judged_once_it_is_fixed_then_resumed(capsys, workdir: Path) -> None:
    d = workdir
    (d / "BROKEN").touch()
    verifier = f"callable:path={d / 'checks.py'}:check"
    rc, _, err = run_x(capsys, d, verifier)
    assert "failed on problem 'p1'" in one_line_error(rc, err)
    assert "fix the verifier, then run the same command again to draw the rest, and `budgetlab judge x` to judge the kept ones" in err
    spent = runs_json(capsys, d)["spent"]
    assert spent["samples"] == 4 and report_samples(capsys, d) == 2  # p1's two samples are drawn but unjudged

    (d / "BROKEN").unlink()  # the user fixes the verifier
    rc, out, err = cli(capsys, "judge", "x", "--store", d / "s.db")
    assert rc == 0, err
    assert out.splitlines() == [
        f"judged 2 samples of run 'x' with verifier '{verifier}' (2 were unjudged): 1 correct, 1 wrong; 0 left unjudged",
        f"`budgetlab report x --store {d / 's.db'}` shows the updated table; "
        f"`budgetlab run --name x --store {d / 's.db'}` draws the rest",
    ]
    assert runs_json(capsys, d)["spent"]["samples"] == 4  # nothing drawn (or paid for) again
    assert runs_json(capsys, d)["spent"]["tokens"] == spent["tokens"]
    assert report_samples(capsys, d) == 4  # the report counts them now

    rc, out, err = cli(capsys, "judge", "x", "--store", d / "s.db")
    assert rc == 0 and out.strip() == "run 'x' has no unjudged samples: nothing judged (--all judges every sample again)"

    rc, out, err = cli(capsys, "run", "--name", "x", "--store", d / "s.db", "--no-progress")
    assert rc == 0, err
    assert "2 samples drawn now" in out  # only p2's
    assert runs_json(capsys, d)["state"] == "done" and report_samples(capsys, d) == 6


def test_all_with_another_verifier_judges_every_sample_again_and_records_it(capsys, workdir: Path) -> None:
    d = workdir
    assert run_x(capsys, d, "exact")[0] == 0
    before = runs_json(capsys, d)
    other = f"callable:path={d / 'checks.py'}:always_right"
    rc, out, err = cli(capsys, "judge", "x", "--all", "--verifier", other, "--store", d / "s.db", "--json")
    assert rc == 0, err
    got = json.loads(out)
    assert {k: got[k] for k in ("judged", "were_unjudged", "changed", "correct", "wrong", "left_unjudged", "verifier")} == {
        "judged": 6, "were_unjudged": 0, "changed": 3, "correct": 6, "wrong": 0, "left_unjudged": 0, "verifier": other}
    after = runs_json(capsys, d)
    assert after["spec"]["verifier"] == other and after["spent"]["samples"] == before["spent"]["samples"] == 6
    rc, out, err = cli(capsys, "report", "x", "--store", d / "s.db", "--json")
    assert json.loads(out)["configs"]["m"]["pass_at_k"]["1"] == 1.0

    rc, out, err = cli(capsys, "judge", "x", "--all", "--verifier", "exact", "--store", d / "s.db")
    assert rc == 0, err
    assert out.splitlines()[0] == ("judged 6 samples of run 'x' with verifier 'exact' (0 were unjudged): 3 correct, 3 wrong; "
                                   "3 verdicts changed; 0 left unjudged")  # fmt: skip
    assert out.splitlines()[1] == f"`budgetlab report x --store {d / 's.db'}` shows the updated table"  # a done run


@pytest.mark.parametrize(("args", "needle"), [
    (["nope"], "no run named 'nope' in store"),
    (["x", "--verifier", "nonsense"], "unknown verifier 'nonsense'; use one of: "),
    (["x", "--verifier", "regex"], "verifier regex needs pattern=...; e.g. --verifier 'regex:pattern="),
    (["x", "--budget", "dollars=lots"], "budget dollars='lots' is not a number; write e.g. dollars=100"),
])  # fmt: skip
def test_a_bad_run_or_verifier_is_one_line_and_changes_nothing(capsys, workdir: Path, args: list[str], needle: str) -> None:
    d = workdir
    (d / "BROKEN").touch()
    run_x(capsys, d, f"callable:path={d / 'checks.py'}:check")
    before = dump(d / "s.db")
    rc, _, err = cli(capsys, "judge", *args, "--store", d / "s.db")
    assert needle in one_line_error(rc, err)
    assert dump(d / "s.db") == before


def test_a_missing_store_is_one_line_and_not_created(capsys, tmp_path: Path) -> None:
    rc, _, err = cli(capsys, "judge", "x", "--store", tmp_path / "none.db")
    assert "does not exist; pass the store of your runs with --store" in one_line_error(rc, err)
    assert not (tmp_path / "none.db").exists()


def test_a_run_a_live_worker_draws_is_refused_in_one_line(capsys, workdir: Path) -> None:
    d = workdir
    run_x(capsys, d, "exact")
    with SQLiteStore(d / "s.db") as store:
        store.heartbeat("x", new_worker_id())  # as a `budgetlab run` of this run, still going, would
    rc, _, err = cli(capsys, "judge", "x", "--all", "--store", d / "s.db")
    line = one_line_error(rc, err)
    assert "run 'x' is being drawn now by worker" in line and "judge it once that ends" in line


def test_ctrl_c_while_judging_keeps_the_verdicts_recorded_and_says_how_to_go_on(capsys, workdir: Path) -> None:
    d = workdir
    rc, _, err = run_x(capsys, d, f"callable:path={d / 'checks.py'}:check")
    assert rc == 0, err
    verifier = f"callable:path={d / 'checks.py'}:right_until_ctrl_c_on_p1"
    rc, out, err = cli(capsys, "judge", "x", "--store", d / "s.db", "--all", "--verifier", verifier)
    assert rc != 0 and "interrupted; the verdicts recorded so far are kept" in out
    assert f"budgetlab judge x --store {d / 's.db'} --all" in out
    rc, out, err = cli(capsys, "report", "x", "--store", d / "s.db", "--json")
    per_problem = json.loads(out)["configs"]["m"]
    assert rc == 0 and per_problem["samples"] == 6
    con = sqlite3.connect(d / "s.db")
    try:
        p0 = [row[0] for row in con.execute("SELECT correct FROM samples WHERE problem = 'p0' ORDER BY idx")]
    finally:
        con.close()
    assert p0 == [1, 1]  # p0's batch was judged (both right now) before Ctrl-C


def test_a_judge_model_stops_at_the_runs_budget_and_a_free_verifier_does_not(capsys, workdir: Path) -> None:
    """A run whose drawing used up its dollars: judging it again with a judge model (which
    declares what a grading may cost) is stopped before it spends a cent, naming a --budget
    that judges it all; math, which costs nothing, judges it under the same budget."""
    pytest.importorskip("httpx")
    from budgetlab.testing import FaultyServer

    d = workdir
    rc, _, err = cli(capsys, "run", "--backend", f"replay:{d / 'samples.jsonl'}", "--problems", d / "problems.jsonl",
                     "--name", "x", "-k", 2, "--verifier", "exact", "--concurrency", 2, "--store", d / "s.db",
                     "--no-progress", "--budget", "dollars=0.006")  # fmt: skip
    assert rc == 0, err
    drawn = runs_json(capsys, d)["spent"]
    assert drawn["dollars"] == pytest.approx(0.006)
    with FaultyServer(models=["grader"], answer=lambda prompt, seed: "GRADE: C") as server:
        judge = f"judge:backend=openai:{server.url},model=grader,price_in=100,price_out=100"
        rc, _, err = cli(capsys, "judge", "x", "--all", "--verifier", judge, "--store", d / "s.db")
        line = one_line_error(rc, err)
        assert line.startswith("budgetlab: error: budget: dollars limit 0.006 reached (spent 0.006) while judging run 'x' again; ")
        assert "the 0 samples judged are recorded, the other 6 keep the verdicts they had" in line
        assert runs_json(capsys, d)["spent"] == drawn  # not a cent spent past the budget
        assert runs_json(capsys, d)["spec"]["verifier"] == "exact"  # judged nothing: the run keeps its verifier

        assert f" --all --verifier {judge} --budget " in line  # the judge to judge with, named again
        budget = line.split(" --budget ")[1].split()[0]
        rc, out, err = cli(capsys, "judge", "x", "--all", "--verifier", judge, "--store", d / "s.db", "--budget", budget)
        assert rc == 0, err
        assert out.startswith(f"judged 6 samples of run 'x' with verifier '{judge}' (0 were unjudged): 6 correct")
    after = runs_json(capsys, d)
    assert drawn["dollars"] < after["spent"]["dollars"] <= float(budget.split("=")[1])
    assert after["spec"]["budget"] == {"dollars": 0.006}  # --budget is for that judging only

    rc, out, err = cli(capsys, "judge", "x", "--all", "--verifier", "exact", "--store", d / "s.db")
    assert rc == 0 and out.startswith("judged 6 samples of run 'x' with verifier 'exact'"), err
    assert runs_json(capsys, d)["spent"]["dollars"] == after["spent"]["dollars"]


def test_the_report_says_when_a_switch_of_verifier_stopped_halfway(capsys, workdir: Path) -> None:
    d = workdir
    assert run_x(capsys, d, "exact")[0] == 0
    (d / "BROKEN").touch()
    check = f"callable:path={d / 'checks.py'}:check"
    rc, _, err = cli(capsys, "judge", "x", "--all", "--verifier", check, "--store", d / "s.db")
    assert "failed on problem 'p1'" in one_line_error(rc, err)  # p0's two samples were judged

    note = (f"verdicts of 2 verifiers: 2 samples by {check} (the run's), 4 by exact; run `budgetlab judge x --all` to "
            f"judge all with {check}")  # fmt: skip
    rc, out, err = cli(capsys, "report", "x", "--store", d / "s.db")
    assert rc == 0 and f"warning: {note}" in out.splitlines(), err
    rc, out, err = cli(capsys, "report", "x", "--store", d / "s.db", "--json")
    assert json.loads(out)["mixed_verdicts"] == {"by": {check: 2, "exact": 4}, "run_verifier": check, "note": note}

    (d / "BROKEN").unlink()  # fixed: the fix it names judges them all alike
    assert cli(capsys, "judge", "x", "--all", "--store", d / "s.db")[0] == 0
    rc, out, err = cli(capsys, "report", "x", "--store", d / "s.db", "--json")
    assert json.loads(out)["mixed_verdicts"] is None


def test_scores_without_verdicts_are_told_by_judge_run_and_report(capsys, workdir: Path) -> None:
    d = workdir
    scorer = f"callable:path={d / 'checks.py'}:similarity"
    fixed = f"{scorer},threshold=0.5"
    note = (f"verifier {scorer} gave scores but no verdicts for all 6 samples, so pass@k and maj@k count none of them; "
            f"add threshold=0.5 to count a score >= 0.5 as correct: budgetlab judge x --all --verifier {fixed}")  # fmt: skip
    rc, out, err = run_x(capsys, d, scorer)
    assert rc == 0 and f"warning: {note}" in out.splitlines(), err
    rc, out, err = cli(capsys, "report", "x", "--store", d / "s.db")
    assert rc == 0 and f"warning: {note}" in out.splitlines(), err

    rc, out, err = cli(capsys, "judge", "x", "--all", "--store", d / "s.db")
    assert rc == 0, err
    assert out.splitlines()[:2] == [
        f"judged 6 samples of run 'x' with verifier '{scorer}' (0 were unjudged): 0 correct, 0 wrong, 6 without a verdict "
        "(a score only); 0 verdicts changed; 0 left unjudged",
        f"warning: {note}",
    ]  # fmt: skip
    rc, out, err = cli(capsys, "judge", "x", "--all", "--store", d / "s.db", "--json")
    got = json.loads(out)
    assert (got["scores_only"], got["warnings"]) == (6, [note])

    rc, out, err = cli(capsys, "judge", "x", "--all", "--verifier", fixed, "--store", d / "s.db", "--json")
    got = json.loads(out)
    assert (got["correct"], got["wrong"], got["scores_only"], got["warnings"]) == (3, 3, 0, [])
    rc, out, err = cli(capsys, "report", "x", "--store", d / "s.db")
    assert "gave scores but no verdicts" not in out
