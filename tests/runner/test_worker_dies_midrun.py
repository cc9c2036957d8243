"""A worker that dies while another is running: the survivor takes back the dead one's claims
before it ends, instead of calling the run complete (or blocked by the budget they hold) with
those samples stuck running. Found by killing one of two ``budgetlab run`` workers with
``kill -9``: the other then reported "complete" with 16 samples running and reserved forever."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import WrappedReplay, check_store_consistent, create_replay_run, write_replay  # noqa: E402

from budgetlab.core import Budget, SampleState, Spend  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.policies import FixedK  # noqa: E402
from budgetlab.runner import execute  # noqa: E402
from budgetlab.stores import SQLiteStore  # noqa: E402
from budgetlab.verifiers import make_verifier  # noqa: E402

K = 3
N_PROBLEMS = 10
PLANNED = N_PROBLEMS * 2 * K


def _dead_worker() -> str:
    """The id of a worker on this host whose process is gone (started and reaped)."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return f"{socket.gethostname()}:{gone.pid}:deadbeef"


class _OtherWorkerDiesMidRun(WrappedReplay):
    """At this worker's first draw, a second worker (its own store connection) claims every other
    pending sample and dies without settling them; the rest stay pending for this worker."""

    def __init__(self, path: Path, db: Path, reservation: Spend) -> None:
        super().__init__(path)
        self.db, self.reservation, self.stolen = db, reservation, 0

    async def draw(self, request):  # type: ignore[no-untyped-def]
        if self.draws == 0:
            other, dead = SQLiteStore(self.db), _dead_worker()
            other.heartbeat("r", dead)
            pending = other.samples("r", [SampleState.PENDING])[::2]
            got = other.claim("r", dead, [s.key for s in pending], [self.reservation] * len(pending), Budget())
            self.stolen = len(got.claimed)
            other.close()
        return await super().draw(request)


@pytest.mark.parametrize(
    "budget, reservation",
    [
        (Budget(), Spend(1)),  # the policy counts the stuck samples as drawn
        (Budget(tokens=10**6), Spend(1, tokens=10**5)),  # here their reservations also block the rest
    ],
    ids=["unlimited", "blocked-by-reservations"],
)
def test_claims_of_a_worker_that_died_mid_run_are_drawn_before_the_run_ends(tmp_path: Path, budget, reservation) -> None:
    path = tmp_path / "recorded.jsonl"
    write_replay(path, N_PROBLEMS, per_pair=K, seed=3)
    db = tmp_path / "store.db"
    store = SQLiteStore(db)
    create_replay_run(store, "r", path, seed=7)
    backend = _OtherWorkerDiesMidRun(path, db, reservation)
    try:
        outcome = asyncio.run(
            execute(store, "r", backend, FixedK(k=K), make_verifier("auto"), budget, concurrency=4, max_batch=2)
        )
        assert backend.stolen > 0
        assert outcome.state is RunState.DONE, outcome.stopped_because
        assert outcome.drawn == PLANNED
        assert store.samples("r", [SampleState.RUNNING]) == []
        assert len(store.samples("r", [SampleState.DONE])) == PLANNED
        assert store.get_run("r").reserved == Spend()
        check_store_consistent(db, "r")
    finally:
        store.close()
