"""A slow plain ``verify`` declared safe to call concurrently (``verify_threads`` over 1, e.g.
``callable:...,threads=4``) judges the samples of one request at once: with ``-k 4
--concurrency 4`` a single request is in flight, and judging its samples one after another left
all but one of its threads idle. Undeclared, calls stay one at a time; a verify that breaks keeps
every paid sample, with the verdicts it gave."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import WrappedReplay, replay_run_store  # noqa: E402

from budgetlab.core import Budget, SampleState  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.errors import BudgetlabError  # noqa: E402
from budgetlab.policies import FixedK  # noqa: E402
from budgetlab.runner import execute  # noqa: E402
from budgetlab.verifiers import make_verifier  # noqa: E402

K = 4


class CountingVerifier:
    """Sleeps ``seconds`` per call (blocking work), counting the most calls at once."""

    name = "slow"
    max_seconds = 1.0

    def __init__(self, seconds: float, threads: int | None, fail_on: str | None = None) -> None:
        self.seconds, self.fail_on = seconds, fail_on
        if threads is not None:
            self.verify_threads = threads
        self.inner = make_verifier("auto")
        self.lock = threading.Lock()
        self.now = self.most = 0
        self.seen: list[str] = []

    def verify(self, problem, completion):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.seen.append(problem.id)
            # The request's first sample breaks, the others are judged.
            first = self.seen.count(problem.id) == 1
        try:
            time.sleep(self.seconds)
            if problem.id == self.fail_on and first:
                raise KeyError("score")
            return self.inner.verify(problem, completion)
        finally:
            with self.lock:
                self.now -= 1


@pytest.fixture
def store(tmp_path: Path):
    db, path = replay_run_store(tmp_path, 3, K)
    yield db, path
    db.close()


def _run(db, path, verifier):
    # One request of K samples in flight at a time: the only concurrency left is within it.
    return asyncio.run(execute(db, "r", WrappedReplay(path), FixedK(k=K), verifier, Budget(), concurrency=K, max_batch=K))


@pytest.mark.parametrize("threads,most", [(None, 1), (K, K)], ids=["undeclared-one-at-a-time", "declared-4-at-once"])
def test_a_requests_samples_are_judged_at_once_only_when_declared(store, threads, most) -> None:
    db, path = store
    verifier = CountingVerifier(0.05, threads)
    outcome = _run(db, path, verifier)
    assert outcome.state is RunState.DONE and outcome.drawn == 3 * K
    assert all(s.state is SampleState.DONE and s.correct is not None for s in db.samples("r"))
    assert verifier.most == most


def test_a_verify_that_breaks_while_judging_at_once_keeps_the_verdicts_it_gave(store) -> None:
    db, path = store
    broken = db.problems("r")[0].id
    verifier = CountingVerifier(0.02, K, fail_on=broken)
    with pytest.raises(BudgetlabError, match=rf"verifier 'slow' failed on problem '{broken}' \(KeyError: 'score'\)"):
        _run(db, path, verifier)
    assert db.get_run("r").state is RunState.FAILED
    kept = [s for s in db.samples("r") if s.problem == broken]
    assert len(kept) == K and all(s.state is SampleState.DONE and s.cost for s in kept)
    unjudged = [s for s in kept if "unjudged" in s.details]
    assert len(unjudged) == 1 and unjudged[0].correct is None
    assert all(s.correct is not None for s in kept if s not in unjudged)
