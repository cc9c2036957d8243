"""One request of the run loop: draw its samples from the backend, then judge each with the
verifier. Plug-ins of the user's are checked here: what they return, and what happens to paid
samples when they break."""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import shlex
import time

from budgetlab.backends import Backend, DrawRequest
from budgetlab.core import Completion, Problem, Sample, SampleState, Verdict
from budgetlab.errors import BudgetlabError
from budgetlab.runner._off_loop import call_verify, plugin_name
from budgetlab.verifiers import Verifier

__all__ = [
    "RECORDED_VERDICT", "UNJUDGED", "UnjudgedDraws", "broken_because", "draw_and_judge", "judge", "judge_hint", "plugin_name",
]  # fmt: skip

# Keys of the details of a sample drawn but not judged (its verifier broke): why, and the verdict
# the backend gave with it (a replay file's recorded answer), which judging it later must see.
UNJUDGED = "unjudged"
RECORDED_VERDICT = "recorded_verdict"


class UnjudgedDraws(BudgetlabError):
    """The verifier failed on a request's samples: they were drawn (and paid for), so they are
    recorded, without a verdict, before the run stops with this error."""

    def __init__(self, message: str, samples: list[Sample]) -> None:
        super().__init__(message)
        self.samples = samples


def judge_hint(run: str) -> str:
    """The end of a "verifier failed" message that says how to judge the kept samples; once they
    are judged, ``budgetlab judge`` replaces it in the run's stop reason."""
    return f", and `budgetlab judge {shlex.quote(run)}` to judge the kept ones"


def broken_because(exc: Exception) -> str:
    """Why a verifier broke, in one line: a BudgetlabError's own message (it names its fix, e.g.
    the callable verifier's "fix the function"), else the exception's type and first line."""
    if isinstance(exc, BudgetlabError):
        return str(exc).splitlines()[0]
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:200]


async def _verdict(verifier: Verifier, problem: Problem, completion: Completion) -> tuple[Verdict, float]:
    """The verdict and the seconds judging took."""
    started = time.perf_counter()
    averify = getattr(verifier, "averify", None)
    if averify is not None:
        verdict = await averify(problem, completion)
        seconds = time.perf_counter() - started
    else:
        verdict, seconds = await call_verify(verifier, problem, completion)
    if not isinstance(verdict, Verdict):
        raise TypeError(f"it returned {type(verdict).__name__} {verdict!r:.40}, not a budgetlab.Verdict")
    return verdict, seconds


def _drawn(sample: Sample, completion: Completion) -> Sample:
    """``sample`` with what drawing it gave and cost, not judged yet."""
    return dataclasses.replace(
        sample,
        text=completion.text,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
        cost=completion.cost,
        latency=completion.latency,
        logprob=completion.logprob,
        details=dict(completion.details),
    )


async def judge(verifier: Verifier, sample: Sample, problem: Problem, completion: Completion) -> Sample:
    """``sample`` drawn as ``completion`` and judged by ``verifier`` (failed if the draw failed)."""
    if completion.error is not None:
        return dataclasses.replace(_drawn(sample, completion), state=SampleState.FAILED, logprob=None, error=completion.error)
    verdict, took = await _verdict(verifier, problem, completion)
    seconds = verdict.seconds or took
    return dataclasses.replace(  # one replace, not _drawn's and then this: it is per sample, on the hot path
        sample,
        state=SampleState.DONE,
        text=completion.text,
        answer=verdict.answer,
        correct=verdict.correct,
        score=verdict.score if verdict.score is not None else completion.score,
        prompt_tokens=completion.prompt_tokens + verdict.prompt_tokens,  # a judge model's tokens count too
        completion_tokens=completion.completion_tokens + verdict.completion_tokens,
        cost=completion.cost + verdict.cost,
        latency=completion.latency,
        verify_seconds=seconds,
        logprob=completion.logprob,
        details={**completion.details, **verdict.details},
    )


def _unjudged(sample: Sample, completion: Completion, message: str) -> Sample:
    """``sample`` drawn as ``completion``, done but without a verdict: ``budgetlab judge`` gives it one."""
    details = {**completion.details, UNJUDGED: message}
    recorded = {"answer": completion.answer, "correct": completion.correct, "score": completion.score}
    if any(v is not None for v in recorded.values()):
        details[RECORDED_VERDICT] = recorded
    return dataclasses.replace(_drawn(sample, completion), state=SampleState.DONE, details=details)


async def draw_and_judge(backend: Backend, verifier: Verifier, request: DrawRequest, *, run: str | None = None) -> list[Sample]:
    """The samples of ``request``, drawn and judged. If the verifier breaks, they are recorded
    unjudged in :class:`UnjudgedDraws`; its message names ``budgetlab judge RUN`` when ``run``
    (a stored run's name) is given."""
    started = time.perf_counter()
    try:
        completions = backend.draw(request)
        if inspect.isawaitable(completions):  # the contract's async def; a plain def works too
            completions = await completions
    except BudgetlabError:
        raise
    except Exception as exc:  # one failed request fails its samples, never the run
        completions = [Completion(error=f"{type(exc).__name__}: {exc}")] * len(request.samples)
    if not isinstance(completions, (list, tuple)) or not all(isinstance(c, Completion) for c in completions):
        wrong = completions if not isinstance(completions, (list, tuple)) else next(c for c in completions if not isinstance(c, Completion))
        raise BudgetlabError(
            f"backend {plugin_name(backend)!r} returned {type(wrong).__name__} {wrong!r:.40} from draw; it must return "
            "a list of budgetlab.Completion, one per sample of the request (see docs/plugins.md)"
        )
    if len(completions) != len(request.samples):
        completions = [
            Completion(error=f"backend returned {len(completions)} completions for {len(request.samples)} samples")
        ] * len(request.samples)
    elapsed = time.perf_counter() - started
    completions = [c if c.latency else dataclasses.replace(c, latency=elapsed) for c in completions]
    if len(completions) > 1 and _judges_at_once(verifier):
        return await _judge_at_once(verifier, request, list(completions), run)
    out: list[Sample] = []
    for sample, completion in zip(request.samples, completions):
        try:
            out.append(await judge(verifier, sample, request.problem, completion))
        except Exception as exc:  # a verifier of the user's that breaks: keep what was paid for, then stop
            message = _broken_message(verifier, sample, exc, run)
            # This sample and the rest of the request were drawn: recorded with no verdict (a
            # failed draw stays failed, which judging does without the verifier).
            rest = list(zip(request.samples, completions))[len(out):]
            unjudged = [
                _unjudged(s, c, message) if c.error is None else await judge(verifier, s, request.problem, c)
                for s, c in rest
            ]
            raise UnjudgedDraws(message, out + unjudged) from exc
    return out


def _judges_at_once(verifier: Verifier) -> bool:
    """Whether a request's samples are judged at once rather than one after another: only for a
    plain ``verify`` declared safe to call concurrently (``verify_threads`` over 1), whose worker
    threads would otherwise idle while one request's samples wait for each other (``-k 8
    --concurrency 8``: one call at a time, whatever ``threads`` says)."""
    threads = getattr(verifier, "verify_threads", 1)
    return getattr(verifier, "averify", None) is None and type(threads) is int and threads > 1


async def _judge_at_once(verifier: Verifier, request: DrawRequest, completions: list[Completion],
                         run: str | None) -> list[Sample]:  # fmt: skip
    pairs = list(zip(request.samples, completions))
    results = await asyncio.gather(*(judge(verifier, s, request.problem, c) for s, c in pairs), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, Exception):  # Ctrl-C, cancelled
            raise result
    broken = next(((s, r) for (s, _), r in zip(pairs, results) if isinstance(r, Exception)), None)
    if broken is None:
        return [r for r in results if isinstance(r, Sample)]
    message = _broken_message(verifier, *broken, run)
    # All were drawn and paid for: those judged keep their verdicts, the others are recorded without one.
    kept = [r if isinstance(r, Sample) else _unjudged(s, c, message) for (s, c), r in zip(pairs, results)]
    raise UnjudgedDraws(message, kept) from broken[1]


def _broken_message(verifier: Verifier, sample: Sample, exc: Exception, run: str | None) -> str:
    later = judge_hint(run) if run is not None else ""
    return (
        f"verifier {plugin_name(verifier)!r} failed on problem {sample.problem!r} ({broken_because(exc)}); the samples "
        "already drawn are kept without a verdict and not drawn again; fix the verifier, then run the same "
        f"command again to draw the rest{later}"
    )
