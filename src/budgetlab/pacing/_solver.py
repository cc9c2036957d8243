"""Answer a stream of live requests under one paced budget.

:class:`PacedSolver` answers each problem as it comes: it draws samples through a backend in
the chunks its priced stopping rule asks for, judges them with a verifier (which extracts the
answer; with no reference it only extracts), returns the majority answer and reports the spend
to the pacer. Spend is counted in the pacer's unit: samples, tokens (prompt + completion, a
judge's included) or dollars. A chunk is drawn only if its upper bound on spend (the backend's
``estimate``, plus a judge verifier's, the bounds the run loop reserves) fits the request's
allowance, so the budget is never exceeded.

Requests may overlap (``asyncio.gather`` over many ``solve`` calls, as a server does): each takes
a ticket from the pacer and reserves every draw's bound before sending it, so the guarantees
hold with any number in flight. The pacer holds the spending state (save it with
:meth:`BudgetPacer.save` after each request to survive restarts). With a ``journal``
(:class:`SampleJournal`) every sample is recorded as soon as it is judged, and a request
answered again after a crash takes the samples it had drawn from there: the rule sees the same
samples, and none is paid for twice.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from budgetlab.analysis._majority import majority_answer
from budgetlab.backends import Backend, DrawRequest
from budgetlab.core import Problem, Sample, SampleState, SamplingConfig
from budgetlab.core.types import derive_seed
from budgetlab.errors import InputError
from budgetlab.pacing._base import Pacer
from budgetlab.pacing._journal import SampleJournal
from budgetlab.pacing._priced import priced
from budgetlab.runner._draw import UnjudgedDraws, draw_and_judge
from budgetlab.verifiers import Verifier

__all__ = ["PacedAnswer", "PacedSolver", "sample_bound"]

UNITS = ("samples", "tokens", "dollars")
_FAILED_IN_A_ROW = 2


@dataclass(frozen=True)
class PacedAnswer:
    problem: str
    answer: str | None  # the majority answer (None: no sample gave one)
    correct: bool | None  # whether it is right, when the verifier knows the reference
    samples: tuple[Sample, ...]
    spent: float  # in the pacer's unit
    price: float  # the price the request was drawn at
    capped: bool  # whether the allowance stopped it before its rule did

    @property
    def error(self) -> str | None:
        """Why the request has no answer when every sample it drew failed (the last failure's
        error); None when a sample finished, or when none was drawn (the budget cut it)."""
        if not self.samples or any(s.state == SampleState.DONE for s in self.samples):
            return None
        return self.samples[-1].error or "every sample failed"


def _spend(sample: Sample, unit: str) -> float:
    if unit == "samples":  # as in a run's budget: a failed sample is not a sample (its tokens count)
        return 1.0 if sample.state == SampleState.DONE else 0.0
    if unit == "tokens":
        return float(sample.prompt_tokens + sample.completion_tokens)
    return float(sample.cost)


def sample_bound(backend: Backend, verifier: Verifier, config: SamplingConfig, problem: Problem, unit: str) -> float:
    """The most one sample of ``problem`` may spend in ``unit``: the backend's bound (what the
    run loop reserves), plus a judge verifier's bound on grading it."""
    if unit == "samples":
        return 1.0
    (spend,) = backend.estimate(DrawRequest(problem, config, (Sample("paced", problem.id, config.id, 0, 0),)))
    judge = getattr(verifier, "estimate", None)
    if judge is not None:
        spend = spend + judge(problem, spend)
    return float(spend.tokens if unit == "tokens" else spend.dollars)


class PacedSolver:
    """Answer problems one by one with ``config`` on ``backend``, judged by ``verifier``, each
    drawing while ``stopping`` (priced by ``pacer``) asks for more samples; see the module
    docstring. ``unit``: what the pacer's budget counts (samples, tokens or dollars)."""

    def __init__(
        self,
        backend: Backend,
        config: SamplingConfig,
        verifier: Verifier,
        stopping: Any,
        pacer: Pacer,
        *,
        unit: str = "samples",
        seed: int = 0,
        journal: SampleJournal | None = None,
    ) -> None:
        if unit not in UNITS:
            raise InputError(f"pacing unit must be one of {', '.join(UNITS)}, got unit={unit!r}")
        priced(stopping, pacer.price)  # a rule without a price fails here, not at the first request
        self.backend, self.config, self.verifier, self.stopping, self.pacer = backend, config, verifier, stopping, pacer
        self.unit = unit
        self.seed = seed
        self.journal = journal
        self._per_sample: list[float] = []  # recent spend per sample, for the rule's cost per sample

    def _sample_cost(self, bound: float) -> float:
        """What one sample spends, for the stopping rule: the mean per sample over the last 50
        requests, or the bound before any was answered."""
        if self.unit == "samples":
            return 1.0
        recent = self._per_sample[-50:]
        return sum(recent) / len(recent) if recent else bound


    async def solve(self, problem: Problem) -> PacedAnswer:
        """Answer ``problem``. Calls may overlap (a server answering several requests at once):
        each reserves its draw's bound before sending it, so the budget and every later
        request's minimum hold with any number in flight."""
        pacer = self.pacer
        price = pacer.price
        bound = sample_bound(self.backend, self.verifier, self.config, problem, self.unit)
        rule = priced(self.stopping, price, self._sample_cost(bound))
        capped = False
        ticket = pacer.begin()
        try:
            # Samples the journal holds for this request were paid for before a restart: they are
            # its first ones and count as spent now, even where the price has moved since and the
            # rule would not have drawn them all (with requests in flight together it does move).
            drawn = self._paid_before(problem)
            if drawn:
                pacer.reserve(ticket, 0.0)  # the request has drawn: its own minimum is used
                pacer.settle(ticket, 0.0, sum(_spend(s, self.unit) for s in drawn))
            while True:
                want = rule.next_count([s.answer if s.state == SampleState.DONE else None for s in drawn])
                if want <= 0:
                    break
                wanted = tuple(
                    Sample("paced", problem.id, self.config.id, i, derive_seed(self.seed, problem.id, self.config.id, i))
                    for i in range(len(drawn), len(drawn) + want)
                )
                # Each sample reserves its own bound (the backend's estimate for that very sample, as the
                # run loop reserves): a replayed sample 5 may cost far more than sample 0.
                bounds = self._bounds(problem, wanted)
                headroom = pacer.headroom(ticket)
                count, reserved = 0, 0.0
                while count < want and reserved + bounds[count] <= headroom + 1e-9:  # as pacer.reserve allows
                    reserved += bounds[count]
                    count += 1
                if count <= 0 or not pacer.reserve(ticket, reserved):
                    capped = True
                    break
                batch = wanted[:count]
                judged = await self._draw(problem, batch)
                pacer.settle(ticket, reserved, sum(_spend(s, self.unit) for s in judged))
                drawn.extend(judged)
                if len(drawn) >= _FAILED_IN_A_ROW and all(s.state == SampleState.FAILED for s in drawn[-_FAILED_IN_A_ROW:]):
                    break  # the backend keeps failing on this problem (it retried already): answer with what there is
        finally:  # also when a draw raised: its reservation is freed
            pacer.end(ticket)
        spent = ticket.spent
        if drawn and self.unit != "samples":
            self._per_sample.append(spent / len(drawn))
        answers = [s.answer if s.state == SampleState.DONE else None for s in drawn]
        answer = majority_answer(answers)
        return PacedAnswer(problem.id, answer, _correct_of(drawn, answer), tuple(drawn), spent, price, capped)

    def _paid_before(self, problem: Problem) -> list[Sample]:
        """The journal's samples of ``problem``, from index 0 up to the first it lacks."""
        out: list[Sample] = []
        while self.journal is not None:
            i = len(out)
            seed = derive_seed(self.seed, problem.id, self.config.id, i)
            sample = self.journal.recorded(Sample("paced", problem.id, self.config.id, i, seed))
            if sample is None:
                break
            out.append(sample)
        return out

    def _bounds(self, problem: Problem, batch: tuple[Sample, ...]) -> list[float]:
        """The most each sample of ``batch`` may spend in the pacer's unit: the backend's
        estimate for it, plus a judge verifier's bound on grading it."""
        if self.unit == "samples":
            return [1.0] * len(batch)
        judge = getattr(self.verifier, "estimate", None)
        out = []
        for spend in self.backend.estimate(DrawRequest(problem, self.config, batch)):
            if judge is not None:
                spend = spend + judge(problem, spend)
            out.append(float(spend.tokens if self.unit == "tokens" else spend.dollars))
        return out

    async def _draw(self, problem: Problem, batch: tuple[Sample, ...]) -> list[Sample]:
        """``batch`` drawn and judged, in order; samples the journal holds are taken from it
        (they were paid for before a crash) and the others recorded there once judged."""
        if self.journal is None:
            return list(await draw_and_judge(self.backend, self.verifier, DrawRequest(problem, self.config, batch)))
        kept = {s.index: self.journal.recorded(s) for s in batch}
        fresh = tuple(s for s in batch if kept[s.index] is None)
        if fresh:
            try:
                judged = await draw_and_judge(self.backend, self.verifier, DrawRequest(problem, self.config, fresh))
            except UnjudgedDraws as broke:  # the verifier broke: what was paid for is journaled first
                self.journal.add(broke.samples)
                raise
            self.journal.add(judged)
            kept.update((s.index, s) for s in judged)
        return [kept[s.index] for s in batch]  # type: ignore[misc]


def _correct_of(samples: Sequence[Sample], answer: str | None) -> bool | None:
    """The verdict on ``answer``: the most common verdict among the samples that gave it. No
    answer is wrong when the verifier judged the samples (it knows the reference), as in
    majority voting, where a draw nobody votes in is incorrect; unknown when it judged none."""
    if answer is None:
        judged = any(s.state == SampleState.DONE and s.correct is not None for s in samples)
        return False if judged else None
    verdicts = Counter(s.correct for s in samples if s.answer == answer and s.correct is not None)
    return verdicts.most_common(1)[0][0] if verdicts else None
