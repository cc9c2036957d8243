"""Why a budget stopped a run, in words a user can act on: held by another live worker, too
small for one sample (and by how much), lowered below what was spent; imported runs draw nothing."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import WrappedReplay, create_replay_run, write_replay  # noqa: E402

from budgetlab.core import Budget, Spend  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.policies import FixedK  # noqa: E402
from budgetlab.runner import execute  # noqa: E402
from budgetlab.stores import Proposal, SQLiteStore  # noqa: E402
from budgetlab.verifiers import make_verifier  # noqa: E402


def _setup(tmp_path):
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 4, ("a",), per_pair=2, seed=5)
    store = SQLiteStore(tmp_path / "store.db")
    create_replay_run(store, "r", path, seed=7)
    return path, store


def test_a_budget_held_by_another_live_worker_says_so(tmp_path) -> None:
    path, store = _setup(tmp_path)
    cfg = store.configs("r")[0].id
    pending = store.add_pending("r", [Proposal(p.id, cfg, 2) for p in store.problems("r")])
    other = f"{socket.gethostname()}:1:feedbeef"  # pid 1 is alive
    store.heartbeat("r", other)
    store.claim("r", other, [s.key for s in pending[:6]], [Spend()] * 6, Budget(samples=6))
    out = asyncio.run(execute(store, "r", WrappedReplay(path), FixedK(k=2), make_verifier("auto"), Budget(samples=6)))
    assert out.state is RunState.STOPPED
    assert "6 samples are reserved by worker " + ":".join(other.split(":")[:2]) + " still running" in out.stopped_because
    assert "wait for it or rerun later" in out.stopped_because and "too little" not in out.stopped_because


def test_a_budget_too_small_for_one_sample_says_what_one_reserves(tmp_path) -> None:
    path, store = _setup(tmp_path)
    out = asyncio.run(execute(store, "r", WrappedReplay(path), FixedK(k=2), make_verifier("auto"), Budget(tokens=1)))
    assert "which reserves up to" in out.stopped_because and "--budget tokens=" in out.stopped_because


def test_lowering_the_budget_below_what_a_finished_run_spent_is_refused(tmp_path) -> None:
    from budgetlab.errors import InputError
    from budgetlab.runner import run
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 4, ("a",), per_pair=2, seed=5)
    store = SQLiteStore(tmp_path / "store.db")
    run("r", f"replay:{path}", store=store, policy="fixed", policy_args={"k": 2})
    assert store.get_run("r").state is RunState.DONE and store.get_run("r").spent.samples == 8
    with pytest.raises(InputError, match=r"already spent samples=8, more than the --budget samples=3 asked"):
        run("r", store=store, budget=Budget(samples=3))
    assert store.get_run("r").state is RunState.DONE and store.get_run("r").spec.budget == Budget()
    run("r", store=store, budget=Budget(samples=9))  # a limit above what was spent is taken


def test_an_imported_run_is_refused_by_the_python_api_too(tmp_path) -> None:
    from budgetlab.errors import InputError
    from budgetlab.runner import import_recorded, run
    path, store = _setup(tmp_path)
    import_recorded(store, path, "imp")
    assert store.get_run("imp").stopped_because.startswith("imported 8 samples")
    with pytest.raises(InputError, match="was imported"):
        run("imp", store=store)
