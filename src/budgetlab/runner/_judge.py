"""Judge a run's samples again without drawing (or paying for) them again: those a broken
verifier left unjudged, or every one once a verifier is fixed or replaced (``budgetlab judge``)."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import os
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from budgetlab.core import JUDGED_BY, Budget, Completion, Problem, Sample, SampleState, Spend
from budgetlab.core.budget import format_amount
from budgetlab.errors import BudgetlabError, InputError
from budgetlab.runner._api import _check_references, budget_argument, run_blocking
from budgetlab.runner._draw import RECORDED_VERDICT, UNJUDGED, broken_because, judge, judge_hint, plugin_name
from budgetlab.runner._loop import Progress
from budgetlab.runner._workers import STALE_AFTER, worker_is_dead
from budgetlab.stores import BaseStore, open_store
from budgetlab.verifiers import Verifier, make_verifier

__all__ = ["JudgeOutcome", "judge_again"]

# As core.budget's: float sums of dollars and seconds drift by a few ulps.
_EPS = 1e-9


@dataclass(frozen=True)
class JudgeOutcome:
    """What judging a run again did. ``changed`` counts the samples that had a verdict and now
    have another; ``left_unjudged`` the done samples still without one (a verifier that broke
    again stops judging); ``spent`` what judging cost (a judge model's tokens and dollars, and
    verify seconds), added to the run's spend; ``scores_only`` the samples judged that got a
    score but no verdict (a callable verifier returning a number, without ``threshold``)."""

    run: str
    verifier: str
    judged: int
    were_unjudged: int
    changed: int
    correct: int
    wrong: int
    unknown: int
    left_unjudged: int
    spent: Spend
    scores_only: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "spent": self.spent.to_dict()}


def judge_again(
    store: BaseStore | str | os.PathLike[str],
    name: str,
    *,
    verifier: str | None = None,
    every: bool = False,
    budget: Budget | str | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> JudgeOutcome:
    """Judge the done samples of run ``name`` that carry no verdict because its verifier broke
    (or, with ``every``, all its done samples) with the run's verifier, rebuilt from its spec, or
    with ``verifier`` (a name or spec, then recorded as the run's verifier so that resuming the
    run judges its new samples alike). Nothing is drawn; failed draws are never judged.

    Verdicts are recorded a batch at a time: if the verifier raises, what it judged is kept and
    one :class:`BudgetlabError` names the sample's problem and the fix; the other samples keep
    the verdict (or the lack of one) they had. Judging keeps all spend: a judge model's tokens
    and dollars, and the seconds spent judging, add to what the sample already cost.
    ``on_progress`` gets a :class:`Progress` after each batch (``finished``: samples judged).
    Refused while a live worker draws the run: wait for it, or stop it.

    Judging spends under the run's budget, or ``budget`` (a :class:`Budget` or its text, as
    ``budgetlab run --budget``) in its place for this judging only. Its limits cap the run's
    total spend, judging included, not the judging's own: the figures ``report`` and ``runs``
    show and ``run --budget`` sets, so ``dollars=10`` means the same everywhere. Nothing is
    drawn: a samples limit does not apply. Before each batch, a limit the verifier spends on
    stops judging once reached or if the batch would pass it: seconds (each judgement reserves
    the verifier's ``max_seconds``, as in a run), tokens and dollars as its ``estimate``
    declares (a judge model), or once they are seen to grow (a batch late at worst). A verifier
    that costs nothing there (math, exact, a plain callable) is never stopped by tokens or
    dollars that drawing used up. Stopped, what was judged is kept, and a
    :class:`BudgetlabError` names the limit, spent against cap, the samples left and a
    ``--budget`` that judges them."""
    if verifier is not None and not isinstance(verifier, str):
        raise InputError(f"verifier must be a name or spec (the run records it), got {type(verifier).__name__} "
                         f"{verifier!r:.40}; e.g. verifier='math' or 'callable:path=mypkg.checks:is_correct'")  # fmt: skip
    budget = budget_argument(budget, "budget='dollars=10' or budget=Budget(dollars=10)")
    if not isinstance(store, BaseStore):
        with open_store(os.fspath(store)) as opened:
            return judge_again(opened, name, verifier=verifier, every=every, budget=budget, on_progress=on_progress)
    spec = store.get_run(name).spec  # RunNotFound, naming the runs there
    _refuse_live_workers(store, name)
    spec_text = spec.verifier if verifier is None else verifier
    judging = make_verifier(spec_text)
    problems = {p.id: p for p in store.problems(name)}
    try:
        _check_references(judging, list(problems.values()))
    except InputError:  # its fix, --problems, is run's: a run's problems are fixed once it is made
        raise InputError(
            f"verifier {spec_text} compares each answer with its problem's reference, and none of the "
            f"{len(problems)} problems of run {name!r} has one (it was made without --problems FILE); judge with a "
            "verifier that needs none, e.g. --verifier auto (a replay file's recorded verdicts) or "
            "callable:path=checks.py:is_correct"
        ) from None
    switching = spec_text != spec.verifier
    done = store.samples(name, [SampleState.DONE])
    marked = sum(1 for s in done if UNJUDGED in s.details)
    chosen = done if every else [s for s in done if UNJUDGED in s.details]
    tally = _Tally(name, spec_text, len(chosen), on_progress)
    allowance = _Allowance(spec.budget if budget is None else budget, judging, problems, verifier)

    async def judge_all() -> None:  # one event loop for all: a judge model's client lives in it
        batch, start = max(1, spec.concurrency), 0
        while start < len(chosen):
            spent = store.get_run(name).spent
            fits, limit = allowance.fitting(chosen[start : start + batch], spent)
            if limit is not None and not fits:
                # Judging again with --all judges every sample again, the ones judged now included.
                raise allowance.stopped(name, limit, spent, chosen[start:], chosen if every else chosen[start:], tally, every)
            olds = chosen[start : start + fits]
            start += fits
            results = await _judge_batch(judging, spec_text, olds, problems)
            judged = [(old, new) for old, new in zip(olds, results) if isinstance(new, Sample)]
            nonlocal switching
            if switching and judged:  # only once it gave a verdict: a judging stopped before keeps the run as it was
                _tag_verdicts_of(store, name, spec.verifier)
                store.update_spec(dataclasses.replace(spec, verifier=spec_text))
                switching = False
            store.record_verdicts(name, [new for _, new in judged])
            before = tally.spent
            tally.add(judged)
            allowance.saw(tally.spent - before)
            broke = next(((old, r) for old, r in zip(olds, results) if isinstance(r, BaseException)), None)
            if broke is not None:
                _raise_broken(judging, name, *broke, tally, marked, every, verifier)

    run_blocking(judge_all)
    outcome = tally.outcome(marked)
    _drop_judge_hint(store, name, outcome)
    return outcome


def _drop_judge_hint(store: BaseStore, name: str, outcome: JudgeOutcome) -> None:
    """A run its verifier stopped says "`budgetlab judge RUN` to judge the kept ones"; once they
    are, ``report`` and ``runs`` say so instead of asking for it again."""
    info = store.get_run(name)
    hint = judge_hint(name)
    if outcome.left_unjudged == 0 and info.stopped_because and hint in info.stopped_because:
        store.set_run_state(name, info.state, info.stopped_because.replace(hint, "; the kept ones are judged (budgetlab judge)"))


def _tag_verdicts_of(store: BaseStore, name: str, verifier: str) -> None:
    """Before the run's verifier changes, the verdicts its old one gave say whose they are: a
    sample without :data:`JUDGED_BY` is then always the run's verifier's (the one it was drawn
    and judged with), and a switch that stops halfway leaves samples that say which is which
    (``budgetlab report`` counts them). Verdicts, spend and state are written back unchanged."""
    untagged = [
        dataclasses.replace(s, details={**s.details, JUDGED_BY: verifier})
        for s in store.samples(name, [SampleState.DONE])
        if UNJUDGED not in s.details and JUDGED_BY not in s.details
    ]
    if untagged:
        store.record_verdicts(name, untagged)


class _Allowance:
    """What the budget leaves judging, batch by batch (see :func:`judge_again`): a limit stops
    judging only where the verifier spends, reserved (seconds; a declared ``estimate`` of tokens
    and dollars) or seen to grow in this judging."""

    def __init__(self, budget: Budget, verifier: Verifier, problems: dict[str, Problem], given: str | None) -> None:
        self.verifier = given  # the spec judge_again was given, for the command that judges the rest
        self.limits = {k: v for k, v in budget.limits().items() if k != "samples"}  # nothing is drawn
        self.estimate = getattr(verifier, "estimate", None)
        self.max_seconds = float(verifier.max_seconds)
        self.problems = problems
        self.seen: set[str] = set()  # the limits this judging was seen to spend on

    def reserve(self, sample: Sample) -> Spend:
        """The most judging ``sample`` may spend, as the run loop reserves a judgement."""
        paid = Spend()
        if self.estimate is not None:  # given what the sample itself cost, as the draw's bound
            paid = self.estimate(self.problems.get(sample.problem) or Problem(sample.problem), sample.spend)
        return Spend(tokens=paid.tokens, dollars=paid.dollars, verify_seconds=self.max_seconds)

    def saw(self, spent: Spend) -> None:
        self.seen.update(k for k in self.limits if getattr(spent, k) > 0)

    def _over(self, spent: Spend, held: Spend) -> str | None:
        for limit, cap in self.limits.items():
            used, more = getattr(spent, limit), getattr(held, limit)
            if (more > 0 and used + more > cap + _EPS) or (limit in self.seen and used >= cap - _EPS):
                return limit
        return None

    def fitting(self, batch: Sequence[Sample], spent: Spend) -> tuple[int, str | None]:
        """How many of ``batch``, from its first, fit the budget after ``spent``, and the limit
        that stops the next one (``None`` when all fit)."""
        if not self.limits:
            return len(batch), None
        held = Spend()
        for n, sample in enumerate(batch):
            held = held + self.reserve(sample)
            limit = self._over(spent, held)
            if limit is not None:
                return n, limit
        return len(batch), None

    def stopped(self, run: str, limit: str, spent: Spend, rest: Sequence[Sample], again: Sequence[Sample],
                tally: _Tally, every: bool) -> BudgetlabError:  # fmt: skip
        """Why judging stops before ``rest``, and a budget for judging ``again`` the samples
        ``budgetlab judge`` would then judge."""
        cap, used = self.limits[limit], getattr(spent, limit)
        if used >= cap - _EPS:
            why = f"{limit} limit {format_amount(cap)} reached (spent {format_amount(used)})"
        else:
            one = getattr(self.reserve(rest[0]), limit)
            why = (f"{limit} limit {format_amount(cap)} leaves too little to judge the next sample, which reserves up "
                   f"to {format_amount(one)} {limit} (spent {format_amount(used)})")  # fmt: skip
        # Enough to judge them all: their reservations, or what judging spent per sample so far.
        held = sum((self.reserve(s) for s in again), Spend())
        raised = dict(self.limits)
        for name, limit_cap in self.limits.items():
            seen = getattr(tally.spent, name) / tally.judged * len(again) if name in self.seen and tally.judged else 0.0
            need = getattr(spent, name) + max(getattr(held, name), seen)
            if need > limit_cap + _EPS:
                raised[name] = _round_up(need, whole=name == "tokens")
        left = f"the other {len(rest):,} keep the verdicts they had" if every else f"{len(rest):,} stay unjudged"
        command = f"{_again(run, every, self.verifier)} --budget " + ",".join(
            f"{k}={format_amount(v)}" for k, v in raised.items()
        )
        return BudgetlabError(
            f"budget: {why} while judging run {run!r} again; the {tally.judged:,} samples judged are recorded, {left}; "
            f"judge them with a higher limit (a cap on the run's total spend, for this judging only): {command}"
            + (f" (it judges all {len(again):,} again)" if every else "")
        )


def _again(run: str, every: bool, verifier: str | None) -> str:
    """The ``budgetlab judge`` command that judges what is left: with the verifier it was given,
    which becomes the run's only once it has judged a sample."""
    chosen = f" --verifier {shlex.quote(verifier)}" if verifier is not None else ""
    return f"budgetlab judge {shlex.quote(run)}{' --all' if every else ''}{chosen}"


def _round_up(value: float, *, whole: bool) -> float:
    """``value`` rounded up to two significant digits: a limit to type, that still covers it."""
    step = 10.0 ** (math.floor(math.log10(value)) - 1) if value > 0 else 1.0
    rounded = math.ceil(value / step - 1e-9) * step
    return int(math.ceil(rounded)) if whole else float(f"{rounded:.12g}")


def _refuse_live_workers(store: BaseStore, name: str) -> None:
    """A worker drawing the run now judges its new samples with the verifier it started with, and
    may be judging the samples this would judge: judging again waits for it."""
    live = [w for w, beat in store.workers(name).items() if not worker_is_dead(w, beat, STALE_AFTER)]
    if live:
        who = ", ".join(":".join(w.split(":")[:2]) for w in live)  # HOST:PID
        raise InputError(
            f"run {name!r} is being drawn now by worker {who}; judge it once that ends (or stop it: Ctrl-C, or kill PID, "
            "keeps what it drew), then run budgetlab judge again"
        )


def _completion(sample: Sample) -> Completion:
    """The completion ``sample`` was drawn as, as far as the store has it. A verdict the backend
    gave with it (a replay file's) is passed on as it was: an unjudged sample keeps it in its
    details; a judged one passes its correct and score, and its answer when it has no text
    (there is nothing else to judge), so a verifier that reads text judges the text afresh."""
    details = {k: v for k, v in sample.details.items() if k not in (UNJUDGED, RECORDED_VERDICT)}
    if UNJUDGED in sample.details:
        recorded = sample.details.get(RECORDED_VERDICT) or {}
        answer, correct, score = recorded.get("answer"), recorded.get("correct"), recorded.get("score")
    else:
        answer = sample.answer if sample.text is None else None
        correct, score = sample.correct, sample.score
    return Completion(
        text=sample.text, prompt_tokens=sample.prompt_tokens, completion_tokens=sample.completion_tokens,
        cost=sample.cost, latency=sample.latency, logprob=sample.logprob, answer=answer, correct=correct, score=score,
        details=details,
    )  # fmt: skip


async def _judge_batch(verifier: Verifier, spec: str, samples: Sequence[Sample],
                       problems: dict[str, Problem]) -> list[Sample | BaseException]:  # fmt: skip
    async def one(sample: Sample) -> Sample:
        problem = problems.get(sample.problem) or Problem(sample.problem)
        new = await judge(verifier, sample, problem, _completion(sample))
        # Judging again is paid again: the seconds add up, as the judge model's tokens do.
        return dataclasses.replace(new, verify_seconds=sample.verify_seconds + new.verify_seconds,
                                   details={**new.details, JUDGED_BY: spec})  # fmt: skip

    return list(await asyncio.gather(*(one(s) for s in samples), return_exceptions=True))


class _Tally:
    """The counts of a :class:`JudgeOutcome`, kept as batches are recorded."""

    def __init__(self, run: str, verifier: str, planned: int, on_progress: Callable[[Progress], None] | None) -> None:
        self.run, self.verifier, self.planned, self.on_progress = run, verifier, planned, on_progress
        self.judged = self.were_unjudged = self.changed = self.correct = self.wrong = self.unknown = self.scores_only = 0
        self.spent = Spend()

    def add(self, judged: Sequence[tuple[Sample, Sample]]) -> None:
        for old, new in judged:
            self.judged += 1
            if UNJUDGED in old.details:
                self.were_unjudged += 1
            elif old.correct != new.correct:
                self.changed += 1
            self.correct += new.correct is True
            self.wrong += new.correct is False
            self.unknown += new.correct is None
            self.scores_only += new.correct is None and new.score is not None
            self.spent = self.spent + new.spend - old.spend
        if self.on_progress is not None:
            self.on_progress(Progress(self.judged, 0, self.planned, self.spent, 0))

    def outcome(self, marked: int) -> JudgeOutcome:
        return JudgeOutcome(self.run, self.verifier, self.judged, self.were_unjudged, self.changed, self.correct,
                            self.wrong, self.unknown, marked - self.were_unjudged, self.spent, self.scores_only)  # fmt: skip


def _raise_broken(verifier: Verifier, run: str, sample: Sample, error: BaseException, tally: _Tally, marked: int,
                  every: bool, given: str | None) -> None:  # fmt: skip
    if not isinstance(error, Exception):  # Ctrl-C, cancelled: what was judged is recorded
        raise error
    why = broken_because(error)
    rest = "the others keep the verdicts they had" if every else f"{marked - tally.were_unjudged} stay unjudged"
    raise BudgetlabError(
        f"verifier {plugin_name(verifier)!r} failed on problem {sample.problem!r} ({why}) while judging run {run!r} "
        f"again; the {tally.judged} samples it judged are recorded, {rest}; fix the verifier, then run "
        f"{_again(run, every, given)} again"
    ) from error
