"""What ``budgetlab pace`` reads: its budget, its ledger (the answers file and the sample journal
beside it) and the problems of its stream, as they arrive.

Standard input is read in a thread: reading it on the event loop would hold every answer in
flight until the next line came (or the stream closed). Each request is timed when its line
comes in, not when a free slot takes it, so the window's arrival forecast sees the real rate.
"""

from __future__ import annotations

import asyncio
import json
import math
import sys
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from budgetlab.cli._output import output_file
from budgetlab.errors import InputError

__all__ = [
    "answered_rows",
    "arrivals",
    "check_output",
    "journal_path",
    "ledger_is_full",
    "open_ledger",
    "parse_budget",
    "stdin_problems",
]

UNITS = ("samples", "tokens", "dollars")


async def arrivals(problems: Iterator[Any], *, live: bool, clock: Callable[[], float]) -> AsyncIterator[tuple[Any, float]]:
    """``(problem, arrival time)`` pairs. ``live``: the problems come from an open stream (read
    in a thread); otherwise they are all at hand and each is timed when it is taken."""
    if not live:
        for problem in problems:
            yield problem, clock()
        return
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Any] = asyncio.Queue()
    end = object()

    def hand_over(item: Any) -> bool:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the loop is closed: the stream was left before its end
            return False
        return True

    def read() -> None:
        try:
            for problem in problems:
                if not hand_over((problem, clock())):
                    return
        except BaseException as exc:  # a malformed line: raised where the stream reaches it
            hand_over(exc)
            return
        hand_over(end)

    threading.Thread(target=read, name="budgetlab-pace-input", daemon=True).start()
    while (item := await queue.get()) is not end:
        if isinstance(item, BaseException):
            raise item
        yield item


def parse_budget(text: str) -> tuple[str, float]:
    """``--budget``: its one unit and amount, finite (the pacer divides it among the requests)."""
    from budgetlab.core import Budget

    one = "--budget for pace must be exactly one of samples=N, tokens=N or dollars=X"
    parts = [part for part in text.split(",") if part.strip()]
    if len(parts) != 1 or parts[0].partition("=")[0].strip() not in UNITS:
        raise InputError(f"{one}, got {text!r}; e.g. --budget samples=1000")
    for part in parts:  # the pacer divides the budget among the requests: it needs a number to divide
        name, _, raw = (word.strip() for word in part.partition("="))
        try:
            value = float(raw)
        except ValueError:
            continue  # not a number at all: Budget.parse says so
        if not math.isfinite(value):
            raise InputError(f"--budget {name}={raw} must be a finite number; e.g. --budget {name}=1000")
        if value <= 0:  # Budget.parse would suggest leaving the limit out, which pace cannot do
            raise InputError(f"--budget {name}={raw} must be positive; e.g. --budget {name}=1000")
    limits = Budget.parse(text).limits()
    units = [u for u in UNITS if u in limits]
    if len(limits) != 1 or not units:
        raise InputError(f"{one}, got {text!r}; e.g. --budget samples=1000")
    return units[0], float(limits[units[0]])


def check_output(text: str) -> Path:
    """The answers file, refused before anything is drawn if it cannot be written."""
    path = output_file(text, "the answers file", "answers.jsonl")
    if journal_path(path).is_dir():
        raise InputError(f"--output {path}: its sample journal {journal_path(path)} is a directory; move it away or give another --output")
    return path


def ledger_is_full(done: list[dict], unit: str, budget: float, requests: int, window: float | None, out_path: Path) -> str | None:
    """Why a ledger that holds more than this invocation asks for gets nothing more (None: it does not)."""
    spent = sum(float(row["spent"]) for row in done)
    if spent > budget + 1e-9:
        return (f"{out_path} already spent {spent:g} {unit} on {len(done)} requests, more than --budget {unit}={budget:g}; "
                "nothing more is answered (give a larger --budget to go on)")  # fmt: skip
    if window is None and len(done) > requests:
        return (f"{out_path} already holds {len(done)} answers, more than --requests {requests}; nothing more is answered "
                "(give a larger --requests to go on)")  # fmt: skip
    return None


def stdin_problems() -> Iterator[Any]:
    """The problems of standard input, one JSON object per line."""
    from budgetlab.tasks._jsonl import _FORMAT, problem_from_json

    for lineno, line in enumerate(sys.stdin, 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise InputError(f"stdin:{lineno}: not valid JSON ({err.msg}); each line must be a problem object with an 'id'") from None
        try:
            problem = problem_from_json(obj, f"stdin:{lineno}")
        except InputError:
            raise
        except (TypeError, ValueError) as err:  # e.g. "metadata": "x" (not an object)
            raise InputError(f"stdin:{lineno}: not a problem ({err}); each line must be {_FORMAT}") from None
        yield problem


def answered_rows(path: Path) -> list[dict]:
    """The answers already in the ledger ``path`` (none if it does not exist yet)."""
    if not path.is_file():
        return []
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            float(row["spent"]), str(row["problem"])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            raise InputError(f"{path}:{lineno}: not an answer line written by budgetlab pace; give another --output") from None
        out.append(row)
    return out


def open_ledger(path: Path) -> Any:
    """The ledger, opened to append one whole line per answer."""
    try:
        return path.open("a")
    except OSError as err:
        raise InputError(f"cannot write the answers to {path} ({err.strerror or err}); give another --output") from None


def journal_path(output: Path) -> Path:
    """Where the samples of the stream answered into ``output`` are journaled."""
    return output.with_name(f"{output.stem}.samples.jsonl")
