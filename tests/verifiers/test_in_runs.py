"""The new verifiers inside real runs: code verdicts and their seconds recorded per sample,
a judge model's tokens and dollars counted in the budget, and the CLI's --task / --verifier."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from budgetlab.core import Budget, SampleState, Spend
from budgetlab.runner import run
from budgetlab.stores import SQLiteStore
from budgetlab.tasks import humaneval_problems
from budgetlab.testing import FaultyServer

TASK = [
    {"task_id": "T/0", "prompt": "def double(x):\n", "entry_point": "double", "test": "def check(f):\n    assert f(2) == 4\n"},
    {"task_id": "T/1", "prompt": "def inc(x):\n", "entry_point": "inc", "test": "def check(f):\n    assert f(2) == 3\n"},
]
COMPLETIONS = {
    "T/0": ["    return x * 2\n", "    return x + 2\n", "    return x ** 3\n"],  # the first two pass
    "T/1": ["    return x - 1\n", "    return x + 1\n", "    while True: pass\n"],  # only the second passes
}


def _files(tmp_path: Path) -> tuple[Path, Path]:
    task = tmp_path / "task.jsonl"
    task.write_text("".join(json.dumps(r) + "\n" for r in TASK))
    replay = tmp_path / "samples.jsonl"
    replay.write_text("".join(
        json.dumps({"problem": pid, "config": "m", "text": text, "prompt_tokens": 3, "completion_tokens": 5}) + "\n"
        for pid, texts in COMPLETIONS.items() for text in texts
    ))
    return task, replay


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the code sandbox needs Linux")
def test_a_code_run_records_verdicts_and_verify_seconds(tmp_path: Path) -> None:
    task, replay = _files(tmp_path)
    store = SQLiteStore(tmp_path / "s.db")
    try:
        outcome = run("code", f"replay:{replay}", store=store, problems=humaneval_problems(str(task)),
                      verifier="code:timeout=1", policy="fixed", policy_args={"k": 3})
        samples = sorted(store.samples("code"), key=lambda s: (s.problem, s.index))
        assert all(s.state is SampleState.DONE for s in samples)
        assert [s.correct for s in samples] == [True, True, False, False, True, False]
        assert samples[-1].answer.startswith("failed: timed out after 1 s")
        assert all(s.verify_seconds > 0 for s in samples)
        assert outcome.spent.verify_seconds == pytest.approx(sum(s.verify_seconds for s in samples))
        assert store.get_run("code").spec.verifier == "code:timeout=1"
    finally:
        store.close()


def test_a_judge_s_cost_counts_in_the_budget(tmp_path: Path) -> None:
    pytest.importorskip("httpx")
    replay = tmp_path / "samples.jsonl"
    replay.write_text("".join(
        json.dumps({"problem": f"q{i}", "config": "m", "text": "42" if i % 2 else "41"}) + "\n" for i in range(6)
    ))
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"q{i}", "prompt": "What is 6 * 7?", "reference": "42"}) + "\n" for i in range(6)))

    def grader(prompt: str, seed: int) -> str:
        return "GRADE: C" if "[Submission]\n42" in prompt else "GRADE: I"

    from budgetlab.tasks import load_problems

    with FaultyServer(models=["grader"], answer=grader) as server:
        store = SQLiteStore(tmp_path / "s.db")
        try:
            spec = f"judge:backend=openai:{server.url},model=grader,price_in=1000,price_out=1000"
            outcome = run("judged", f"replay:{replay}", store=store, problems=load_problems(problems), verifier=spec,
                          policy="fixed", policy_args={"k": 1})
            samples = sorted(store.samples("judged"), key=lambda s: s.problem)
            assert [s.correct for s in samples] == [False, True] * 3
            assert all(s.cost > 0 and s.prompt_tokens > 0 for s in samples)  # the judge's spend, on its sample
            assert outcome.spent.dollars == pytest.approx(sum(s.cost for s in samples))
            assert outcome.spent.tokens == sum(s.prompt_tokens + s.completion_tokens for s in samples)
            # with a dollar budget the judge's cost stops the run
            stopped = run("judged-budget", f"replay:{replay}", store=store, problems=load_problems(problems),
                          verifier=spec, policy="fixed", policy_args={"k": 1},
                          budget=Budget(dollars=2 * samples[0].cost), concurrency=1)
            assert stopped.stopped_because.startswith("budget: dollars")
        finally:
            store.close()


def test_judges_in_flight_are_reserved_so_they_never_overspend(tmp_path: Path) -> None:
    pytest.importorskip("httpx")
    from budgetlab.tasks import load_problems
    from budgetlab.verifiers import make_verifier

    replay = tmp_path / "samples.jsonl"
    replay.write_text("".join(json.dumps({"problem": f"q{i}", "config": "m", "text": "42", "prompt_tokens": 4,
                                          "completion_tokens": 2}) + "\n" for i in range(12)))  # fmt: skip
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"q{i}", "prompt": "What is 6 * 7?", "reference": "42"}) + "\n" for i in range(12)))
    with FaultyServer(models=["grader"], answer=lambda prompt, seed: "GRADE: C") as server:
        spec = f"judge:backend=openai:{server.url},model=grader,price_in=1000,price_out=1000,max_tokens=16"
        judge = make_verifier(spec)
        bound = judge.estimate(load_problems(problems)[0], Spend(samples=1, tokens=6))
        assert bound.tokens > 512 and bound.dollars == pytest.approx(bound.tokens * 1000 / 1e6)
        store = SQLiteStore(tmp_path / "s.db")
        try:
            one = run("one", f"replay:{replay}", store=store, problems=load_problems(problems)[:1], verifier=spec,
                      policy="fixed", policy_args={"k": 1}).spent.dollars  # what one grading really costs
            assert bound.dollars >= one and 12 * one > 1.2 * bound.dollars
            budget = Budget(dollars=1.2 * bound.dollars)  # less than 12 gradings in flight would spend
            outcome = run("reserved", f"replay:{replay}", store=store, problems=load_problems(problems),
                          verifier=spec, policy="fixed", policy_args={"k": 1}, budget=budget, concurrency=12)
            samples = store.samples("reserved", [SampleState.DONE])
            assert outcome.stopped_because.startswith("budget: dollars")
            assert 1 <= len(samples) < 12 and all(s.correct for s in samples)
            assert outcome.spent.dollars <= budget.dollars and store.get_run("reserved").reserved == Spend()
        finally:
            store.close()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the code sandbox needs Linux")
def test_cli_task_and_verifier(tmp_path: Path) -> None:
    task, replay = _files(tmp_path)
    cmd = [sys.executable, "-m", "budgetlab", "run", "--backend", f"replay:{replay}", "--task", f"humaneval:{task}",
           "--verifier", "code:timeout=1", "-k", "3", "--no-progress", "--json", "--store", str(tmp_path / "cli.db")]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    bad = subprocess.run([*cmd[:-2], "--verifier", "code:colour=red", "--store", str(tmp_path / "cli2.db")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "verifier code does not take 'colour'" in bad.stderr
