"""``budgetlab pace``: answer a stream of problems under one budget, spending more on hard ones.

The answers file is the ledger: each answered problem is one JSON line (answer, samples, spend,
price), written before the next problem starts. Running the same command again skips the
problems it holds and replays their spend into the pacer, so an interrupted stream goes on
where it stopped with the same price and without paying again for what was answered. Beside it,
``<output stem>.samples.jsonl`` journals every sample as it is judged: a problem cut short by
the interruption takes the samples it had drawn from there instead of paying for them again.
A request whose every sample failed has no answer: it is reported with the backend's reason
and left out of the ledger, so that the same command retries it (and exits 1 meanwhile).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from budgetlab.cli._pace_input import (
    answered_rows,
    arrivals,
    check_output,
    journal_path,
    ledger_is_full,
    open_ledger,
    parse_budget,
    stdin_problems,
)
from budgetlab.errors import InputError

__all__ = ["add_pace_parser", "cmd_pace"]

def add_pace_parser(sub: Any) -> None:
    p = sub.add_parser(
        "pace",
        help="answer a stream of problems under one budget, spending more samples on the hard ones",
        description="Answers each problem in turn by majority vote over samples drawn while a Bayes stopping rule, "
        "at a price on spend that a pacer learns online, says they pay; the budget lasts for --requests problems "
        "and is never exceeded. The answers file is the ledger: the same command again resumes. A request whose samples "
        "all fail is reported, left out of the ledger (the same command retries it) and makes the exit status 1.",
    )
    p.add_argument("--backend", required=True, help="where samples come from, e.g. embedded, openai:URL or replay:samples.jsonl")
    p.add_argument("--config", metavar="SPEC", help="the sampling configuration, e.g. model=smollm2,temperature=0.8,max_tokens=8 "
                   "(default: the backend's first)")  # fmt: skip
    source = p.add_mutually_exclusive_group()
    source.add_argument("--problems", help="JSONL file of problems, or - to read them from standard input as they come "
                        "(default: the problems the backend lists)")  # fmt: skip
    source.add_argument("--task", help="a generated task, e.g. arithmetic:n=100,digits=1")
    p.add_argument("--budget", required=True, help="one limit: samples=N, tokens=N or dollars=X, for all the requests")
    p.add_argument("--requests", type=int, help="how many requests the budget is for (default: the number of problems; "
                   "required with --problems -; with --window, a first guess at those the window brings)")  # fmt: skip
    p.add_argument("--window", help="the budget is for the requests that come within this time, e.g. 30m, 24h or 7d, "
                   "from the first request (kept in the ledger across resumes); the number expected is revised from "
                   "the arrival rate as they come")  # fmt: skip
    p.add_argument("--output", required=True, help="answers JSONL, one line per problem (the ledger a rerun resumes from; "
                   "every sample drawn is kept beside it in <stem>.samples.jsonl)")  # fmt: skip
    p.add_argument("--verifier", default="auto", help="extracts (and, with a reference, checks) each sample's answer (default auto)")
    p.add_argument("--max-samples", type=int, default=40, help="most samples one problem may draw (default 40)")
    p.add_argument("--price", type=float, help="starting price, accuracy per unit of spend (default: calibrated on the rule's prior)")
    p.add_argument("--seed", type=int, default=0, help="sample seeds derive from it (default 0)")
    p.add_argument("--concurrency", type=int, default=1, help="problems answered at once (default 1: in order, and a "
                   "resumed stream is identical to an uninterrupted one)")  # fmt: skip
    p.add_argument("--backend-arg", action="append", metavar="KEY=VALUE", help="an option of the backend")
    p.add_argument("--replay-seed", type=int, help="replay backend: draw recordings in a seeded random order")
    p.add_argument("--quiet", action="store_true", help="no line per answered problem")


def _now() -> float:
    return time.time()


@dataclass
class _Stream:
    backend: Any
    config: Any
    verifier: Any
    rule: Any
    unit: str
    budget: float
    requests: int
    problems: Iterator[Any]
    done: list[dict]  # the answers already in the ledger
    out_path: Path
    window: float | None = None  # seconds: the budget is for the requests within this time
    live: bool = False  # the problems come from an open stream (standard input)
    listed: tuple[Any, ...] = ()  # the problems, when known in advance


def cmd_pace(args: argparse.Namespace, console: Console) -> int:
    from budgetlab.backends import make_backend
    from budgetlab.cli._main import _backend_options
    from budgetlab.core.spec import parse_config
    from budgetlab.policies import BayesStopping
    from budgetlab.tasks import load_problems, load_task
    from budgetlab.verifiers import make_verifier

    unit, budget = parse_budget(args.budget)
    out_path = check_output(args.output)
    done = answered_rows(out_path)
    verifier = make_verifier(args.verifier)
    backend = make_backend(args.backend, _backend_options(args))
    if args.problems == "-":
        if args.requests is None:
            raise InputError("--problems - reads an open-ended stream: give --requests N, the requests the budget is for")
        problems: Iterator[Any] = stdin_problems()
        requests, listed = args.requests, []  # not known yet: a request the backend cannot serve fails alone
    else:
        if args.problems or args.task:
            listed = load_problems(args.problems) if args.problems else load_task(args.task)
        elif hasattr(backend, "problems"):
            listed = backend.problems()
        else:
            raise InputError(f"{args.backend} lists no problems; give --problems FILE, --problems - or --task")
        problems, requests = iter(listed), args.requests if args.requests is not None else len(listed)
    if requests < 1:
        raise InputError(f"--requests must be at least 1, got {requests}")
    window = None
    if args.window is not None:
        from budgetlab.pacing import parse_duration

        if args.requests is None:
            raise InputError("--window needs --requests N: a first guess at the requests the window brings, revised as they come")
        window = parse_duration(args.window)
    if args.concurrency < 1:
        raise InputError(f"--concurrency must be at least 1, got {args.concurrency}")
    if args.max_samples < 1:
        raise InputError(f"--max-samples must be at least 1, got {args.max_samples}; e.g. --max-samples 40")
    if args.price is not None and not (args.price > 0 and args.price < float("inf")):
        raise InputError(f"--price must be a number above 0 (accuracy per unit of spend), got {args.price:g}; "
                         "leave it out to calibrate one")  # fmt: skip
    if args.config:
        config = parse_config(args.config, args.backend.partition(":")[0])
    else:
        offered = backend.configs() if hasattr(backend, "configs") else []
        if not offered:
            raise InputError(f"{args.backend} lists no configuration; give one with --config model=NAME,...")
        config = offered[0]
    full = ledger_is_full(done, unit, budget, requests, window, out_path)
    if full is not None:
        console.print(full, highlight=False, markup=False, soft_wrap=True)
        return 0
    # Before anything is drawn: a configuration (or listed problem) the backend cannot serve is
    # one error now, not every request answered with nothing.
    backend.check(listed, [config])
    stream = _Stream(backend, config, verifier, BayesStopping(max_samples=args.max_samples), unit, budget, requests,
                     problems, done, out_path, window, live=args.problems == "-", listed=tuple(listed))  # fmt: skip
    try:
        return asyncio.run(_serve(args, console, stream))
    except KeyboardInterrupt:
        console.print(f"interrupted; {out_path} keeps every answer so far. Resume with the same command.")
        return 130


async def _serve(args: argparse.Namespace, console: Console, s: _Stream) -> int:
    from budgetlab.pacing import (
        ArrivalForecast,
        BudgetPacer,
        PacedSolver,
        SampleJournal,
        calibrate_price,
        prior_problems,
        sample_bound,
    )

    forecast = ArrivalForecast(s.window, s.requests) if s.window is not None else None
    window_start = next((float(r["window_start"]) for r in reversed(s.done) if "window_start" in r), None)
    arrived = len(s.done)
    answered = {row["problem"] for row in s.done}
    journal = SampleJournal(journal_path(s.out_path), skip=answered)
    correct = [bool(row["correct"]) for row in s.done if row.get("correct") is not None]
    new = 0
    try:
        stream = arrivals(s.problems, live=s.live, clock=_now)
        first = await anext(stream, None)
        if first is None:  # only an open stream can be empty: a problems file or task with none is refused earlier
            raise InputError('--problems -: standard input ended before any problem came; send one JSON problem per line, '
                             'e.g. {"id": "q1", "prompt": "What is 2 + 3?", "reference": "5"}')  # fmt: skip
        # One sample's bound: the reserve for each later request. Problems known in advance each get
        # their first sample's worth (the dearest of them; all of them, so that a resumed stream paces
        # as the uninterrupted one did), a stream the first problem's.
        per_sample = max(sample_bound(s.backend, s.verifier, s.config, p, s.unit) for p in s.listed or (first[0],))
        if per_sample <= 0:
            fix = ("give --budget samples=N instead, or use a backend that reports token counts" if s.unit == "tokens" else
                   "give the model's prices (--backend-arg prices=prices.toml), or --budget samples=N instead")  # fmt: skip
            raise InputError(f"a sample of {s.config.name} costs nothing in {s.unit} as far as {args.backend} knows, "
                             f"so a {s.unit} budget cannot pace it; {fix}")  # fmt: skip
        price = args.price
        if price is None:
            pools = prior_problems(s.rule, 300, seed=args.seed)
            price = calibrate_price(s.rule, pools, s.budget / s.requests, per_sample=per_sample)
        pacer = BudgetPacer(s.budget, s.requests, price=price, min_spend=per_sample)
        for row in s.done:  # the ledger: the answered problems' spend, in order, gives the same price
            pacer.record(float(row["spent"]))
        solver = PacedSolver(s.backend, s.config, s.verifier, s.rule, pacer, unit=s.unit, seed=args.seed, journal=journal)
        in_flight: set[asyncio.Task] = set()
        failures: list[BaseException] = []
        unanswered: list[str] = []  # every sample failed: left out of the ledger, so a rerun retries them
        taken: set[str] = set()  # the ids this invocation's stream brought, to note a duplicate
        noted: set[str] = set()  # ... once
        slots = asyncio.Semaphore(args.concurrency)
        with open_ledger(s.out_path) as out:

            async def answer(problem: Any) -> None:
                nonlocal new
                try:
                    result = await solver.solve(problem)
                except BaseException as exc:  # e.g. the server does not serve the model: stop the stream
                    failures.append(exc)
                    raise
                finally:
                    slots.release()
                if result.error is not None:  # nothing to answer with: kept out of the ledger, so a rerun retries it
                    unanswered.append(result.problem)
                    console.print(f"{result.problem}: not answered, {_samples(len(result.samples))} failed: "
                                  f"{_first_line(result.error)}", highlight=False, markup=False, soft_wrap=True)  # fmt: skip
                    return
                row = {"problem": result.problem, "answer": result.answer, "correct": result.correct,
                       "samples": len(result.samples), "spent": result.spent, "price": result.price, "cut": result.capped}  # fmt: skip
                if window_start is not None:
                    row["window_start"] = window_start
                out.write(json.dumps(row) + "\n")  # one line per answer, whole: the ledger
                out.flush()
                new += 1
                if result.correct is not None:
                    correct.append(result.correct)
                if not args.quiet:
                    mark = "" if result.correct is None else (" right" if result.correct else " wrong")
                    console.print(f"{result.problem}: {result.answer!r}{mark} · {_samples(len(result.samples))} · spent {result.spent:g} "
                                  f"· price {result.price:.3g}{' · cut by the budget' if result.capped else ''}", highlight=False, markup=False)  # fmt: skip

            try:
                async for problem, now in _chain(first, stream):
                    if problem.id in taken:
                        if problem.id not in noted:
                            noted.add(problem.id)
                            console.print(f"note: request {problem.id!r} came again; the duplicate was skipped (each id is "
                                          "answered once)", highlight=False, markup=False)  # fmt: skip
                        continue
                    taken.add(problem.id)
                    if problem.id in answered:  # in the ledger already: a resumed stream
                        continue
                    if forecast is not None:
                        window_start = now if window_start is None else window_start
                        if now - window_start > forecast.window:
                            console.print(f"the {args.window} window ended after {arrived} requests; {problem.id} and later "
                                          "are not answered", highlight=False, markup=False)  # fmt: skip
                            break
                        arrived += 1
                        pacer.expect(forecast.total(arrived, now - window_start), within_budget=True)
                    await slots.acquire()
                    if failures:
                        slots.release()
                        break
                    while _short(pacer.allowance(), per_sample) and in_flight:  # reservations in flight may come back
                        await asyncio.wait(in_flight, return_when=asyncio.FIRST_COMPLETED)
                    if _short(pacer.allowance(), per_sample):
                        slots.release()
                        console.print(f"the budget is spent after {_requests(pacer.served)}; {problem.id} and later are not answered",
                                      highlight=False, markup=False)  # fmt: skip
                        break
                    task = asyncio.create_task(answer(problem))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
            except Exception:  # e.g. a malformed line: what is in flight was paid for, so it is written first
                await asyncio.gather(*in_flight, return_exceptions=True)
                raise
            if in_flight:
                await asyncio.gather(*in_flight, return_exceptions=True)  # the answers in flight are kept
            if failures:
                raise failures[0]
    finally:
        journal.close()
        await s.backend.aclose()
    accuracy = f" · {100 * sum(correct) / len(correct):.1f}% of {len(correct)} checked answers right" if correct else ""
    answered_now = len(s.done) + new
    answered_of = (f"{answered_now} requests answered, of about {pacer.requests} expected in the {args.window} window"
                   if forecast else _answered_of(answered_now, s.requests))  # fmt: skip
    failed = (f" · {len(unanswered)} not answered (no sample finished; the same command retries "
              f"{'it' if len(unanswered) == 1 else 'them'})" if unanswered else "")  # fmt: skip
    console.print(f"{answered_of} ({new} now){failed} · spent {pacer.spent:g} of {s.budget:g} {s.unit}"
                  f"{accuracy} · answers in {s.out_path}", highlight=False, markup=False)  # fmt: skip
    return 1 if unanswered else 0


def _short(allowance: float, per_sample: float) -> bool:
    """Whether ``allowance`` cannot pay for one sample, with the pacer's own tolerance: a dollar budget
    is a sum of float costs, and a request whose minimum the pacer kept must not lose it to rounding."""
    return allowance + 1e-9 < per_sample


def _answered_of(answered: int, planned: int) -> str:
    """``--requests`` is what the budget was planned for, not a cap: an open stream can bring
    more, and "12 of 10" would read as a miscount."""
    if answered <= planned:
        return f"{answered} of {planned} requests answered"
    return f"{answered} requests answered, {answered - planned} more than the {planned} the budget was planned for"


def _requests(n: int) -> str:
    return f"{n} request{'' if n == 1 else 's'}"


def _samples(n: int) -> str:
    return f"{n} sample{'' if n == 1 else 's'}"


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), text)


async def _chain(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for item in rest:
        yield item
