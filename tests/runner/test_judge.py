"""Judging a run again (``budgetlab.judge_again``): the samples a broken verifier left unjudged get
their verdicts without being drawn (or paid for) again; ``every`` judges all of them, with another
verifier if asked, which the run then keeps."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import WrappedReplay, create_replay_run, write_replay  # noqa: E402

from budgetlab import judge_again  # noqa: E402
from budgetlab.analysis import build_report  # noqa: E402
from budgetlab.core import Budget, SampleState, Spend  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.errors import BudgetlabError, InputError, RunNotFound  # noqa: E402
from budgetlab.policies import FixedK  # noqa: E402
from budgetlab.runner import execute  # noqa: E402
from budgetlab.runner._workers import new_worker_id  # noqa: E402
from budgetlab.stores import SQLiteStore  # noqa: E402
from budgetlab.verifiers import VERIFIERS, make_verifier  # noqa: E402

N_PROBLEMS, K = 6, 2
DONE = SampleState.DONE


class BrokenOn:
    """Judges by the recorded verdict (the run's own verifier, auto), but raises on some problems."""

    name = "brittle"
    max_seconds = 1.0

    def __init__(self, problems: str = "") -> None:
        self.problems = set(problems.split("+")) if problems else None  # None: every problem
        self.inner = make_verifier("auto")

    def verify(self, problem, completion):
        if self.problems is None or problem.id in self.problems:
            raise KeyError("score")
        return self.inner.verify(problem, completion)


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A run of 6 problems x 2 samples whose verdicts are recorded in the replay file."""
    monkeypatch.setitem(VERIFIERS, "brittle", BrokenOn)
    path = tmp_path / "recorded.jsonl"
    records = write_replay(path, N_PROBLEMS, ("cfg-a",), per_pair=K, seed=5)
    db = SQLiteStore(tmp_path / "store.db")
    create_replay_run(db, "r", path, seed=7, concurrency=1)  # judging goes one sample at a time
    yield db, path, records
    db.close()


def _execute(db, backend, verifier):
    return asyncio.run(execute(db, "r", backend, FixedK(k=K), verifier, Budget(), concurrency=K, max_batch=K))


def _break_requests(db, backend, times: int) -> None:
    """Draw ``times`` requests whose verifier breaks: each stops the run with its K samples kept unjudged."""
    for _ in range(times):
        with pytest.raises(BudgetlabError, match="budgetlab judge r` to judge the kept ones"):
            _execute(db, backend, BrokenOn())


def _recorded(records, sample):
    """The replay record a sample was drawn from (file order: index i is the i-th record)."""
    return records[(sample.problem, "cfg-a")][sample.index]


def test_judging_gives_the_kept_samples_their_verdicts_without_drawing_them_again(setup) -> None:
    db, path, records = setup
    backend = WrappedReplay(path)
    broken = db.problems("r")[2].id
    with pytest.raises(BudgetlabError, match="fix the verifier, then run the same command again"):
        _execute(db, backend, BrokenOn(broken))
    kept = [s for s in db.samples("r") if "unjudged" in s.details]
    assert len(kept) == K and {s.problem for s in kept} == {broken} and all(s.correct is None for s in kept)
    others = [s for s in db.samples("r", [DONE]) if "unjudged" not in s.details]
    before = db.get_run("r")
    draws = backend.draws
    assert build_report(db, "r")["configs"]["cfg-a"]["samples"] == len(others)

    outcome = judge_again(db, "r")  # the run's own verifier, auto: the recorded verdicts

    assert (outcome.judged, outcome.were_unjudged, outcome.left_unjudged, outcome.changed) == (K, K, 0, 0)
    after = {s.key: s for s in db.samples("r")}
    for s in kept:
        now, rec = after[s.key], _recorded(records, s)
        assert (now.answer, now.correct) == (rec["answer"], rec["correct"])  # what the backend recorded with it
        assert now.state is DONE and "unjudged" not in now.details and "recorded_verdict" not in now.details
        assert (now.text, now.prompt_tokens, now.completion_tokens, now.cost) == (s.text, s.prompt_tokens, s.completion_tokens, s.cost)
    assert outcome.correct == sum(bool(_recorded(records, s)["correct"]) for s in kept) and outcome.wrong == K - outcome.correct
    assert [after[s.key] for s in others] == others  # judged before: untouched
    assert len(db.samples("r", [SampleState.PENDING])) == (N_PROBLEMS - 3) * K
    info = db.get_run("r")
    assert backend.draws == draws and info.spent.samples == before.spent.samples  # nothing drawn, nothing paid
    assert (info.spent.tokens, info.spent.dollars) == (before.spent.tokens, before.spent.dollars)
    assert info.spent.verify_seconds >= before.spent.verify_seconds
    assert info.spent == sum((s.spend for s in db.samples("r")), Spend())
    assert build_report(db, "r")["configs"]["cfg-a"]["samples"] == len(others) + K  # the report counts them now
    assert judge_again(db, "r").judged == 0  # nothing left to judge

    _execute(db, backend, make_verifier("auto"))  # resumed: only the rest is drawn
    assert db.get_run("r").state is RunState.DONE
    assert backend.draws - draws == N_PROBLEMS - 3  # one request of K per problem not drawn yet
    assert all(s.state is DONE and s.correct is not None for s in db.samples("r"))
    assert len(db.samples("r")) == N_PROBLEMS * K


def test_every_sample_is_judged_again_with_another_verifier_which_the_run_then_keeps(setup, tmp_path: Path) -> None:
    db, path, records = setup
    backend = WrappedReplay(path)
    _execute(db, backend, make_verifier("auto"))
    before = {s.key: s for s in db.samples("r")}
    checks = tmp_path / "checks.py"
    checks.write_text("def says_7(problem, completion):\n    return completion.answer, completion.answer == '7'\n")
    spec = f"callable:path={checks}:says_7"

    outcome = judge_again(db, "r", verifier=spec, every=True)

    now = {s.key: s for s in db.samples("r")}
    assert outcome.judged == len(now) == N_PROBLEMS * K and outcome.were_unjudged == 0
    assert all(s.correct is (_recorded(records, s)["answer"] == "7") for s in now.values())
    assert outcome.changed == sum(now[k].correct != before[k].correct for k in now) > 0
    assert outcome.correct == sum(s.correct is True for s in now.values())
    assert db.get_run("r").spec.verifier == spec  # a resumed run judges its new samples alike
    assert db.get_run("r").spent.samples == N_PROBLEMS * K

    # Judging every sample again with the run's own verifier gives the same verdicts again.
    again = judge_again(db, "r", every=True)
    assert again.changed == 0 and [s.correct for s in db.samples("r")] == [s.correct for s in now.values()]


def test_judging_what_failed_to_draw_never_happens_and_spend_stays_exact(setup) -> None:
    db, path, _ = setup
    fails = WrappedReplay(path, fail=lambda req: RuntimeError("HTTP 500") if req.problem.id == "p00001" else None)
    _execute(db, fails, make_verifier("auto"))
    failed = db.samples("r", [SampleState.FAILED])
    assert len(failed) == K
    outcome = judge_again(db, "r", every=True)
    assert outcome.judged == (N_PROBLEMS - 1) * K
    assert db.samples("r", [SampleState.FAILED]) == failed


def test_a_verifier_that_breaks_while_judging_keeps_what_it_judged(setup) -> None:
    db, path, _ = setup
    backend = WrappedReplay(path)
    _break_requests(db, backend, 3)  # three problems' samples kept unjudged
    kept = [s for s in db.samples("r") if "unjudged" in s.details]
    assert len(kept) == 3 * K
    second = kept[K].problem

    with pytest.raises(BudgetlabError) as exc:
        judge_again(db, "r", verifier=f"brittle:problems={second}")
    message = str(exc.value)
    assert "\n" not in message
    assert (f"verifier 'brittle' failed on problem '{second}' (KeyError: 'score') while judging run 'r' again; the {K} "
            f"samples it judged are recorded, {2 * K} stay unjudged; fix the verifier, then run budgetlab judge r "
            f"--verifier brittle:problems={second} again") in message  # fmt: skip
    now = {s.key: s for s in db.samples("r")}
    assert all("unjudged" not in now[s.key].details and now[s.key].correct is not None for s in kept[:K])
    assert all("unjudged" in now[s.key].details and now[s.key].correct is None for s in kept[K:])
    assert db.get_run("r").spent == sum((s.spend for s in now.values()), Spend())

    outcome = judge_again(db, "r", verifier="auto")  # fixed
    assert (outcome.judged, outcome.left_unjudged) == (2 * K, 0)


def test_a_live_worker_drawing_the_run_is_waited_for(setup) -> None:
    db, _, _ = setup
    db.heartbeat("r", new_worker_id())  # this very process: alive
    before = db.get_run("r")
    with pytest.raises(InputError) as exc:
        judge_again(db, "r", verifier="exact")
    assert "\n" not in str(exc.value)
    assert f"run 'r' is being drawn now by worker {socket.gethostname()}:" in str(exc.value)
    assert "judge it once that ends (or stop it" in str(exc.value)
    assert db.get_run("r").spec == before.spec  # not even the verifier was recorded
    db.release("r", new_worker_id())


def test_a_dead_workers_heartbeat_does_not_block_judging(setup) -> None:
    db, path, _ = setup
    _break_requests(db, WrappedReplay(path), 1)
    db.heartbeat("r", f"{socket.gethostname()}:999999999:gone")  # no such process
    assert judge_again(db, "r").judged == K


@pytest.mark.parametrize(("verifier", "error", "match"), [
    ("nonsense", InputError, r"^unknown verifier 'nonsense'; use one of: "),
    ("math:extract=zzz", InputError, r"math verifier extract='zzz' names unknown rules"),
    ("exact", InputError, r"^verifier exact compares each answer with its problem's reference, and none of the 6"),
    (42, InputError, r"^verifier must be a name or spec"),
])  # fmt: skip
def test_a_verifier_that_cannot_judge_the_run_is_one_line_and_changes_nothing(setup, verifier, error, match) -> None:
    db, path, _ = setup
    if verifier == "math:extract=zzz":
        pytest.importorskip("math_verify")
    _break_requests(db, WrappedReplay(path), 1)
    before = (db.get_run("r"), db.samples("r"))
    with pytest.raises(error, match=match) as exc:
        judge_again(db, "r", verifier=verifier)
    assert "\n" not in str(exc.value)
    assert (db.get_run("r"), db.samples("r")) == before


def test_an_unknown_run_is_one_line_naming_the_runs_there(setup) -> None:
    db, _, _ = setup
    with pytest.raises(RunNotFound, match=r"no run named 'nope' in store .*; runs in it: r \(list them with: budgetlab runs\)"):
        judge_again(db, "nope")


def test_a_store_path_is_opened_and_closed(setup, tmp_path: Path) -> None:
    db, path, _ = setup
    _break_requests(db, WrappedReplay(path), 1)
    outcome = judge_again(tmp_path / "store.db", "r")
    assert outcome.judged == K and json.loads(json.dumps(outcome.to_dict()))["left_unjudged"] == 0
    assert dataclasses.asdict(outcome)["run"] == "r"


def test_once_the_kept_samples_are_judged_the_run_no_longer_asks_for_it(setup) -> None:
    """The run's stopped_because said "`budgetlab judge r` to judge the kept ones" after they were
    judged, and `budgetlab judge r` then judged nothing; it says they are judged now, and not before
    every one of them is."""
    db, path, _ = setup
    _break_requests(db, WrappedReplay(path), 1)
    with pytest.raises(BudgetlabError, match="stay unjudged"):
        judge_again(db, "r", verifier="brittle")  # broken still: the run asks for it still
    assert "`budgetlab judge r` to judge the kept ones" in db.get_run("r").stopped_because
    judge_again(db, "r", verifier="auto")
    info = db.get_run("r")
    assert info.state is RunState.FAILED and "budgetlab judge r`" not in info.stopped_because
    assert info.stopped_because.endswith("run the same command again to draw the rest; the kept ones are judged (budgetlab judge)")


def test_a_run_made_without_references_names_a_fix_judge_has(setup, tmp_path: Path) -> None:
    """The fix was "give --problems FILE", an option of run; a run's problems are fixed once made."""
    db, path, _ = setup
    _break_requests(db, WrappedReplay(path), 1)
    with pytest.raises(InputError) as exc:
        judge_again(db, "r", verifier="exact")
    assert "give --problems" not in str(exc.value) and "judge with a verifier that needs none, e.g. --verifier auto" in str(exc.value)
