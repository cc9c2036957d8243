"""A server that bills more than budgetlab's bounds for a request (a system prompt its template
adds, reasoning tokens billed beyond max_tokens): the backend learns the excess from the first
replies and reserves it for every later request, so the budget holds once it has been seen. And
a request the server refuses as sent says what to change."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="the openai backend needs httpx: pip install 'budgetlab[openai]'")

from budgetlab.core import SampleState  # noqa: E402
from budgetlab.testing import FaultyServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _openai_support import cfg, clean_openai_env, do_run, stored  # noqa: E402, F401 (the fixture applies by import)


@pytest.mark.parametrize(("system_tokens", "hidden_tokens", "limit"), [(2000, 0, 30_000), (0, 200, 12_000)])
def test_a_token_budget_holds_when_the_server_bills_beyond_the_bounds(
    tmp_path: Path, system_tokens: int, hidden_tokens: int, limit: int
) -> None:
    with FaultyServer(models=["echo"], system_tokens=system_tokens, hidden_tokens=hidden_tokens) as srv:
        outcome = do_run(tmp_path, srv.url, cfg(max_tokens=8), n=40, k=2, concurrency=8, budget=f"tokens={limit}")
    _, samples = stored(tmp_path)
    # Before, every request in flight near the end reserved without the excess: 36,917 tokens
    # spent against 30,000, and 12,177 against 12,000.
    assert outcome.stopped_because.startswith("budget: tokens")
    assert outcome.spent.tokens <= limit
    assert sum(s.state is SampleState.DONE for s in samples) >= 20


def test_requests_a_server_refuses_as_sent_say_to_change_the_configuration_not_to_rerun(tmp_path: Path) -> None:
    # o1 answering "'max_tokens' is not supported with this model": running again unchanged is
    # refused the same way, so "run it again" was the wrong advice.
    with FaultyServer(models=["echo", "fault/400"]) as srv:
        outcome = do_run(tmp_path, srv.url, cfg("fault/400", max_tokens=8), n=2, k=1)
    assert outcome.state.value == "stopped"
    assert "rejected the request (400" in outcome.stopped_because
    assert outcome.stopped_because.endswith("the server refuses the request as sent: change what its message names (a "
                                             "parameter or value it does not accept) in --config, then run it again")
