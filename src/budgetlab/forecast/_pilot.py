"""The pilot: a random few problems drawn in full, as part of the real run.

The pilot is not a separate run. It executes the run itself (same name, spec, store, backend and
seeds) with a policy restricted to a seeded random subset of its problems, then leaves the run
``stopped`` with a reason saying so. Running ``budgetlab run`` with the same options afterwards
resumes that run: the pilot's samples are already there, with the same seeds, so none of them is
drawn or paid for again.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from budgetlab.core.run import RunState
from budgetlab.core.view import RunView
from budgetlab.errors import InputError
from budgetlab.policies import Policy, make_policy
from budgetlab.runner import PreparedRun, Progress
from budgetlab.runner._loop import execute
from budgetlab.runner._workers import STALE_AFTER, worker_is_dead
from budgetlab.stores import Proposal
from budgetlab.verifiers import make_verifier

__all__ = ["PilotPolicy", "PilotResult", "choose_pilot_problems", "run_pilot"]


def choose_pilot_problems(problem_ids: Sequence[str], fraction: float, seed: int, minimum: int = 3) -> list[str]:
    """A seeded random ``fraction`` of the problems (at least ``minimum``, at most all), in the
    run's order. The same run seed always picks the same problems, so a forecast run twice
    reuses its pilot."""
    if not 0.0 < fraction <= 1.0:
        raise InputError(f"pilot fraction must be in (0, 1], got {fraction}; e.g. --pilot 0.05 for 5%")
    size = min(len(problem_ids), max(minimum, math.ceil(fraction * len(problem_ids))))
    chosen = set(random.Random(f"pilot-{seed}").sample(list(problem_ids), size))
    return [p for p in problem_ids if p in chosen]


class _SubsetView:
    """The run's view with only the pilot problems visible; everything else is the real view.
    It keeps its own memo: a policy's memo refers to positions in ``problems``."""

    def __init__(self, view: RunView, problems: tuple[Any, ...]) -> None:
        self._view = view
        self.problems = problems
        self.memo: dict[str, object] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._view, name)


@dataclass
class PilotPolicy:
    """``inner`` applied to the pilot problems only (a wrapper, so any policy can be piloted)."""

    inner: Policy
    problems: frozenset[str]
    name: str = "pilot"

    def __post_init__(self) -> None:
        self._views: tuple[int, _SubsetView] | None = None

    def _subset(self, view: RunView) -> _SubsetView:
        if self._views is None or self._views[0] != id(view):
            subset = tuple(p for p in view.problems if p.id in self.problems)
            self._views = (id(view), _SubsetView(view, subset))
        return self._views[1]

    def propose(self, view: RunView, limit: int) -> list[Proposal]:
        return self.inner.propose(self._subset(view), limit)  # type: ignore[arg-type]

    def planned(self, view: RunView) -> int | None:
        return self.inner.planned(self._subset(view))  # type: ignore[arg-type]


@dataclass(frozen=True)
class PilotResult:
    """What the pilot drew now, and how long the drawing took (for throughput)."""

    problems: tuple[str, ...]
    drawn: int
    seconds: float
    first_settle_seconds: float | None  # from the start to the first settled batch (model load, warm-up)
    first_settled: int  # samples in that first batch
    settled_after_first: int  # samples settled after it
    stopped_because: str
    concurrency: int = 64  # the run's samples in flight at once

    @property
    def one_wave(self) -> bool:
        """Whether every sample of the pilot was in flight at once (no more than the concurrency)."""
        return 0 < self.drawn <= self.concurrency

    def throughput(self, tokens_per_sample: float) -> dict[str, float] | None:
        """Tokens per second after the first batch, and the start-up time before it (for a pilot
        sent in one batch, its whole time: see below); ``None`` when this pilot drew too little to time."""
        if self.one_wave:
            return self._one_wave_throughput(tokens_per_sample)
        if self.first_settle_seconds is None or self.settled_after_first < 1:
            return None
        steady = self.seconds - self.first_settle_seconds
        if steady <= 0:
            return None
        samples_per_second = self.settled_after_first / steady
        startup = max(0.0, self.first_settle_seconds - self.first_settled / samples_per_second)
        return {"tokens_per_second": samples_per_second * tokens_per_sample, "samples_per_second": samples_per_second,
                "startup_seconds": startup, "pilot_seconds": self.seconds}

    def _one_wave_throughput(self, tokens_per_sample: float) -> dict[str, float] | None:
        """The whole pilot over its whole time, with no start-up of its own. Samples sent together
        settle together, so those after the first time only one batch's spread, not a rate (read so,
        a 40-sample pilot of 0.8 s forecast 6 s for a run that took 51 s). The whole time charges the
        pilot's warm-up to every sample, and a batch this small to the full run's fuller ones."""
        if self.seconds <= 0:
            return None
        samples_per_second = self.drawn / self.seconds
        return {"tokens_per_second": samples_per_second * tokens_per_sample, "samples_per_second": samples_per_second,
                "startup_seconds": 0.0, "pilot_seconds": self.seconds}


def run_pilot(
    prepared: PreparedRun,
    fraction: float,
    on_progress: Callable[[Progress], None] | None = None,
) -> PilotResult:
    """Draw the pilot of ``prepared`` (a run recorded by :func:`budgetlab.runner.prepare`)."""
    spec, store = prepared.spec, prepared.store
    ids = [p.id for p in store.problems(spec.name)]
    chosen = choose_pilot_problems(ids, fraction, spec.seed)
    info = store.get_run(spec.name)
    if info.state is RunState.DONE:  # the whole run is drawn already: forecast from all of it, change nothing
        asyncio.run(prepared.backend.aclose())
        return PilotResult(tuple(ids), 0, 0.0, None, 0, 0, info.stopped_because or "complete", spec.concurrency)
    live = [w for w, beat in store.workers(spec.name).items() if not worker_is_dead(w, beat, STALE_AFTER)]
    if live:
        # Its loop would draw the other worker's pending samples as the pilot's, time them as
        # the pilot's throughput, and mark the run stopped under it.
        asyncio.run(prepared.backend.aclose())
        who = ", ".join(":".join(w.split(":")[:2]) for w in live)  # HOST:PID
        raise InputError(
            f"run {spec.name!r} is being drawn now by worker {who}; forecast it once that ends (the forecast then "
            "reuses what it drew), or forecast a new run with another --name"
        )
    policy = PilotPolicy(make_policy(spec.policy, spec.policy_args), frozenset(chosen))
    started = time.perf_counter()
    marks: dict[str, float | int] = {}

    def progress(p: Progress) -> None:
        done = p.finished + p.failed
        if done and "first" not in marks:
            marks["first"] = time.perf_counter() - started
            marks["first_done"] = done
        marks["last_done"] = done
        if on_progress is not None:
            on_progress(p)

    async def go() -> Any:
        try:
            return await execute(
                store, spec.name, prepared.backend, policy, make_verifier(spec.verifier), spec.budget,
                concurrency=spec.concurrency, on_progress=progress,
            )
        finally:
            await prepared.backend.aclose()

    outcome = asyncio.run(go())
    seconds = time.perf_counter() - started
    if outcome.state is RunState.DONE:
        reason = (f"pilot of budgetlab forecast: {len(chosen)} of {len(ids)} problems drawn in full; "
                  "run it again with budgetlab run to draw the rest")
    else:
        reason = f"pilot of budgetlab forecast stopped early: {outcome.stopped_because}"
    store.set_run_state(spec.name, RunState.STOPPED, reason)
    first = marks.get("first")
    after = int(marks.get("last_done", 0)) - int(marks.get("first_done", 0))
    return PilotResult(tuple(chosen), outcome.drawn, seconds, None if first is None else float(first),
                       int(marks.get("first_done", 0)), after, reason, spec.concurrency)
