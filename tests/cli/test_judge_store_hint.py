"""The ``budgetlab judge ...`` that a stopped judging suggests names the store it was given: the
command, run as printed, judges the rest (it used to open budgetlab.db, which does not exist)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from rich.console import Console

from budgetlab.cli._main import main

CHECKS = '''
import budgetlab

def paid(problem, completion):
    """A judge that pays per verdict (as a model behind an API would), declaring no estimate."""
    answer = completion.text.rsplit(" ", 1)[-1]
    return budgetlab.Verdict(answer=answer, correct=answer == problem.reference, cost=0.01, prompt_tokens=100,
                             completion_tokens=10)

def breaks(problem, completion):
    if problem.id == "p2":
        raise ValueError("judge API down")
    return paid(problem, completion)
'''


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    d = tmp_path / "my runs"  # a store path that needs quoting, too
    d.mkdir()
    with open(d / "samples.jsonl", "w") as fh:
        for i in range(4):
            for answer in (str(i), "99"):
                fh.write(json.dumps({"problem": f"p{i}", "config": "m", "text": f"the answer is {answer}",
                                     "prompt_tokens": 10, "completion_tokens": 5, "cost": 0.001}) + "\n")  # fmt: skip
    with open(d / "problems.jsonl", "w") as fh:
        for i in range(4):
            fh.write(json.dumps({"id": f"p{i}", "prompt": "what?", "reference": str(i)}) + "\n")
    (d / "checks.py").write_text(CHECKS)
    return d


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args], console=Console(width=400, no_color=True, highlight=False))
    out, err = capsys.readouterr()
    return rc, out, err


def test_the_budget_a_stopped_judging_names_is_for_the_store_it_was_given(capsys, workdir: Path) -> None:
    d, store = workdir, workdir / "s.db"
    rc, _, err = cli(capsys, "run", "--backend", f"replay:{d / 'samples.jsonl'}", "--problems", d / "problems.jsonl",
                     "--name", "x", "-k", 2, "--verifier", "exact", "--concurrency", 2, "--store", store, "--no-progress",
                     "--budget", "dollars=0.01")  # fmt: skip
    assert rc == 0, err
    rc, _, err = cli(capsys, "judge", "x", "--all", "--verifier", f"callable:path={d / 'checks.py'}:paid", "--store", store)
    assert rc == 2 and err.startswith("budgetlab: error: budget: dollars limit 0.01 reached"), err
    paid = shlex.quote(f"callable:path={d / 'checks.py'}:paid")
    command = f"budgetlab judge x --store {shlex.quote(str(store))} --all --verifier {paid} --budget "
    assert command in err, err

    again = shlex.split(err.split(": budgetlab ", 1)[1].split(" (it judges")[0])
    assert "--store" in again
    rc, out, err = cli(capsys, *again)  # as printed: it judges them all
    assert rc == 0, err
    assert out.startswith("judged 8 samples of run 'x'")


@pytest.mark.parametrize("name", ["x", "my run"])
def test_judging_again_once_the_verifier_is_fixed_is_for_the_store_it_was_given(capsys, workdir: Path, name: str) -> None:
    d, store = workdir, workdir / "s.db"
    rc, _, err = cli(capsys, "run", "--backend", f"replay:{d / 'samples.jsonl'}", "--problems", d / "problems.jsonl",
                     "--name", name, "-k", 2, "--verifier", "exact", "--concurrency", 2, "--store", store,
                     "--no-progress")  # fmt: skip
    assert rc == 0, err
    rc, _, err = cli(capsys, "judge", name, "--all", "--verifier", f"callable:path={d / 'checks.py'}:breaks", "--store", store)
    assert rc == 2 and "failed on problem 'p2'" in err, err
    breaks = shlex.quote(f"callable:path={d / 'checks.py'}:breaks")
    again = f"budgetlab judge {shlex.quote(name)} --store {shlex.quote(str(store))} --all --verifier {breaks}"
    assert err.rstrip().endswith(f"fix the verifier, then run {again} again")
