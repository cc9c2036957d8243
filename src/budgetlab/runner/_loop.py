"""The run loop: the policy proposes, the backend draws, the verifier judges, the store records.

Each sample is claimed in the store (reserving its spend) before its request is sent, and
settled after; a claim that would overspend is refused, so the budget holds with any number of
requests in flight. Everything the loop knows is in the store, so killing it at any point and
running it again loses nothing and counts nothing twice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from budgetlab.backends import Backend, DrawRequest
from budgetlab.core import Budget, Problem, Sample, SampleState, SamplingConfig, Spend, drawn_again
from budgetlab.core.budget import format_amount
from budgetlab.core.run import RunState
from budgetlab.core.view import RunView
from budgetlab.errors import BudgetlabError
from budgetlab.policies import Policy
from budgetlab.runner._draw import UnjudgedDraws, draw_and_judge, plugin_name
from budgetlab.runner._workers import STALE_AFTER, new_worker_id, worker_is_dead
from budgetlab.stores import BaseStore
from budgetlab.verifiers import Verifier

__all__ = ["Progress", "RunOutcome", "execute"]


@dataclass(frozen=True)
class Progress:
    """What the loop reports after each settled batch."""

    finished: int
    failed: int
    planned: int | None
    spent: Spend
    in_flight: int


@dataclass(frozen=True)
class RunOutcome:
    """How an invocation of a run ended: its state, why, the run's spend, and how many samples
    this invocation settled (and how many of them failed at no cost, drawn again next time)."""

    state: RunState
    stopped_because: str
    spent: Spend
    drawn: int  # samples settled by this invocation
    failed: int = 0  # of those, failed ones that cost nothing: the next invocation draws them again


def _describe_block(limit: str, budget: Budget, spent: Spend, reserved: Spend, need: Spend | None, others: list[str]) -> str:
    """Why the budget stopped the run: spent, held by other workers' claims, or too small for
    one more sample (``need``: what the next sample reserves)."""
    cap, used = budget.limits()[limit], getattr(spent, limit)
    if budget.exhausted(spent) == limit:
        return f"budget: {limit} limit {format_amount(cap)} reached (spent {format_amount(used)})"
    one = None if need is None else getattr(need, limit)
    held = getattr(reserved, limit)
    if held > 0 and others and (need is None or budget.first_exceeded(spent + need) is None):
        who = ", ".join(":".join(w.split(":")[:2]) for w in others)  # HOST:PID
        return (f"budget: {limit} limit {format_amount(cap)} is held by other workers: {format_amount(held)} {limit} are "
                f"reserved by worker {who} still running (spent {format_amount(used)}); wait for it or rerun later")
    if one is None:
        return f"budget: {limit} limit {format_amount(cap)} leaves too little for the next sample (spent {format_amount(used)})"
    enough = format_amount(used + one)
    return (f"budget: {limit} limit {format_amount(cap)} leaves too little for the next sample, which reserves up to "
            f"{format_amount(one)} {limit} (spent {format_amount(used)}); raise it to at least {enough}, e.g. --budget {limit}={enough}")


def recover_dead_workers(store: BaseStore, run: str, stale_after: float) -> int:
    """Return the claims of dead workers to pending; their samples are then re-drawn with the
    seeds they already had."""
    released = 0
    for worker, beat in store.workers(run).items():
        if worker_is_dead(worker, beat, stale_after):
            released += store.release(run, worker)
    return released


async def execute(
    store: BaseStore,
    run: str,
    backend: Backend,
    policy: Policy,
    verifier: Verifier,
    budget: Budget,
    *,
    concurrency: int = 64,
    max_batch: int = 32,
    on_progress: Callable[[Progress], None] | None = None,
    heartbeat_every: float = 5.0,
    stale_after: float = STALE_AFTER,
    worker: str | None = None,
) -> RunOutcome:
    """Run (or resume) ``run`` until the policy is satisfied or the budget is spent."""
    worker = worker or new_worker_id()
    info = store.get_run(run)
    problems = store.problems(run)
    configs = store.configs(run)
    recover_dead_workers(store, run, stale_after)
    # A failure that cost nothing (a refused or dropped request), or only the estimate for a
    # timed-out one, is drawn again by each new invocation, so "run it again later" recovers from
    # an outage; within one it stays failed.
    store.requeue_failed(run)
    store.heartbeat(run, worker)
    store.set_run_state(run, RunState.RUNNING)

    spent = store.get_run(run).spent
    queue: deque[Sample] = deque()
    view = _take_up_store(store, run, problems, configs, budget, spent, queue)
    in_flight: dict[asyncio.Task[list[Sample]], int] = {}
    n_in_flight = 0
    drawn = 0
    unbilled_failures: list[Sample] = []
    counts = _count_finished(view)
    last_beat = time.monotonic()
    blocked_by: str | None = None
    blocked_need: Spend | None = None  # what the sample that did not fit would have reserved
    policy_idle = False
    planned: int | None = None
    # What other workers' spend, claims and heartbeats looked like, and since when, while this
    # worker waits for them to finish the run (see below).
    waiting_for: tuple[Any, ...] | None = None
    waiting_since = 0.0

    def report() -> None:
        if on_progress is not None:
            on_progress(Progress(counts[0], counts[1], planned, spent, n_in_flight))

    judging = getattr(verifier, "estimate", None)  # what a paid judgement may cost, reserved with the draw
    try:
        planned = policy.planned(view)  # inside: a policy that raises ends the run as failed, not left running
        report()  # likewise a callback
        while True:
            exhausted = budget.exhausted(spent)
            if exhausted and not in_flight:
                blocked_by = exhausted
            if blocked_by is None and not queue and not policy_idle and not exhausted:
                proposals = [
                    dataclasses.replace(p, seen=view.count(p.problem, p.config))
                    for p in policy.propose(view, max(4 * concurrency, 1024))
                    if p.count > 0
                ]
                created = store.add_pending(run, proposals) if proposals else []
                if len(created) < sum(p.count for p in proposals):
                    # Another worker added some of these first: take up the store's truth, and
                    # help draw whatever is pending (claims are atomic, so no sample is drawn twice).
                    view = _take_up_store(store, run, problems, configs, budget, spent, queue)
                else:
                    view.update(created)
                    queue.extend(created)
                policy_idle = not queue
            while queue and blocked_by is None and n_in_flight < concurrency:
                request = _next_request(queue, view, min(max_batch, concurrency - n_in_flight))
                bounds = backend.estimate(request)
                if not isinstance(bounds, (list, tuple)) or len(bounds) != len(request.samples) or not all(
                    isinstance(b, Spend) for b in bounds
                ):
                    raise BudgetlabError(
                        f"backend {plugin_name(backend)!r} estimated {bounds!r:.60} for a request of "
                        f"{len(request.samples)} samples; estimate must return a list of budgetlab.Spend, one upper "
                        "bound per sample (see docs/plugins.md)"
                    )
                # a paid judgement's bound, once per distinct draw bound (usually one per request)
                judged = {r: judging(request.problem, r) for r in set(bounds)} if judging is not None else {}
                reservations = [
                    dataclasses.replace(r, verify_seconds=r.verify_seconds + verifier.max_seconds) + judged.get(r, Spend())
                    for r in bounds
                ]
                result = store.claim(run, worker, [s.key for s in request.samples], reservations, budget)
                claimed = set(result.claimed)
                mine = tuple(s for s in request.samples if s.key in claimed)
                if result.blocked_by is not None:
                    # Put back what did not fit, in order; it is drawn once spend settles below the limit.
                    unclaimed = [s for s in request.samples if s.key not in claimed]
                    queue.extendleft(reversed(unclaimed))
                    blocked_by = result.blocked_by
                    first = next(i for i, s in enumerate(request.samples) if s.key not in claimed)
                    blocked_need = dataclasses.replace(reservations[first], samples=1)  # as claim() reserves it
                if mine:
                    running = [dataclasses.replace(s, state=SampleState.RUNNING) for s in mine]
                    view.update(running)
                    req = DrawRequest(request.problem, request.config, tuple(running))
                    task = asyncio.ensure_future(draw_and_judge(backend, verifier, req, run=run))
                    in_flight[task] = len(mine)
                    n_in_flight += len(mine)
            if not in_flight:
                if (blocked_by is not None or (policy_idle and not queue)) and recover_dead_workers(store, run, stale_after):
                    # A worker that died after this one started left claims that hold budget or
                    # samples the policy counts as drawn: take them back and draw them, rather
                    # than stop the run as complete (or blocked) with them stuck running.
                    view = _take_up_store(store, run, problems, configs, budget, spent, queue)
                    blocked_by, blocked_need, policy_idle = None, None, False
                    continue
                if blocked_by is not None:
                    totals = store.get_run(run)
                    others = [w for w in store.workers(run) if w != worker]
                    reason = _describe_block(blocked_by, budget, totals.spent, totals.reserved, blocked_need, others)
                    store.set_run_state(run, RunState.STOPPED, reason)
                    # Failures stopped by the budget are failures still (requests that all timed
                    # out, billed at their bound, use it up): the exit code must show them.
                    return RunOutcome(RunState.STOPPED, reason, totals.spent, drawn, len(unbilled_failures))
                if policy_idle and not queue:
                    totals = store.get_run(run)
                    if unbilled_failures:
                        reason = _describe_failures(unbilled_failures, drawn)
                        store.set_run_state(run, RunState.STOPPED, reason)
                        return RunOutcome(RunState.STOPPED, reason, totals.spent, drawn, len(unbilled_failures))
                    if totals.reserved.samples:
                        # Other workers still draw samples of this run (this one holds none now):
                        # it is not complete, and their results may make the policy want more.
                        # Wait for them while they show signs of life (they settle samples or
                        # beat); a worker that dies meanwhile is found above and its claims drawn.
                        others = {w: beat for w, beat in store.workers(run).items() if w != worker}
                        mark = (totals.spent, totals.reserved, sorted(others.items()))
                        now = time.monotonic()
                        if mark != waiting_for:
                            if waiting_for is not None:  # they settled or claimed: look at what they drew
                                spent = totals.spent
                                view = _take_up_store(store, run, problems, configs, budget, spent, queue)
                                policy_idle = False
                            waiting_for, waiting_since = mark, now
                        elif now - waiting_since > 2 * heartbeat_every + 1:
                            # They show no sign of life, but are not known dead either (e.g. on
                            # another machine, heartbeat not stale yet): say so, and leave the run
                            # to them; the last of them marks it done.
                            reason = _describe_others(run, totals.reserved.samples, list(others))
                            store.set_run_state(run, RunState.RUNNING, reason)
                            if store.get_run(run).reserved.samples:
                                return RunOutcome(RunState.RUNNING, reason, totals.spent, drawn)
                            # They settled meanwhile (and may have marked the run done, which the
                            # line above undid): decide again from what they drew.
                            spent = totals.spent
                            view = _take_up_store(store, run, problems, configs, budget, spent, queue)
                            policy_idle, waiting_for = False, None
                            continue
                        if now - last_beat >= heartbeat_every:
                            store.heartbeat(run, worker)
                            last_beat = now
                        await asyncio.sleep(min(0.5, heartbeat_every))  # polling, not spinning on the store
                        continue
                    if waiting_for is not None:  # the workers waited for are done: decide from what they drew
                        spent = totals.spent
                        view = _take_up_store(store, run, problems, configs, budget, spent, queue)
                        policy_idle, waiting_for = False, None
                        continue
                    reason = f"complete: policy {policy.name} has nothing more to draw"
                    store.set_run_state(run, RunState.DONE, reason)
                    return RunOutcome(RunState.DONE, reason, totals.spent, drawn)
                continue
            while True:
                # A request may take longer than stale_after (a long generation, a slow server):
                # beat while waiting, or another worker would take this one for dead, take back
                # its claims and draw (and pay for) those samples a second time.
                done, _ = await asyncio.wait(in_flight, timeout=heartbeat_every, return_when=asyncio.FIRST_COMPLETED)
                if time.monotonic() - last_beat >= heartbeat_every:
                    store.heartbeat(run, worker)
                    last_beat = time.monotonic()
                if done:
                    break
            settled: list[Sample] = []
            fatal: BaseException | None = None
            for task in done:
                n_in_flight -= in_flight.pop(task)
                error = task.exception()
                if isinstance(error, UnjudgedDraws):
                    settled.extend(error.samples)  # drawn and paid for: kept, then the run stops
                if error is not None:
                    fatal = fatal or error
                else:
                    settled.extend(task.result())
            accepted = store.finish(run, worker, settled)
            kept = [s for s, ok in zip(settled, accepted) if ok]
            view.update(kept)
            for s in kept:
                spent = spent + s.spend
                counts[0 if s.state is SampleState.DONE else 1] += 1
                if drawn_again(s):
                    unbilled_failures.append(s)
            view.spent = spent
            drawn += len(kept)
            if fatal is not None:  # raised only now, so what the other requests drew is kept
                raise fatal
            # Settling frees reservations larger than the real spend, and new results may change
            # the policy's mind: look again at both.
            blocked_by = None
            policy_idle = False
            if time.monotonic() - last_beat > heartbeat_every:
                store.heartbeat(run, worker)
                last_beat = time.monotonic()
            report()
    except BaseException as exc:
        for task in in_flight:
            task.cancel()
        if in_flight:
            await asyncio.gather(*in_flight, return_exceptions=True)
        if isinstance(exc, BudgetlabError):
            store.set_run_state(run, RunState.FAILED, str(exc))
        elif isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
            store.set_run_state(run, RunState.INTERRUPTED, "interrupted: run it again to resume")
        else:
            store.set_run_state(run, RunState.FAILED, f"{type(exc).__name__}: {exc}")
        raise
    finally:
        # Whatever this worker still holds goes back to pending, to be drawn again with its seed.
        store.release(run, worker)


def _take_up_store(store: BaseStore, run: str, problems: Sequence[Problem], configs: Sequence[SamplingConfig],
                   budget: Budget, spent: Spend, queue: deque[Sample]) -> RunView:  # fmt: skip
    """The run as the store has it now (other workers' samples included): a fresh view, and every
    pending sample not queued yet added to ``queue``."""
    view = RunView(problems, configs, store.samples(run), budget)
    view.spent = spent
    queued = {s.key for s in queue}
    queue.extend(s for s in store.samples(run, [SampleState.PENDING]) if s.key not in queued)
    return view


def _describe_others(run: str, running: int, others: list[str]) -> str:
    who = ", ".join(":".join(w.split(":")[:2]) for w in others) or "another worker"  # HOST:PID
    return (f"this worker has nothing more to draw; {running:,} samples are still held by worker {who}, which shows "
            f"no sign of progress; it completes the run if it is alive (see budgetlab report {run} then), and if it "
            "has stopped, run this command again once its heartbeat is stale (2 minutes) to draw them")


def _describe_failures(failed: list[Sample], settled: int) -> str:
    first = (failed[0].error or "no reason given").splitlines()[0]
    if first.startswith("replay exhausted"):  # running again cannot help: the file has no more
        fix = "ask for no more samples per problem than the file holds (a lower k or max_samples)"
    elif " rejected the request" in first and "(5" not in first:  # a 4xx: sent again as it is, refused again
        fix = ("the server refuses the request as sent: change what its message names (a parameter or value it does not "
               "accept) in --config, then run it again")
    else:
        fix = "run it again to draw them again"
    return f"{len(failed)} of the {settled} samples settled now failed (first: {first}); {fix}"


def _count_finished(view: RunView) -> list[int]:
    done = failed = 0
    config_ids = [c.id for c in view.configs]
    for problem in view.problems:
        for config in config_ids:
            for s in view.samples(problem.id, config):
                if s.state is SampleState.DONE:
                    done += 1
                elif s.state is SampleState.FAILED:
                    failed += 1
    return [done, failed]


def _next_request(queue: deque[Sample], view: RunView, size: int) -> DrawRequest:
    """Take up to ``size`` consecutive queued samples of the same (problem, config)."""
    first = queue.popleft()
    group = [first]
    while queue and len(group) < size and queue[0].problem == first.problem and queue[0].config == first.config:
        group.append(queue.popleft())
    return DrawRequest(view.problem(first.problem), view.config(first.config), tuple(group))

