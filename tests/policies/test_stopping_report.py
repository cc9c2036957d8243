"""What ``budgetlab report`` says about a stopping run: the selected answer's accuracy under a
chosen selector, and the samples a self-stopping policy saved against fixed k = its maximum."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from budgetlab.analysis import build_report
from budgetlab.cli._main import main
from budgetlab.core import Budget
from budgetlab.runner import run
from budgetlab.selectors import WeightedVote
from budgetlab.stores import open_store

# Problem p0: unanimous "a" (right); p1: "b" then alternating (b is wrong, c right, c wins 4-2
# once all 6 are in); p2: "x" x2 then "y" x4 (y right). Logprobs make "c" and "y" look confident.
RECORDS = {
    "p0": [("a", True, -0.1)] * 6,
    "p1": [("b", False, -2.0), ("c", True, -0.1), ("c", True, -0.1), ("b", False, -2.0), ("c", True, -0.1), ("c", True, -0.1)],
    "p2": [("x", False, -3.0), ("x", False, -3.0), ("y", True, -0.1), ("y", True, -0.1), ("y", True, -0.1), ("y", True, -0.1)],
}


@pytest.fixture
def replay(tmp_path: Path) -> Path:
    path = tmp_path / "samples.jsonl"
    with path.open("w") as f:
        for problem, recs in RECORDS.items():
            for answer, correct, logprob in recs:
                f.write(json.dumps({"problem": problem, "config": "m", "answer": answer, "correct": correct, "logprob": logprob}) + "\n")
    return path


def do_run(tmp_path: Path, replay: Path, name: str, policy: str, args: dict) -> str:
    store = str(tmp_path / "runs.db")
    run(name, f"replay:{replay}", store=store, policy=policy, policy_args=args)
    return store


def test_a_stopping_run_reports_its_savings_and_selection(tmp_path: Path, replay: Path) -> None:
    store = do_run(tmp_path, replay, "esc", "esc", {"window": 2, "max_samples": 6})
    with open_store(store) as st:
        counts = {}
        for s in st.samples("esc"):
            counts[s.problem] = counts.get(s.problem, 0) + 1
        report = build_report(st, "esc")
        weighted = build_report(st, "esc", selector=WeightedVote(source="logprob"))
    # ESC with window 2: p0 stops at 2; p1 (b c | c b | c c) at 6; p2 (x x) at 2
    assert counts == {"p0": 2, "p1": 6, "p2": 2}
    saved = report["savings"]
    assert saved == {"policy": "esc", "max_samples": 6, "mean_samples": pytest.approx(10 / 3), "saved": pytest.approx(1 - 10 / 18),
                     "drawn": 10, "fixed_k_samples": 18, "cut_by_budget": False}  # fmt: skip
    (entry,) = report["configs"].values()
    assert entry["samples_per_problem"] == pytest.approx(10 / 3)
    # majority: p0 a (right), p1 c 4-2 (right), p2 x (wrong: only x x was drawn)
    assert entry["selection"]["selector"] == "majority" and entry["selection"]["problems"] == 3
    assert entry["selection"]["accuracy"] == pytest.approx(2 / 3)
    # Unbiased under stopping (ESC always draws its window of 2 first): pass@1 from the first two
    # samples of each problem (1, 1/2, 0); pass@4 settled for p0 (a correct sample) and p1 (drew
    # 6), not for p2 (2 wrong, then stopped).
    adaptive = entry["adaptive"]
    assert adaptive["prefix"] == 2
    assert adaptive["pass_at_k"]["1"] == pytest.approx(0.5) and adaptive["undetermined"]["pass_at_k"]["1"] == 0
    assert adaptive["pass_at_k"]["4"] == 1.0 and adaptive["undetermined"]["pass_at_k"]["4"] == 1
    assert adaptive["all_problems_bounds"]["pass_at_k"]["4"] == pytest.approx([2 / 3, 1.0])  # p2 unknown: 0 or 1
    assert adaptive["all_problems_bounds"]["pass_at_k"]["1"] == pytest.approx([0.5, 0.5])
    # Per-sample accuracy too: the 10 samples pooled would say 0.6, since p1's extra draws came in
    # because its first two disagreed.
    assert entry["accuracy"] == pytest.approx(0.5)
    assert set(adaptive["maj_at_k"]) == {"1", "2", "4", "6"}
    (wentry,) = weighted["configs"].values()
    assert wentry["selection"]["selector"] == "weighted" and wentry["selection"]["accuracy"] == pytest.approx(2 / 3)


def test_a_fixed_run_reports_no_savings(tmp_path: Path, replay: Path) -> None:
    store = do_run(tmp_path, replay, "fixed", "fixed", {"k": 6})
    with open_store(store) as st:
        report = build_report(st, "fixed", selector="best_of_n:source=logprob")
    assert report["savings"] is None
    (entry,) = report["configs"].values()
    assert "adaptive" not in entry
    # the most confident sample: p0 a, p1 c, p2 y: all right
    assert entry["selection"]["selector"] == "best_of_n" and entry["selection"]["accuracy"] == 1.0
    assert entry["samples_per_problem"] == 6


def test_accuracy_counts_each_problem_once_when_a_budget_cut_the_run(tmp_path: Path, replay: Path) -> None:
    store = str(tmp_path / "runs.db")
    run("cut", f"replay:{replay}", store=store, policy="fixed:k=6", budget=Budget(samples=8))
    with open_store(store) as st:
        (entry,) = build_report(st, "cut")["configs"].values()
    assert entry["samples"] == 8 and entry["problems"] == 2  # p0's 6 (all right), p1's first 2 (b, c)
    assert entry["accuracy"] == pytest.approx((1 + 0.5) / 2)  # pooled, p0 would count 3 times as much: 7/8


def test_the_report_command_shows_selection_and_savings(tmp_path: Path, replay: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = do_run(tmp_path, replay, "esc", "esc", {"window": 2, "max_samples": 6})
    capsys.readouterr()
    assert main(["report", "esc", "--store", store, "--selector", "weighted:source=logprob"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "selected answer (weighted), m: 66.7% of 3 problems correct" in out
    assert "mean 3.3 samples/problem vs max 6 (10 drawn vs 18 for fixed k=6): 44% saved" in out
    assert "From every problem's first samples (--json, 'adaptive'):" in out
    assert re.search(r"m: pass@6 (\d+\.\d) \(|m: pass@6 lies in", out), out  # settled, or bounds over all problems
    assert main(["report", "esc", "--store", store, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["savings"]["saved"] == pytest.approx(1 - 10 / 18) and report["configs"]["m"]["selection"]["accuracy"] == pytest.approx(2 / 3)


def test_savings_cut_by_the_budget_are_not_credited_to_the_policy(tmp_path: Path, replay: Path, capsys) -> None:
    store = str(tmp_path / "runs.db")
    run("cut", f"replay:{replay}", store=store, policy="esc", policy_args={"window": 2, "max_samples": 6},
        budget=Budget(samples=4))
    capsys.readouterr()
    assert main(["report", "cut", "--store", store]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "% saved (the budget stopped the run: not all of it is the policy's saving)" in out
    with open_store(store) as st:
        assert build_report(st, "cut")["savings"]["cut_by_budget"] is True  # the same, for library users


def test_an_unknown_selector_is_a_one_line_error(tmp_path: Path, replay: Path, capsys: pytest.CaptureFixture[str]) -> None:
    store = do_run(tmp_path, replay, "esc", "esc", {"window": 2, "max_samples": 6})
    capsys.readouterr()
    assert main(["report", "esc", "--store", store, "--selector", "vote"]) == 2
    err = capsys.readouterr().err.strip()
    assert "unknown selector 'vote'" in err and "\n" not in err


def test_the_selection_line_says_which_problems_it_leaves_out(tmp_path: Path, replay: Path, capsys) -> None:
    store = str(tmp_path / "runs.db")
    run("cut", f"replay:{replay}", store=store, policy="fixed:k=6", budget=Budget(samples=8))
    capsys.readouterr()
    assert main(["report", "cut", "--store", store]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "of 2 problems correct" in out and "1 of the run's 3 problems have no finished sample and are left out" in out
