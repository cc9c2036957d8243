"""Library use as a notebook or script would: found by a user acceptance pass over the Python API."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import budgetlab
from budgetlab.forecast import forecast


def _replay_file(tmp_path: Path) -> Path:
    path = tmp_path / "samples.jsonl"
    lines = []
    for p in range(6):
        for c in ("a", "b"):
            for i in range(4):
                ok = (p + i) % 3 == 0
                lines.append({"problem": f"p{p}", "config": c, "answer": "1" if ok else "2", "correct": ok,
                              "prompt_tokens": 5, "completion_tokens": 5})
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_run_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    """A Jupyter cell runs inside an event loop: budgetlab.run used to fail there with asyncio's
    'asyncio.run() cannot be called from a running event loop', leaving the run recorded but
    never drawn (and a 'coroutine was never awaited' warning)."""
    samples = _replay_file(tmp_path)
    store = tmp_path / "runs.db"

    async def cell() -> budgetlab.RunOutcome:
        return budgetlab.run("nb", f"replay:{samples}", policy_args={"k": 2}, store=store)

    outcome = asyncio.run(cell())
    assert outcome.state is budgetlab.RunState.DONE
    assert outcome.drawn == 6 * 2 * 2


def test_forecast_works_inside_a_running_event_loop(tmp_path: Path) -> None:
    samples = _replay_file(tmp_path)

    async def cell() -> tuple:
        return forecast("fc", f"replay:{samples}", store=tmp_path / "runs.db", pilot=0.5, policy_args={"k": 2})

    result, pilot = asyncio.run(cell())
    assert pilot.drawn > 0 and result.rows


def test_run_refuses_arguments_of_the_wrong_kind_before_recording_anything(tmp_path: Path) -> None:
    """run(seed="x") used to record the run with seed "x", after which every read of the store's
    runs (list_runs, the RunNotFound hint of build_report, budgetlab runs) failed with
    'invalid literal for int()'; other wrong kinds failed with AttributeError/TypeError."""
    import pytest

    samples = _replay_file(tmp_path)
    store = tmp_path / "runs.db"
    bad = [
        {"seed": "x"},
        {"concurrency": "4"},
        {"budget": {"samples": 10}},
        {"policy_args": "k=4"},
        {"backend_options": [1]},
        {"configs": ["a"]},
        {"store": None},
        {"on_progress": 5},
    ]
    for kwargs in bad:
        kwargs = {"store": store, **kwargs}
        with pytest.raises(budgetlab.InputError):
            budgetlab.run("r", f"replay:{samples}", **kwargs)
    for name in (5, ""):
        with pytest.raises(budgetlab.InputError):
            budgetlab.run(name, f"replay:{samples}", store=store)  # type: ignore[arg-type]
    with budgetlab.open_store(str(store)) as opened:
        assert opened.list_runs() == []
    import numpy as np

    outcome = budgetlab.run("r", f"replay:{samples}", store=store, seed=np.int64(3), policy_args={"k": 1})
    assert outcome.drawn == 12


def test_pass_at_k_takes_whole_floats_and_refuses_others_with_its_own_error() -> None:
    import pytest

    from budgetlab.analysis import coverage_curve, extrapolate_coverage

    assert budgetlab.pass_at_k(10.0, 3.0, 2.0) == budgetlab.pass_at_k(10, 3, 2)  # as pass_at_k_many takes them
    for args in (("10", 3, 2), (10, 3, 2.5)):
        with pytest.raises(ValueError):
            budgetlab.pass_at_k(*args)
    with pytest.raises(ValueError, match="ks"):
        coverage_curve([10, 10], [3, 0], 5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="ks"):
        extrapolate_coverage([10, 10], [3, 0], 100)  # type: ignore[arg-type]


def test_budget_curves_of_a_missing_run_is_run_not_found(tmp_path: Path) -> None:
    import pytest

    from budgetlab.analysis import budget_curves

    samples = _replay_file(tmp_path)
    store = tmp_path / "runs.db"
    budgetlab.run("there", f"replay:{samples}", policy_args={"k": 2}, store=store)
    with pytest.raises(budgetlab.RunNotFound):
        budget_curves(store, "not-there")


def test_plot_coverage_takes_a_reports_plain_pass_at_k(tmp_path: Path) -> None:
    """plot_coverage(report['configs'][c]['pass_at_k'] ...) failed with AttributeError: 'float'
    object has no attribute 'value'; a wrong kind of point is now one InvalidArgument."""
    import pytest

    from budgetlab.analysis import plot_coverage

    samples = _replay_file(tmp_path)
    store = tmp_path / "runs.db"
    budgetlab.run("r", f"replay:{samples}", policy_args={"k": 4}, store=store)
    report = budgetlab.build_report(store, "r")
    curves = {name: {int(k): v for k, v in c["pass_at_k"].items()} for name, c in report["configs"].items()}
    assert plot_coverage(curves, tmp_path / "coverage.png").is_file()
    with pytest.raises(ValueError, match="curve point"):
        plot_coverage({"a": {1: "x"}}, tmp_path / "bad.png")


def test_forecast_refuses_bad_arguments_before_recording_or_paying(tmp_path: Path) -> None:
    """forecast(pilot=2) recorded the run before refusing; scenarios=["k=16"] drew (paid for)
    the pilot, then failed with AttributeError; an unknown option was a TypeError from prepare."""
    import pytest

    samples = _replay_file(tmp_path)
    store = tmp_path / "runs.db"
    for kwargs in ({"pilot": 2}, {"pilot": "0.1"}, {"scenarios": [16]}, {"nope": 1}):
        with pytest.raises(budgetlab.InputError):
            forecast("fc", f"replay:{samples}", store=store, **kwargs)
    with budgetlab.open_store(str(store)) as opened:
        assert opened.list_runs() == []
    result, _ = forecast("fc", f"replay:{samples}", store=store, pilot=0.5, policy_args={"k": 2}, scenarios=["k=16"])
    assert any(row.k == 16 for row in result.rows)


def test_ctrl_c_in_a_running_loop_interrupts_the_run_cleanly(tmp_path: Path) -> None:
    """Ctrl-C while run() waits for its worker thread (as in a Jupyter cell) cancels the run,
    which is then marked interrupted and resumable; waiting with Thread.join instead let the
    caller close the store under the still running thread (a segfault in SQLite)."""
    import os
    import signal
    import threading

    import pytest

    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"problem": f"p{p}", "config": "a", "answer": "1", "correct": True}) + "\n"
                            for p in range(400) for _ in range(20)))  # fmt: skip
    store = tmp_path / "runs.db"
    main = threading.main_thread().ident
    sent: list[int] = []

    def progress(p: budgetlab.Progress) -> None:
        if p.finished and not sent:
            sent.append(p.finished)
            signal.pthread_kill(main, signal.SIGINT)  # type: ignore[arg-type]

    async def cell() -> None:
        budgetlab.run("big", f"replay:{path}", policy_args={"k": 20}, store=store, on_progress=progress, concurrency=4)

    loop = asyncio.new_event_loop()  # as ipykernel: no asyncio.Runner SIGINT handler
    try:
        with pytest.raises(KeyboardInterrupt):
            loop.run_until_complete(cell())
    finally:
        loop.close()
    with budgetlab.open_store(str(store)) as opened:
        info = opened.get_run("big")
    assert info.state is budgetlab.RunState.INTERRUPTED, info
    assert budgetlab.run("big", store=store).state is budgetlab.RunState.DONE
    assert os.getpid()  # the process is alive
