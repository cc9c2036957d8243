"""Best-arm identification live: the selection policies in real budgetlab runs over a replay
counts file (problem = example, configuration = method, one sample = one evaluation).

Checks: the run's budget counts every evaluation and stops the run; without a binding budget
the policy ends the run once the best configuration is identified, well before the full
matrix; a run cut by its budget and resumed decides exactly as an uninterrupted one; and the
policies keep the policy contract (limits, known pairs, determinism, statelessness).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import numpy as np
import pytest

from budgetlab.backends import ReplayBackend
from budgetlab.core import Budget, Problem, Sample, SampleState, SamplingConfig, derive_seed
from budgetlab.core.run import RunSpec, RunState
from budgetlab.core.view import RunView
from budgetlab.errors import InputError
from budgetlab.evaluation.selection import SELECTION_POLICIES, SelectionPolicy
from budgetlab.policies import Policy
from budgetlab.runner import execute
from budgetlab.stores import SQLiteStore
from budgetlab.verifiers import make_verifier

POLICIES = [
    pytest.param("uniform", {}, id="uniform"),
    pytest.param("halving", {}, id="halving"),
    pytest.param("ucbe", {}, id="ucbe"),
    pytest.param("ucbe", {"batch": 4}, id="ucbe-batch4"),
    pytest.param("ucbe-lrf", {}, id="ucbe-lrf"),
]
CONFIG_RATES = {"weak": 0.25, "mid": 0.45, "good": 0.55, "best": 0.85}
N_PROBLEMS = 150


def test_every_selection_policy_is_in_the_suite() -> None:
    assert set(SELECTION_POLICIES) == {p.values[0] for p in POLICIES}


def _counts_file(path: Path) -> Path:
    rng = np.random.default_rng(0)
    lines = []
    for j in range(N_PROBLEMS):
        shift = rng.normal(0, 0.8)  # problem difficulty, shared by every configuration
        for config, rate in CONFIG_RATES.items():
            p = 1 / (1 + np.exp(-(np.log(rate / (1 - rate)) - shift)))
            lines.append(
                json.dumps({"problem": f"p{j}", "config": config, "n": 10, "correct": int(rng.binomial(10, p))})
            )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def counts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _counts_file(tmp_path_factory.mktemp("counts") / "counts.jsonl")


def _run(tmp_path: Path, counts: Path, policy: Policy, budget: Budget, store_name: str = "store.db"):
    backend = ReplayBackend(counts)
    store = SQLiteStore(tmp_path / store_name)
    if store.find_run("r") is None:
        store.create_run(RunSpec(name="r", backend=f"replay:{counts}"), backend.problems(), backend.configs())
    try:
        outcome = asyncio.run(
            asyncio.wait_for(
                execute(store, "r", backend, policy, make_verifier("auto"), budget, concurrency=8), timeout=30
            )
        )
        return outcome, store.samples("r"), store.get_run("r"), store.problems("r"), store.configs("r")
    finally:
        store.close()


def _policy(name: str, args: dict, **extra) -> SelectionPolicy:
    return SELECTION_POLICIES[name](**args, **extra)


@pytest.mark.parametrize("name,args", POLICIES)
def test_sample_budget_counts_every_evaluation(tmp_path: Path, counts: Path, name: str, args: dict) -> None:
    outcome, samples, info, _, _ = _run(tmp_path, counts, _policy(name, args), Budget(samples=40))
    assert outcome.state is RunState.STOPPED
    assert info.spent.samples == 40 == len(samples)
    assert all(s.state is SampleState.DONE for s in samples)
    assert (
        max(
            sum(1 for s in samples if (s.problem, s.config) == pair)
            for pair in {(s.problem, s.config) for s in samples}
        )
        == 1
    )


@pytest.mark.parametrize("name,args", POLICIES)
def test_stops_once_the_best_is_identified(tmp_path: Path, counts: Path, name: str, args: dict) -> None:
    policy = _policy(name, args)
    outcome, samples, info, problems, configs = _run(tmp_path, counts, policy, Budget(samples=4 * N_PROBLEMS))
    assert outcome.state is RunState.DONE, outcome.stopped_because
    assert outcome.stopped_because == f"complete: policy {policy.name} has nothing more to draw"
    full = len(CONFIG_RATES) * N_PROBLEMS
    assert info.spent.samples == len(samples) < full
    view = RunView(problems, configs, samples)
    best = policy.best(view)
    assert view.config(best).model == "best"


def test_without_delta_the_policy_draws_until_the_budget(tmp_path: Path, counts: Path) -> None:
    outcome, samples, _, _, _ = _run(tmp_path, counts, _policy("ucbe", {}, delta=None), Budget(samples=300))
    assert outcome.state is RunState.STOPPED and len(samples) == 300


@pytest.mark.parametrize("name,args", POLICIES)
def test_resumed_run_decides_as_an_uninterrupted_one(tmp_path: Path, counts: Path, name: str, args: dict) -> None:
    args = {**args, "batch": 1} if name != "halving" else args
    whole = _run(tmp_path, counts, _policy(name, args), Budget(samples=120), "whole.db")[1]
    _run(tmp_path, counts, _policy(name, args), Budget(samples=50), "cut.db")
    outcome, resumed, _, _, _ = _run(tmp_path, counts, _policy(name, args), Budget(samples=120), "cut.db")
    assert outcome.state is RunState.STOPPED
    assert sorted(s.key for s in resumed) == sorted(s.key for s in whole)


# ---- the policy contract ------------------------------------------------------------------------
PROBLEMS = tuple(Problem(f"q{i}") for i in range(6))
CONFIGS = tuple(SamplingConfig(model=m, backend="replay") for m in ("m1", "m2", "m3"))


def _view(seed: int) -> RunView:
    rng = np.random.default_rng(seed)
    samples = []
    for p in PROBLEMS:
        for c in CONFIGS:
            for i in range(int(rng.integers(0, 2))):
                state = rng.choice([SampleState.PENDING, SampleState.RUNNING, SampleState.DONE, SampleState.FAILED])
                correct = bool(rng.random() < 0.5) if state is SampleState.DONE else None
                samples.append(Sample("r", p.id, c.id, i, derive_seed(0, p.id, c.id, i), state=state, correct=correct))
    return RunView(PROBLEMS, CONFIGS, samples, Budget())


@pytest.mark.parametrize("name,args", POLICIES)
@pytest.mark.parametrize("seed", range(8))
def test_policy_contract(name: str, args: dict, seed: int) -> None:
    policy = _policy(name, args)
    assert isinstance(policy, Policy) and policy.name == name
    assert policy.planned(RunView(PROBLEMS, CONFIGS)) is None
    view = _view(seed)
    for limit in (1, 3, 50):
        props = policy.propose(view, limit)
        assert sum(p.count for p in props) <= limit and all(p.count >= 1 for p in props)
        known = {(p.id, c.id) for p in PROBLEMS for c in CONFIGS}
        assert {(p.problem, p.config) for p in props} <= known
        # Never a pair that already has its one evaluation (passes=1).
        assert all(view.count(p.problem, p.config) == 0 for p in props)
        # Stateless: a fresh policy and a rebuilt view decide the same.
        again = _policy(name, args).propose(_view(seed), limit)
        assert [(p.problem, p.config, p.count) for p in again] == [(p.problem, p.config, p.count) for p in props]


def test_policy_arguments_are_checked() -> None:
    with pytest.raises(InputError, match="delta"):
        _policy("ucbe", {}, delta=2.0)
    with pytest.raises(InputError, match="passes"):
        _policy("ucbe", {}, passes=0)


def test_budgetlab_run_accepts_a_selection_policy(
    tmp_path: Path, counts: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Once registered in the policy registry (``POLICIES.update(SELECTION_POLICIES)``), the CLI
    runs them like any policy: ``budgetlab run --policy ucbe:...``."""
    from budgetlab.cli._main import main
    from budgetlab.policies import POLICIES as REGISTRY

    for key, factory in SELECTION_POLICIES.items():
        monkeypatch.setitem(REGISTRY, key, factory)
    store = str(tmp_path / "cli.db")
    rc = main(["run", "--backend", f"replay:{counts}", "--policy", "ucbe:a=1,delta=0.05", "--budget", "samples=100",
               "--store", store, "--name", "sel", "--json"])  # fmt: skip
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["spent"]["samples"] == 100
    assert main(["select", "--run", "sel", "--store", store, "--algorithm", "ucbe", "--budget", "1.0", "--json"]) == 0
    chosen = json.loads(capsys.readouterr().out)
    assert chosen["evaluations"] == 100 and chosen["methods"] == 4


def test_the_run_and_its_report_name_the_best_configuration(tmp_path: Path, counts: Path, capsys) -> None:
    """``budgetlab run --policy ucbe`` ends by naming the configuration it found best, whether
    the confidence test already tells it apart, and what to do when it does not."""
    from budgetlab.cli._main import main

    store = str(tmp_path / "cli.db")
    common = ["--backend", f"replay:{counts}", "--policy", "ucbe", "--store", store, "--no-progress", "--name", "sel"]
    assert main(["run", *common, "--budget", "samples=30"]) == 0
    cut = capsys.readouterr().out
    assert "best configuration (ucbe, 30 evaluations)" in " ".join(cut.split())
    assert "raise the budget and run the same name again" in " ".join(cut.split())

    assert main(["run", *common, "--budget", f"samples={4 * N_PROBLEMS}", "--json"]) == 0
    best = json.loads(capsys.readouterr().out)["best_arm"]
    assert best["algorithm"] == "ucbe" and best["best"] == "best" and best["identified"] is True
    assert best["evaluations"] < len(CONFIG_RATES) * N_PROBLEMS and not best["complete"]
    assert best["means"]["best"] > max(v for k, v in best["means"].items() if k != "best")

    assert main(["report", "sel", "--store", store]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "best configuration (ucbe" in text and ": best (mean evaluation" in text and "identified: better" in text


def test_a_policy_that_is_not_best_arm_names_no_best_configuration(tmp_path: Path, counts: Path, capsys) -> None:
    from budgetlab.cli._main import main

    args = ["run", "--backend", f"replay:{counts}", "-k", "1", "--store", str(tmp_path / "f.db"), "--no-progress"]
    assert main([*args, "--budget", "samples=20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["best_arm"] is None


def test_a_finished_best_arm_run_suggests_its_own_policy_with_one_more_pass_and_takes_it(
    tmp_path: Path, counts: Path, capsys
) -> None:
    from budgetlab.cli._main import main

    store = str(tmp_path / "h.db")
    common = ["--backend", f"replay:{counts}", "--store", store, "--no-progress", "--name", "h"]
    assert main(["run", *common, "--policy", "select-halving:delta=0.0001"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "run it again with --policy select-halving:delta=0.0001,passes=2" in text
    assert main(["run", *common, "--policy", "select-halving:delta=0.0001,passes=2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["best_arm"]["passes"] == 2 and report["best_arm"]["evaluations"] > len(CONFIG_RATES) * N_PROBLEMS / 2
