"""The problems a paced stream answers, as they arrive.

Standard input is read in a thread: reading it on the event loop would hold every answer in
flight until the next line came (or the stream closed). Each request is timed when its line
comes in, not when a free slot takes it, so the window's arrival forecast sees the real rate.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

__all__ = ["arrivals"]


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
