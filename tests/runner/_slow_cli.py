"""``budgetlab`` CLI with every replay request slowed down by BUDGETLAB_TEST_DRAW_DELAY seconds, so
a test can interrupt a real CLI run mid-way whatever the machine's speed.

Usage: python _slow_cli.py run --backend replay:FILE ...
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

from budgetlab.backends import _replay
from budgetlab.cli._main import main

_DELAY = float(os.environ.get("BUDGETLAB_TEST_DRAW_DELAY", "0.01"))
_draw = _replay.ReplayBackend.draw


async def _slow_draw(self, request):  # type: ignore[no-untyped-def]
    await asyncio.sleep(_DELAY)
    return await _draw(self, request)


_replay.ReplayBackend.draw = _slow_draw  # type: ignore[method-assign]

if __name__ == "__main__":
    # Ctrl-C as in a terminal, even if this was started from a shell that ignores SIGINT (a background
    # job); or, with BUDGETLAB_TEST_SIGINT_IGNORED=1, as such a background job, to which only SIGTERM comes.
    ignored = os.environ.get("BUDGETLAB_TEST_SIGINT_IGNORED") == "1"
    signal.signal(signal.SIGINT, signal.SIG_IGN if ignored else signal.default_int_handler)
    sys.exit(main(sys.argv[1:]))
