"""Comparing several sampling configurations in one run: what a user reads must tell them apart
and say when values rest on different problems; a forecast must not fail on a free backend."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rich.console import Console

from budgetlab.cli._main import main
from budgetlab.cli._render import print_report
from budgetlab.core import SamplingConfig
from budgetlab.forecast import forecast


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args], console=Console(width=300, no_color=True, highlight=False))
    out, err = capsys.readouterr()
    return rc, out, err


def _entry(pass_at_k: dict[str, float], n_problems: dict[str, int]) -> dict:
    return {"samples": sum(n_problems.values()), "pass_at_k": pass_at_k, "maj_at_k": {}, "n_problems": n_problems,
            "selection": None}


def _report(configs: dict[str, dict]) -> dict:
    return {"run": "r", "state": "done", "samples": 0, "failed": 0, "problems": 10, "configs": configs,
            "spent": {"samples": 0, "tokens": 0, "dollars": 0.0, "verify_seconds": 0.0}, "budget": {},
            "stopped_because": "", "savings": None, "best_arm": None}


def test_values_over_fewer_problems_than_the_run_has_are_marked() -> None:
    # The planner gives a configuration only the problems the others failed: its pass@1 covers 3 of
    # 10 problems and pass@4 (1 problem) looks worse than pass@1; read as-is, that compares nothing.
    report = _report({
        "a": _entry({"1": 0.5, "2": 0.6, "4": 0.7}, {"1": 10, "2": 10, "4": 10}),
        "b": _entry({"1": 0.4, "2": 0.3, "4": 0.0}, {"1": 3, "2": 2, "4": 1}),
    })
    console = Console(width=300, record=True, no_color=True)
    print_report(console, report)
    text = console.export_text()
    row_a = next(line for line in text.splitlines() if line.startswith("│ a "))
    row_b = next(line for line in text.splitlines() if line.startswith("│ b "))
    assert "*" not in row_a
    assert "40.0*" in row_b and "0.0*" in row_b
    assert "over only some of the run's 10 problems" in text
    assert "b over 3 (k=1), 2 (k=2), 1 (k=4)" in text


def test_complete_run_has_no_marks() -> None:
    console = Console(width=300, record=True, no_color=True)
    print_report(console, _report({"a": _entry({"1": 0.5, "4": 0.7}, {"1": 10, "4": 10})}))
    assert "*" not in console.export_text()


def _replay(tmp_path: Path) -> Path:
    """Two configurations, no cost recorded: a backend that bills nothing (a local server)."""
    path = tmp_path / "samples.jsonl"
    lines = [json.dumps({"problem": f"p{i:02d}", "config": config, "answer": str(j % 2), "correct": j % 2 == 0,
                         "prompt_tokens": 10, "completion_tokens": 5}) + "\n"
             for i in range(40) for config in ("m-a", "m-b") for j in range(4)]
    path.write_text("".join(lines))
    return path


def test_forecast_with_a_dollar_budget_on_a_free_backend_notes_it(tmp_path: Path) -> None:
    # Before: "--budgets --budget dollars=1: the pilot's samples cost no dollars ..." and no forecast,
    # on every try, although the user asked for no --budgets at all.
    fc, pilot = forecast("r", f"replay:{_replay(tmp_path)}", store=str(tmp_path / "s.db"), pilot=0.1,
                         policy="fixed", policy_args={"k": 4}, verifier="recorded", budget="dollars=1", n_boot=20)
    assert pilot.drawn == 4 * 4 * 2
    assert [r.label for r in fc.rows] == ["planned k=4", "k=16", "k=64"]
    assert any("--budget dollars=1 limits no k" in note for note in fc.notes)


def test_forecast_cli_free_backend_dollar_budget(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = _cli(capsys, "forecast", "--backend", f"replay:{_replay(tmp_path)}", "-k", 4, "--pilot", 0.1,
                        "--budget", "dollars=1", "--verifier", "recorded", "--no-progress", "--store", tmp_path / "c.db")
    assert rc == 0, err
    assert "--budget dollars=1 limits no k" in out.replace("\n", " ")


def test_report_json_says_what_each_configuration_is(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Two prompt templates of one model are named "m #1" and "m #2": the JSON must say which is which.
    from budgetlab.runner import run
    from budgetlab.stores import open_store

    samples = tmp_path / "samples.jsonl"
    samples.write_text("".join(json.dumps({"problem": f"p{i}", "config": "m", "answer": "1", "correct": True}) + "\n"
                               for i in range(3)))
    configs = [SamplingConfig("m", "replay", template="{prompt}"), SamplingConfig("m", "replay", template="Q: {prompt}")]
    with open_store(str(tmp_path / "s.db")) as store:
        run("r", f"replay:{samples}", store=store, configs=configs, policy="fixed", policy_args={"k": 1},
            verifier="recorded")
    rc, out, err = _cli(capsys, "report", "r", "--json", "--store", tmp_path / "s.db")
    assert rc == 0, err
    entries = json.loads(out)["configs"]
    assert sorted(e["template"] for e in entries.values()) == ["Q: {prompt}", "{prompt}"]
    assert all(e["model"] == "m" and e["params"] == {} for e in entries.values())


def test_configs_on_a_backend_that_lists_none_says_to_use_config(capsys: pytest.CaptureFixture[str]) -> None:
    from budgetlab.testing.faulty_server import FaultyServer

    with FaultyServer(models=["echo", "other"]) as server:
        rc, _, err = _cli(capsys, "run", "--backend", f"openai:{server.url}", "--configs", "other", "--task", "arithmetic:n=2",
                          "--store", ":memory:")  # fmt: skip
    assert rc == 2 and err.count("\n") == 1
    assert "offers no list of configurations to pick from with --configs; give each as --config model=other" in err


def test_a_code_run_reports_no_majority_vote_over_test_verdicts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A code sample's answer is its verdict ("passed", "failed: ..."): a vote over those is no
    selection (it read 6% where pass@1 was 53%)."""
    problems = tmp_path / "problems.jsonl"
    problems.write_text(json.dumps({"id": "inc", "prompt": "def inc(n):\n", "metadata": {
        "entry_point": "inc", "test": "def check(candidate):\n    assert candidate(1) == 2\n"}}) + "\n")  # fmt: skip
    recorded = tmp_path / "recorded.jsonl"
    bodies = ["    return n + 1\n", "    return n\n", "    return None + 1\n"]
    recorded.write_text("".join(json.dumps({"problem": "inc", "config": "m", "text": b}) + "\n" for b in bodies))
    rc, out, err = _cli(capsys, "run", "--backend", f"replay:{recorded}", "--problems", problems, "--verifier",
                        "code", "-k", "3", "--store", tmp_path / "s.db", "--no-progress", "--json")  # fmt: skip
    assert rc == 0, err
    entry = json.loads(out)["configs"]["m"]
    assert entry["samples"] == 3 and entry["pass_at_k"]["1"] == pytest.approx(1 / 3)
    assert entry["selection"]["accuracy"] is None and "answers are test verdicts" in entry["selection"]["unjudged_because"]
