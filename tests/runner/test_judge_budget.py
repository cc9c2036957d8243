"""Judging a run again under its budget, saying whose verdicts a run holds, and scores without
verdicts (``budgetlab.judge_again``): a judge that pays stops before a batch would pass a limit
and keeps what it judged; one that costs nothing is never stopped by what drawing spent; a
switch of verifier that stops halfway is named by the report; a verifier that gives only scores
is told how to give verdicts."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import WrappedReplay, create_replay_run, write_replay  # noqa: E402

from budgetlab import Verdict, judge_again  # noqa: E402
from budgetlab.analysis import build_report  # noqa: E402
from budgetlab.core import Budget, Spend  # noqa: E402
from budgetlab.errors import BudgetlabError, InputError  # noqa: E402
from budgetlab.policies import FixedK  # noqa: E402
from budgetlab.runner import execute  # noqa: E402
from budgetlab.verifiers import VERIFIERS, make_verifier  # noqa: E402

N_PROBLEMS, K = 6, 2
ALL = N_PROBLEMS * K
# Powers of two, so that sums of dollars are exact.
RESERVES, COSTS = 0.25, 0.125


class Priced:
    """A judge model stand-in: the recorded verdict, for ``costs`` dollars and 100 tokens each,
    declaring (``estimate``) up to ``reserves`` dollars and 200 tokens per judgement."""

    name = "priced"
    max_seconds = 1.0

    def __init__(self, reserves: float = RESERVES, costs: float = COSTS) -> None:
        self.reserves, self.costs = reserves, costs
        self.inner = make_verifier("auto")

    def estimate(self, problem, draw):
        return Spend(tokens=200, dollars=self.reserves)

    def verify(self, problem, completion):
        got = self.inner.verify(problem, completion)
        return Verdict(answer=got.answer, correct=got.correct, cost=self.costs, prompt_tokens=100)


class Broken:
    """The recorded verdict, but raises on ``problems`` (joined by +)."""

    name = "broken"
    max_seconds = 1.0

    def __init__(self, problems: str = "") -> None:
        self.problems = set(problems.split("+"))
        self.inner = make_verifier("auto")

    def verify(self, problem, completion):
        if problem.id in self.problems:
            raise KeyError("score")
        return self.inner.verify(problem, completion)


CHECKS = '''
import budgetlab

def pays_unannounced(problem, completion):
    """A paid check that declares no estimate: its cost is seen only once spent."""
    return budgetlab.Verdict(answer=completion.answer, correct=completion.correct, cost=0.125)

def similarity(problem, completion):
    """A scorer: a bare number, no verdict."""
    return 0.75 if completion.correct else 0.25
'''


@pytest.fixture
def make_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A function that draws a run of 6 problems x 2 samples (recorded verdicts, the auto
    verifier) under ``budget``, judging ``concurrency`` samples a batch; returns the store."""
    from budgetlab.stores import SQLiteStore

    monkeypatch.setitem(VERIFIERS, "priced", Priced)
    monkeypatch.setitem(VERIFIERS, "broken", Broken)
    (tmp_path / "checks.py").write_text(CHECKS)
    path = tmp_path / "recorded.jsonl"
    write_replay(path, N_PROBLEMS, ("cfg-a",), per_pair=K + 1, seed=5)  # one more, for a resumed run
    stores = []

    def make(budget: Budget = Budget(), concurrency: int = 2):
        db = SQLiteStore(tmp_path / f"store{len(stores)}.db")
        stores.append(db)
        create_replay_run(db, "r", path, seed=7, concurrency=concurrency, budget=budget)
        drawn = execute(db, "r", WrappedReplay(path), FixedK(k=K), make_verifier("auto"), Budget(), concurrency=K, max_batch=K)
        asyncio.run(drawn)
        assert len(db.samples("r")) == ALL
        return db

    yield make
    for db in stores:
        db.close()


def drawn_dollars(make_run) -> float:
    db = make_run()
    return db.get_run("r").spent.dollars


def judged_by(db, verifier: str) -> int:
    return sum(s.details.get("judged_by") == verifier for s in db.samples("r"))


def test_a_paid_judge_stops_before_a_batch_would_pass_the_budget_and_names_a_budget_that_judges_the_rest(make_run) -> None:
    drawn = drawn_dollars(make_run)
    cap = drawn + 5.5 * RESERVES  # room for 5 reservations, however the batches fall
    db = make_run(Budget(dollars=cap))

    with pytest.raises(BudgetlabError) as exc:
        judge_again(db, "r", verifier="priced", every=True)

    message = str(exc.value)
    judged = judged_by(db, "priced")
    assert "\n" not in message and 5 <= judged < ALL
    spent = db.get_run("r").spent
    assert spent.dollars <= cap  # reserved before each batch: never past the cap
    assert spent.dollars == pytest.approx(drawn + judged * COSTS)  # what was judged is kept, and paid for
    assert message.startswith(f"budget: dollars limit {cap:.10g} leaves too little to judge the next sample, which reserves "
                              f"up to 0.25 dollars (spent {spent.dollars:.10g}) while judging run 'r' again; ")  # fmt: skip
    assert f"the {judged} samples judged are recorded, the other {ALL - judged} keep the verdicts they had" in message
    # --all judges every sample again: the budget it names covers all of them.
    fix = re.search(r"budgetlab judge r --all --verifier priced --budget (\S+) \(it judges all 12 again\)$", message)
    assert fix is not None, message
    assert Budget.parse(fix.group(1)).dollars >= spent.dollars + ALL * RESERVES

    outcome = judge_again(db, "r", every=True, budget=fix.group(1))  # the fix it names judges them all
    assert outcome.judged == ALL and judged_by(db, "priced") == ALL
    assert db.get_run("r").spec.budget == Budget(dollars=cap)  # the run keeps its own budget


def test_a_free_verifier_is_never_stopped_by_tokens_and_dollars_drawing_used_up(make_run) -> None:
    db = make_run()
    spent = db.get_run("r").spent
    db = make_run(Budget(samples=ALL, tokens=spent.tokens, dollars=spent.dollars))  # all three used up by drawing

    outcome = judge_again(db, "r", verifier="auto", every=True)
    assert outcome.judged == ALL
    after = db.get_run("r").spent
    assert (after.samples, after.tokens, after.dollars) == (spent.samples, spent.tokens, spent.dollars)

    with pytest.raises(BudgetlabError, match=rf"^budget: tokens limit {spent.tokens} reached \(spent {spent.tokens}\) while "
                       r"judging run 'r' again; the 0 samples judged are recorded, the other 12 keep the verdicts they had; "
                       r".*: budgetlab judge r --all --verifier priced --budget tokens=\d+,dollars=[0-9.]+ \(it judges all 12 "
                       r"again\)$"):
        judge_again(db, "r", verifier="priced", every=True)  # a judge that pays is stopped
    assert judged_by(db, "priced") == 0 and db.get_run("r").spent == after
    # Stopped before it judged a sample, it does not become the run's verifier: what the run
    # draws next is judged as before, and the report sees no verdicts of another verifier.
    assert db.get_run("r").spec.verifier == "auto"
    assert build_report(db, "r")["mixed_verdicts"] is None


def test_a_verifier_that_pays_without_an_estimate_is_stopped_once_seen_to_spend(make_run, tmp_path: Path) -> None:
    db = make_run()
    drawn = db.get_run("r").spent.dollars
    db = make_run(Budget(dollars=drawn))  # used up by drawing
    spec = f"callable:path={tmp_path / 'checks.py'}:pays_unannounced"

    with pytest.raises(BudgetlabError) as exc:
        judge_again(db, "r", verifier=spec, every=True)

    # Nothing said it would pay: one batch (2 samples) shows it does, and judging stops there.
    assert judged_by(db, spec) == 2
    spent = db.get_run("r").spent.dollars
    assert spent == pytest.approx(drawn + 2 * COSTS)
    assert str(exc.value).startswith(f"budget: dollars limit {drawn:.10g} reached (spent {spent:.10g}) while judging run 'r'")
    assert "the 2 samples judged are recorded, the other 10 keep the verdicts they had" in str(exc.value)
    fix = Budget.parse(str(exc.value).rsplit("--budget ", 1)[1].split()[0])
    assert fix.dollars >= spent + ALL * COSTS  # what it spent per sample, for each sample --all judges
    assert judge_again(db, "r", every=True, budget=fix).judged == ALL


def test_budget_replaces_the_runs_for_this_judging_only(make_run) -> None:
    db = make_run()
    drawn = db.get_run("r").spent
    db = make_run(Budget(dollars=drawn.dollars))

    assert judge_again(db, "r", verifier="priced", every=True, budget="none").judged == ALL
    assert judge_again(db, "r", every=True, budget="samples=1").judged == ALL  # nothing is drawn: no samples limit
    assert db.get_run("r").spec.budget == Budget(dollars=drawn.dollars)

    # Seconds are spent by every verifier: a limit on them stops even one that costs nothing else.
    with pytest.raises(BudgetlabError) as exc:
        judge_again(db, "r", verifier="auto", every=True, budget=Budget(verify_seconds=1e-6))
    assert "budget: verify_seconds limit 1e-06 " in str(exc.value) and "the 0 samples judged are recorded" in str(exc.value)


@pytest.mark.parametrize(("budget", "match"), [
    (42, r"^budget must be a Budget or its text, got int 42; e.g. budget='dollars=10'"),
    ("dollars=lots", r"^budget dollars='lots' is not a number"),
])  # fmt: skip
def test_a_bad_budget_is_one_line_and_changes_nothing(make_run, budget, match) -> None:
    db = make_run()
    before = (db.get_run("r"), db.samples("r"))
    with pytest.raises(InputError, match=match):
        judge_again(db, "r", verifier="priced", every=True, budget=budget)
    assert (db.get_run("r"), db.samples("r")) == before


def test_a_switch_of_verifier_that_stops_halfway_is_named_by_the_report(make_run) -> None:
    db = make_run(concurrency=2)
    assert build_report(db, "r")["mixed_verdicts"] is None  # one verifier: nothing to say

    third = db.problems("r")[2].id
    with pytest.raises(BudgetlabError, match=f"verifier 'broken' failed on problem '{third}'"):
        judge_again(db, "r", verifier=f"broken:problems={third}", every=True)

    spec = f"broken:problems={third}"
    mixed = build_report(db, "r")["mixed_verdicts"]
    assert mixed["run_verifier"] == spec
    assert mixed["by"] == {spec: 2 * K, "auto": ALL - 2 * K}  # the first two problems' samples, then it broke
    assert mixed["note"] == (f"verdicts of 2 verifiers: {2 * K} samples by {spec} (the run's), {ALL - 2 * K} by auto; "
                             f"run `budgetlab judge r --all` to judge all with {spec}")  # fmt: skip

    judge_again(db, "r", verifier="auto", every=True)  # all judged by one verifier again
    assert build_report(db, "r")["mixed_verdicts"] is None


def test_a_switch_that_judged_nothing_leaves_the_run_its_verifier_and_names_the_one_to_judge_with(make_run) -> None:
    db = make_run()
    first = db.problems("r")[0].id
    with pytest.raises(BudgetlabError, match=rf"then run budgetlab judge r --all --verifier broken:problems={first} again$"):
        judge_again(db, "r", verifier=f"broken:problems={first}", every=True)  # its first batch is all of problem 1's
    assert db.get_run("r").spec.verifier == "auto"
    assert build_report(db, "r")["mixed_verdicts"] is None


def test_samples_drawn_after_a_switch_are_the_new_verifiers(make_run, tmp_path: Path) -> None:
    """A sample a run judged as it drew it carries no tag: it is the run's verifier's, which
    judging records before it switches, so a resumed run's new samples do not read as the old one's."""
    db = make_run()
    path = tmp_path / "recorded.jsonl"
    judge_again(db, "r", verifier="recorded", every=True)
    asyncio.run(execute(db, "r", WrappedReplay(path), FixedK(k=K + 1), make_verifier("recorded"), Budget(), concurrency=K))
    assert len(db.samples("r")) == ALL + N_PROBLEMS
    assert build_report(db, "r")["mixed_verdicts"] is None


def test_scores_without_verdicts_say_how_to_give_verdicts(make_run, tmp_path: Path) -> None:
    db = make_run()
    spec = f"callable:path={tmp_path / 'checks.py'}:similarity"
    outcome = judge_again(db, "r", verifier=spec, every=True)
    assert outcome.judged == outcome.scores_only == outcome.unknown == ALL
    report = build_report(db, "r")
    assert report["configs"]["cfg-a"]["samples"] == 0 and report["mixed_verdicts"] is None
    assert report["scores_only"] == {
        "samples": ALL, "verifier": spec,
        "note": f"verifier {spec} gave scores but no verdicts for all {ALL} samples, so pass@k and maj@k count none of "
                f"them; add threshold=0.5 to count a score >= 0.5 as correct: budgetlab judge r --all --verifier "
                f"{spec},threshold=0.5",
    }  # fmt: skip
    judge_again(db, "r", verifier=f"{spec},threshold=0.5", every=True)  # the fix it names
    report = build_report(db, "r")
    assert report["scores_only"] is None and report["configs"]["cfg-a"]["samples"] == ALL
