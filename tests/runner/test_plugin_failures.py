"""A plug-in of the user's that breaks its contract: the samples already paid for are kept, the
run stops with one line naming the plug-in and the fix, and nothing is drawn twice on resume."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import WrappedReplay, create_replay_run, write_replay  # noqa: E402

from budgetlab.core import Budget, Completion, SampleState  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.errors import BudgetlabError  # noqa: E402
from budgetlab.policies import FixedK  # noqa: E402
from budgetlab.runner import execute  # noqa: E402
from budgetlab.stores import SQLiteStore  # noqa: E402
from budgetlab.verifiers import make_verifier  # noqa: E402

N_PROBLEMS, K = 6, 2


class BrokenOn:
    """A verifier that judges by the recorded answer, but raises (or returns a bool) on one problem."""

    name = "brittle"
    max_seconds = 1.0

    def __init__(self, problem: str, returns_bool: bool = False) -> None:
        self.problem, self.returns_bool = problem, returns_bool
        self.inner = make_verifier("auto")

    def verify(self, problem, completion):
        if problem.id == self.problem:
            if self.returns_bool:
                return True
            raise KeyError("score")
        return self.inner.verify(problem, completion)


@pytest.fixture
def store(tmp_path: Path):
    path = tmp_path / "recorded.jsonl"
    write_replay(path, N_PROBLEMS, ("cfg-a",), per_pair=K, seed=5)
    db = SQLiteStore(tmp_path / "store.db")
    create_replay_run(db, "r", path, seed=7)
    yield db, path
    db.close()


def _execute(store, backend, verifier, concurrency=K):
    return asyncio.run(execute(store, "r", backend, FixedK(k=K), verifier, Budget(), concurrency=concurrency, max_batch=K))


@pytest.mark.parametrize("returns_bool", [False, True])
def test_a_verifier_that_breaks_keeps_the_paid_samples_unjudged_and_stops_the_run(store, returns_bool: bool) -> None:
    db, path = store
    backend = WrappedReplay(path)
    broken = db.problems("r")[2].id
    with pytest.raises(BudgetlabError, match=rf"verifier 'brittle' failed on problem '{broken}' \((KeyError|TypeError)"):
        _execute(db, backend, BrokenOn(broken, returns_bool))
    info = db.get_run("r")
    assert info.state is RunState.FAILED and "fix the verifier, then run the same command again" in info.stopped_because
    unjudged = [s for s in db.samples("r") if s.problem == broken]
    assert len(unjudged) == K and all(s.state is SampleState.DONE and s.correct is None and s.cost for s in unjudged)
    assert all("unjudged" in s.details for s in unjudged)
    draws_before = backend.draws

    _execute(db, backend, make_verifier("auto"))  # fixed: the rest is drawn, the paid ones are not drawn again
    assert db.get_run("r").state is RunState.DONE
    samples = db.samples("r")
    assert len(samples) == N_PROBLEMS * K and all(s.state is SampleState.DONE for s in samples)
    assert backend.draws - draws_before == N_PROBLEMS - 3  # one request of K samples per problem left


class SyncDraw(WrappedReplay):
    def draw(self, request):  # a plain def, against the contract's async def
        self.draws += 1
        return [Completion(text="42", prompt_tokens=3, completion_tokens=1) for _ in request.samples]


def test_a_backend_whose_draw_is_a_plain_function_still_works(store) -> None:
    db, path = store
    backend = SyncDraw(path)
    assert _execute(db, backend, make_verifier("auto")).state is RunState.DONE
    samples = db.samples("r")
    assert len(samples) == N_PROBLEMS * K and all(s.state is SampleState.DONE and s.text == "42" for s in samples)
    assert backend.draws == N_PROBLEMS


class WrongDraw(WrappedReplay):
    async def draw(self, request):
        return "the answer is 4"


class WrongEstimate(WrappedReplay):
    def estimate(self, request):
        return None


@pytest.mark.parametrize(
    ("backend_class", "message"),
    [
        (WrongDraw, r"backend 'wrapped-replay' returned str 'the answer is 4' from draw; it must return a list of budgetlab.Completion"),
        (WrongEstimate, r"backend 'wrapped-replay' estimated None for a request of 2 samples; estimate must return a list of budgetlab.Spend"),
    ],
)
def test_a_backend_that_returns_the_wrong_type_is_named_in_one_line(store, backend_class, message: str) -> None:
    db, path = store
    with pytest.raises(BudgetlabError, match=message):
        _execute(db, backend_class(path), make_verifier("auto"))
    assert db.get_run("r").state is RunState.FAILED
    assert db.samples("r", [SampleState.RUNNING]) == []


class PlannedRaises(FixedK):
    def planned(self, view):
        raise RuntimeError("boom")


def test_a_policy_whose_planned_raises_leaves_the_run_failed_not_running(store) -> None:
    db, path = store
    with pytest.raises(RuntimeError, match="boom"):
        asyncio.run(execute(db, "r", WrappedReplay(path), PlannedRaises(k=K), make_verifier("auto"), Budget()))
    info = db.get_run("r")
    assert info.state is RunState.FAILED and "boom" in info.stopped_because
    assert db.workers("r") == {}
