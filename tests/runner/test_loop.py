"""The run loop (``budgetlab.runner.execute``) and its entry point ``run``: failures of one request,
errors that stop the run, interruption and resume, seeds of re-issued samples, replay
exhaustion, and a policy with nothing to propose."""

from __future__ import annotations


import asyncio
import collections
import dataclasses
import os
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import WrappedReplay, check_store_consistent, config_ids, create_replay_run, write_replay  # noqa: E402

from budgetlab.backends import DrawRequest  # noqa: E402
from budgetlab.core import Budget, Completion, SampleState, SamplingConfig, Spend, derive_seed  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.core.view import RunView  # noqa: E402
from budgetlab.errors import BudgetlabError, InputError  # noqa: E402
from budgetlab.policies import FixedK, Proposal  # noqa: E402
from budgetlab.runner import Progress, execute, run  # noqa: E402
from budgetlab.stores import SQLiteStore  # noqa: E402
from budgetlab.verifiers import make_verifier  # noqa: E402

CONFIGS = ("cfg-a", "cfg-b")
N_PROBLEMS = 20
K = 3
PLANNED = N_PROBLEMS * len(CONFIGS) * K


@pytest.fixture
def setup(tmp_path: Path):
    path = tmp_path / "recorded.jsonl"
    records = write_replay(path, N_PROBLEMS, CONFIGS, per_pair=K, seed=5)
    store = SQLiteStore(tmp_path / "store.db")
    create_replay_run(store, "r", path, seed=7)
    yield path, records, store
    store.close()


def _execute(store, backend, policy=None, budget=None, **kw):
    return asyncio.run(
        execute(store, "r", backend, policy or FixedK(k=K), make_verifier("auto"), budget or Budget(), **kw)
    )


def _assert_clean(store: SQLiteStore, db: Path) -> None:
    """Nothing left claimed: no running sample, no reservation, no registered worker."""
    assert store.samples("r", [SampleState.RUNNING]) == []
    assert store.get_run("r").reserved == Spend()
    assert store.workers("r") == {}
    check_store_consistent(db, "r")


def _db(store: SQLiteStore) -> Path:
    return Path(store.path)


def _assert_complete(store: SQLiteStore, records: dict, k: int = K) -> None:
    samples = store.samples("r")
    name_of = {v: n for n, v in config_ids(CONFIGS).items()}
    assert len(samples) == len({s.key for s in samples}) == N_PROBLEMS * len(CONFIGS) * k
    per_pair = collections.defaultdict(list)
    for s in samples:
        per_pair[(s.problem, s.config)].append(s.index)
        assert s.state is SampleState.DONE
        rec = records[(s.problem, name_of[s.config])][s.index]
        assert (s.answer, s.correct) == (rec["answer"], rec["correct"])
        assert s.seed == derive_seed(7, s.problem, s.config, s.index)
    assert all(sorted(v) == list(range(k)) for v in per_pair.values())


# ---- failures --------------------------------------------------------------------------------
def test_generic_backend_error_fails_only_its_samples_and_the_next_invocation_draws_them_again(setup) -> None:
    path, records, store = setup
    bad = {"p00002", "p00011"}

    def fail(req: DrawRequest):
        return RuntimeError(f"connection reset on {req.problem.id}") if req.problem.id in bad else None

    reports: list[Progress] = []
    outcome = _execute(store, WrappedReplay(path, fail=fail), concurrency=8, max_batch=2, on_progress=reports.append)

    samples = store.samples("r")
    assert len(samples) == PLANNED  # within one invocation a failed sample is not retried
    failed = [s for s in samples if s.state is SampleState.FAILED]
    assert {s.problem for s in failed} == bad
    assert len(failed) == len(bad) * len(CONFIGS) * K
    # The run is not called complete: it says how many failed and that running again retries them.
    assert outcome.state is RunState.STOPPED and outcome.failed == len(failed)
    assert outcome.stopped_because == (f"{len(failed)} of the {PLANNED} samples settled now failed (first: "
                                       f"RuntimeError: connection reset on {failed[0].problem}); run it again to draw them again")
    for s in failed:
        assert s.error == f"RuntimeError: connection reset on {s.problem}"
        assert s.answer is None and s.correct is None
    assert all(s.state is SampleState.DONE and s.error is None for s in samples if s.problem not in bad)
    info = store.get_run("r")
    assert info.state is RunState.STOPPED
    assert info.spent.samples == PLANNED - len(failed)  # a failed sample is not a sample drawn
    assert outcome.drawn == PLANNED
    assert reports[-1].finished == PLANNED - len(failed) and reports[-1].failed == len(failed)
    assert reports[-1].planned == PLANNED and reports[-1].in_flight == 0
    _assert_clean(store, _db(store))

    # The server is back: the next invocation draws exactly the failed samples, with their seeds.
    backend = WrappedReplay(path)
    again = _execute(store, backend, concurrency=8, max_batch=2)
    assert again.state is RunState.DONE and again.drawn == len(failed) and backend.draws > 0
    redrawn = {s.key: s for s in store.samples("r")}
    assert all(redrawn[s.key].state is SampleState.DONE and redrawn[s.key].seed == s.seed for s in failed)
    assert store.get_run("r").spent.samples == PLANNED
    _assert_clean(store, _db(store))


def test_completion_and_verdict_details_are_recorded_with_each_sample(setup) -> None:
    path, _, store = setup

    class Detailed(WrappedReplay):
        async def draw(self, request):
            out = await super().draw(request)
            if request.problem.id == "p00003":
                return [Completion(error="HTTP 500", details={"attempts": 3})] * len(out)
            return [dataclasses.replace(c, details={"thinking_tokens": 5, "index": s.index})
                    for c, s in zip(out, request.samples)]  # fmt: skip

    outcome = _execute(store, Detailed(path), concurrency=4, max_batch=2)
    assert outcome.state is RunState.STOPPED and outcome.failed == 6  # p00003's, to be drawn again
    for s in store.samples("r"):
        if s.problem == "p00003":
            assert s.state is SampleState.FAILED and s.details == {"attempts": 3}
        else:
            assert s.details == {"thinking_tokens": 5, "index": s.index}


def test_wrong_number_of_completions_fails_the_request(setup) -> None:
    path, _, store = setup

    class Short(WrappedReplay):
        async def draw(self, request):
            out = await super().draw(request)
            return out[:-1] if request.problem.id == "p00001" else out

    outcome = _execute(store, Short(path), concurrency=8, max_batch=3)
    assert outcome.state is RunState.STOPPED and outcome.failed == len(CONFIGS) * K
    failed = store.samples("r", [SampleState.FAILED])
    assert {s.problem for s in failed} == {"p00001"} and len(failed) == len(CONFIGS) * K
    for s in failed:  # a request holds up to max_batch samples of one pair
        m = re.fullmatch(r"backend returned (\d+) completions for (\d+) samples", s.error or "")
        assert m is not None and int(m[1]) == int(m[2]) - 1, s.error


def test_budgetlab_error_stops_the_run_as_failed_and_releases_claims(setup) -> None:
    path, records, store = setup

    def fail(req: DrawRequest):
        if req.problem.id == "p00010":
            return BudgetlabError("the API key was revoked; set a new key and run again")
        return None

    backend = WrappedReplay(path, delay=0.005, fail=fail)
    with pytest.raises(BudgetlabError, match="API key was revoked"):
        _execute(store, backend, concurrency=4, max_batch=1)

    info = store.get_run("r")
    assert info.state is RunState.FAILED
    assert info.stopped_because == "the API key was revoked; set a new key and run again"
    _assert_clean(store, _db(store))
    done = store.samples("r", [SampleState.DONE])
    assert 0 < len(done) < PLANNED  # what was drawn before the error is kept
    assert store.samples("r", [SampleState.FAILED]) == []  # the fatal error failed no sample
    assert info.spent.samples == len(done)

    # Resuming with a working backend completes the run, drawing each sample exactly once.
    outcome = _execute(store, WrappedReplay(path), concurrency=4)
    assert outcome.state is RunState.DONE and outcome.drawn == PLANNED - len(done)
    _assert_complete(store, records)
    _assert_clean(store, _db(store))


def test_unexpected_exception_in_the_loop_marks_the_run_failed(setup) -> None:
    path, _, store = setup

    class Broken(FixedK):
        def propose(self, view: RunView, limit: int) -> list[Proposal]:
            if view.count("p00000", view.configs[0].id):
                raise ZeroDivisionError("policy bug")
            return super().propose(view, min(limit, 4))

    with pytest.raises(ZeroDivisionError):
        _execute(store, WrappedReplay(path), policy=Broken(k=K), concurrency=2)
    info = store.get_run("r")
    assert info.state is RunState.FAILED and info.stopped_because == "ZeroDivisionError: policy bug"
    _assert_clean(store, _db(store))


# ---- interruption and resume ------------------------------------------------------------------
def test_cancel_marks_interrupted_and_resume_redraws_with_the_same_seeds(setup) -> None:
    path, records, store = setup
    hung = WrappedReplay(path, hang=lambda req: req.problem.id in ("p00004", "p00005"))

    async def main() -> None:
        task = asyncio.ensure_future(
            execute(store, "r", hung, FixedK(k=K), make_verifier("auto"), Budget(), concurrency=6, max_batch=1)
        )
        deadline = time.monotonic() + 10
        # Wait until the hung requests hold every slot (the others have all settled).
        while not (hung.in_flight == 6 and len(store.samples("r", [SampleState.DONE])) >= 4 * len(CONFIGS) * K):
            assert time.monotonic() < deadline and not task.done()
            await asyncio.sleep(0.01)
        running = store.samples("r", [SampleState.RUNNING])
        assert len(running) == 6 and store.get_run("r").reserved.samples == 6
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    info = store.get_run("r")
    assert info.state is RunState.INTERRUPTED
    assert info.stopped_because == "interrupted: run it again to resume"
    _assert_clean(store, _db(store))
    interrupted = {k: v for k, v in hung.seeds_seen.items() if k[0] in ("p00004", "p00005")}
    assert len(interrupted) == 6

    again = WrappedReplay(path)
    outcome = _execute(store, again, concurrency=6)
    assert outcome.state is RunState.DONE
    for key, seeds in interrupted.items():
        # The re-issued request carries the seed the interrupted one had.
        assert again.seeds_seen[key] == seeds == [derive_seed(7, *key)]
    assert all(len(v) == 1 for v in again.seeds_seen.values())  # nothing drawn twice by one run
    _assert_complete(store, records)
    _assert_clean(store, _db(store))


def test_keyboard_interrupt_marks_interrupted_and_next_run_resumes(setup) -> None:
    path, records, store = setup
    calls = []

    def on_progress(p: Progress) -> None:
        calls.append(p)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _execute(store, WrappedReplay(path, delay=0.002, jitter=1.0), concurrency=4, max_batch=1, on_progress=on_progress)
    info = store.get_run("r")
    assert info.state is RunState.INTERRUPTED
    _assert_clean(store, _db(store))
    drawn_before = len(store.samples("r", [SampleState.DONE]))
    assert 0 < drawn_before < PLANNED

    outcome = _execute(store, WrappedReplay(path), concurrency=4)
    assert outcome.state is RunState.DONE and outcome.drawn == PLANNED - drawn_before
    _assert_complete(store, records)


def test_samples_of_a_dead_worker_are_redrawn_with_their_seeds(setup) -> None:
    """A worker killed while holding claims (its pid is gone) and a remote worker whose
    heartbeat went stale: their samples go back to pending and are drawn with the same seeds."""
    path, records, store = setup
    configs = store.configs("r")
    cfg = configs[0].id
    created = store.add_pending("r", [Proposal("p00000", cfg, K), Proposal("p00001", cfg, K), Proposal("p00002", cfg, 2)])
    seeds_before = {(s.problem, s.config, s.index): s.seed for s in created}

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = f"{socket.gethostname()}:{gone.pid}:deadbeef"
    remote = "some-other-host:4242:cafe0001"
    for worker, keys in ((dead, created[:4]), (remote, created[4:7])):
        store.heartbeat("r", worker)
        result = store.claim("r", worker, [s.key for s in keys], [Spend(1, 1000, 1.0)] * len(keys), Budget())
        assert len(result.claimed) == len(keys)
    assert store.get_run("r").reserved.samples == 7
    time.sleep(0.05)

    backend = WrappedReplay(path)
    outcome = _execute(store, backend, concurrency=8, stale_after=0.02)
    assert outcome.state is RunState.DONE and outcome.drawn == PLANNED
    for key, seed in seeds_before.items():
        assert backend.seeds_seen[key] == [seed] == [derive_seed(7, *key)]
    _assert_complete(store, records)
    _assert_clean(store, _db(store))


def test_a_live_workers_claims_are_not_taken(setup) -> None:
    """A worker on another host with a fresh heartbeat keeps its claims; the run ends without
    touching them (they are neither drawn twice nor released)."""
    path, _, store = setup
    cfg = store.configs("r")[0].id
    created = store.add_pending("r", [Proposal("p00000", cfg, K)])
    store.heartbeat("r", "other-host:1:alive")
    store.claim("r", "other-host:1:alive", [s.key for s in created], [Spend(1)] * K, Budget())
    backend = WrappedReplay(path)
    outcome = _execute(store, backend, concurrency=8)
    assert outcome.drawn == PLANNED - K
    assert not any(key[0] == "p00000" and key[1] == cfg for key in backend.seeds_seen)
    assert len(store.samples("r", [SampleState.RUNNING])) == K
    assert "other-host:1:alive" in store.workers("r")


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "stop,code,sigint_ignored",
    [(signal.SIGINT, 130, False), (signal.SIGTERM, 143, False), (signal.SIGTERM, 143, True)],
    ids=["ctrl-c", "sigterm", "sigterm-background-job"],
)
def test_cli_sigint_interrupts_cleanly_and_resumes(tmp_path: Path, stop: signal.Signals, code: int, sigint_ignored: bool) -> None:
    """Ctrl-C (or a scheduler's SIGTERM) on a real ``budgetlab run`` (its replay requests slowed
    to 10 ms each, so the run is surely mid-way): exit code 130 (143), run interrupted with
    nothing left claimed; running it again completes it."""
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 1000, ("cfg-a",), per_pair=8, seed=9)
    db = tmp_path / "store.db"
    args = ["run", "--backend", f"replay:{path}", "--name", "r", "-k", "8", "--store", str(db), "--no-progress"]
    slow_cli = str(Path(__file__).parent / "_slow_cli.py")
    env = {**os.environ, "BUDGETLAB_TEST_DRAW_DELAY": "0.01", "BUDGETLAB_TEST_SIGINT_IGNORED": "1" if sigint_ignored else "0"}
    proc = subprocess.Popen([sys.executable, slow_cli, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        if db.exists() and db.stat().st_size:
            try:
                con = sqlite3.connect(str(db))
                n = con.execute("SELECT COUNT(*) FROM samples WHERE state = 'done'").fetchone()[0]
                con.close()
                if n >= 200:
                    break
            except sqlite3.OperationalError:
                pass
        time.sleep(0.005)
    proc.send_signal(stop)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, (out, err)
    assert "interrupted; nothing drawn is lost" in out
    with SQLiteStore(db) as store:
        info = store.get_run("r")
        assert info.state is RunState.INTERRUPTED
        assert info.stopped_because == "interrupted: run it again to resume"
        assert store.samples("r", [SampleState.RUNNING]) == [] and info.reserved == Spend()
        assert store.workers("r") == {}
        assert 200 <= info.spent.samples < 8000
    check_store_consistent(db, "r")

    done = subprocess.run([sys.executable, "-m", "budgetlab", *args], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    with SQLiteStore(db) as store:
        info = store.get_run("r")
        assert info.state is RunState.DONE and info.spent.samples == 8000
        assert len(store.samples("r", [SampleState.DONE])) == 8000
    check_store_consistent(db, "r")


# ---- replay exhaustion, empty policies, resume of a finished run -------------------------------
def test_replay_exhaustion_gives_failed_samples_with_a_clear_error(setup) -> None:
    path, records, store = setup
    outcome = _execute(store, WrappedReplay(path), policy=FixedK(k=K + 2), concurrency=16)
    assert outcome.state is RunState.STOPPED and "(first: replay exhausted: " in outcome.stopped_because
    samples = store.samples("r")
    assert len(samples) == N_PROBLEMS * len(CONFIGS) * (K + 2)
    name_of = {v: n for n, v in config_ids(CONFIGS).items()}
    for s in samples:
        if s.index < K:
            assert s.state is SampleState.DONE and s.answer == records[(s.problem, name_of[s.config])][s.index]["answer"]
        else:
            assert s.state is SampleState.FAILED
            assert s.error == (
                f"replay exhausted: {path} holds only {K} samples of problem {s.problem!r} under {name_of[s.config]!r}"
            )
    assert store.get_run("r").spent.samples == N_PROBLEMS * len(CONFIGS) * K
    _assert_clean(store, _db(store))


def test_policy_proposing_nothing_ends_the_run_done(setup) -> None:
    path, _, store = setup

    class Nothing:
        name = "nothing"

        def propose(self, view: RunView, limit: int) -> list[Proposal]:
            return []

        def planned(self, view: RunView) -> int | None:
            return 0

    backend = WrappedReplay(path)
    outcome = _execute(store, backend, policy=Nothing())
    assert outcome.state is RunState.DONE and outcome.drawn == 0
    assert outcome.stopped_because == "complete: policy nothing has nothing more to draw"
    assert outcome.spent == Spend()
    assert store.samples("r") == [] and backend.draws == 0
    info = store.get_run("r")
    assert info.state is RunState.DONE and info.stopped_because == outcome.stopped_because
    _assert_clean(store, _db(store))


def test_resuming_a_done_run_draws_nothing(setup) -> None:
    path, records, store = setup
    first = _execute(store, WrappedReplay(path))
    assert first.state is RunState.DONE and first.drawn == PLANNED
    backend = WrappedReplay(path)
    second = _execute(store, backend)
    assert second.state is RunState.DONE and second.drawn == 0 and backend.draws == 0
    assert second.spent == first.spent
    _assert_complete(store, records)


def test_exhausted_budget_stops_before_drawing(setup) -> None:
    path, _, store = setup
    first = _execute(store, WrappedReplay(path), budget=Budget(samples=10), concurrency=4)
    assert first.state is RunState.STOPPED and first.spent.samples == 10
    assert first.stopped_because == "budget: samples limit 10 reached (spent 10)"
    backend = WrappedReplay(path)
    again = _execute(store, backend, budget=Budget(samples=10))
    assert again.state is RunState.STOPPED and again.drawn == 0 and backend.draws == 0
    _assert_clean(store, _db(store))


# ---- the run() entry point -------------------------------------------------------------------
def test_run_api_creates_resumes_and_checks_options(tmp_path: Path) -> None:
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 5, ("cfg-a",), per_pair=4)
    db = str(tmp_path / "store.db")
    with pytest.raises(InputError, match="does not exist yet, so it needs a backend"):
        run("r", store=db)
    out = run("r", f"replay:{path}", store=db, policy="fixed", policy_args={"k": 2})
    assert out.state is RunState.DONE and out.drawn == 10
    with pytest.raises(InputError, match="fixed does not take 'seed'"):
        run("r", f"replay:{path}", store=db, policy="fixed", policy_args={"k": 2, "seed": 1})
    run("stops", f"replay:{path}", store=db, policy="esc", policy_args={"window": 2, "max_samples": 4})
    with pytest.raises(InputError, match="exists with policy_args"):  # only fixed's k may change on resume
        run("stops", f"replay:{path}", store=db, policy="esc", policy_args={"window": 3, "max_samples": 4})
    with pytest.raises(InputError, match="concurrency must be at least 1"):
        run("r", store=db, concurrency=0)
    again = run("r", store=db)
    assert again.state is RunState.DONE and again.drawn == 0
    with pytest.raises(InputError, match="not in replay file"):
        run("other", f"replay:{path}", store=db, configs=[SamplingConfig(model="nope")])
    # A verifier that needs references, on problems without any, would judge nothing it draws.
    with pytest.raises(InputError, match=r"verifier exact compares each answer with its problem's reference, and none of the 5"):
        run("noref", f"replay:{path}", store=db, verifier="exact")
    with SQLiteStore(db) as store:
        assert [r.name for r in store.list_runs()] == ["r", "stops"]  # the bad run was never created
    # The same configurations asked for again resume the run; other ones are refused.
    assert run("r", store=db, configs=[SamplingConfig(model="cfg-a")]).drawn == 0
    with pytest.raises(InputError, match=r"exists with other configurations than those asked for \(new: nope; not asked for: cfg-a\)"):
        run("r", store=db, configs=[SamplingConfig(model="nope")])


_ZERO_COUNT_SCRIPT = """
import asyncio, sys
from budgetlab import Budget, ReplayBackend, SQLiteStore, make_verifier
from budgetlab.core.run import RunSpec
from budgetlab.runner import execute
from budgetlab.stores import Proposal

class ZeroCount:
    name = "zero-count"
    def propose(self, view, limit):
        return [Proposal(view.problems[0].id, view.configs[0].id, 0)]
    def planned(self, view):
        return None

backend = ReplayBackend(sys.argv[1])
store = SQLiteStore(":memory:")
store.create_run(RunSpec(name="r", backend="replay:" + sys.argv[1]), backend.problems(), backend.configs())
print(asyncio.run(execute(store, "r", backend, ZeroCount(), make_verifier("auto"), Budget())).state.value)
"""


def test_run_api_takes_a_policy_as_name_spec_or_instance_and_a_budget_as_text(tmp_path: Path) -> None:
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 5, ("cfg-a",), per_pair=4)
    db = str(tmp_path / "store.db")
    assert run("spec", f"replay:{path}", store=db, policy="fixed:k=2").drawn == 10
    assert run("spec", store=db, policy=FixedK(k=2)).drawn == 0  # the same policy, told another way
    with pytest.raises(InputError, match="has fixed:k=2; k may only grow"):
        run("spec", store=db, policy="fixed:k=1")
    assert run("object", f"replay:{path}", store=Path(db), policy=FixedK(k=3), budget="samples=7").drawn == 7  # a Path too
    with SQLiteStore(db) as store:
        info = store.find_run("object")
        assert (info.spec.policy, info.spec.policy_args, info.spec.budget.samples) == ("fixed", {"k": 3}, 7)

    class Mine(FixedK):
        pass

    with pytest.raises(InputError, match=r"cannot be recorded with the run .* policy='fixed:k=8'"):
        run("unregistered", f"replay:{path}", store=db, policy=Mine(k=2))


def test_proposals_that_create_nothing_end_the_run(tmp_path: Path) -> None:
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 2, ("cfg-a",), per_pair=2)
    script = tmp_path / "zero_count.py"
    script.write_text(_ZERO_COUNT_SCRIPT, encoding="utf-8")
    try:
        out = subprocess.run([sys.executable, str(script), str(path)], capture_output=True, text=True, timeout=4)
    except subprocess.TimeoutExpired:
        pytest.fail("execute() did not return within 4 s: it spins on proposals that create no sample")
    assert out.returncode == 0 and out.stdout.strip() == "done", out.stderr
