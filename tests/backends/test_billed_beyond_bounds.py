"""A server that bills more than budgetlab's bounds for a request (a system prompt its template
adds, reasoning tokens billed beyond max_tokens): the backend learns the excess from the first
replies and reserves it for every later request, so the budget holds once it has been seen."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="the openai backend needs httpx: pip install 'budgetlab[openai]'")

from budgetlab.core import SamplingConfig  # noqa: E402
from budgetlab.runner import run  # noqa: E402
from budgetlab.stores import open_store  # noqa: E402
from budgetlab.tasks import arithmetic_problems  # noqa: E402
from budgetlab.testing import FaultyServer  # noqa: E402

FAST = {"backoff": 0.01, "max_backoff": 0.05}


@pytest.mark.parametrize(("system_tokens", "hidden_tokens", "limit"), [(2000, 0, 30_000), (0, 200, 12_000)])
def test_a_token_budget_holds_when_the_server_bills_beyond_the_bounds(
    tmp_path: Path, system_tokens: int, hidden_tokens: int, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "BUDGETLAB_PRICES"):
        monkeypatch.delenv(var, raising=False)
    with FaultyServer(models=["echo"], system_tokens=system_tokens, hidden_tokens=hidden_tokens) as srv:
        outcome = run(
            "r", f"openai:{srv.url}", store=str(tmp_path / "s.db"), backend_options=FAST, concurrency=8,
            policy_args={"k": 2}, problems=arithmetic_problems(n=40), budget=f"tokens={limit}",
            configs=[SamplingConfig(model="echo", backend="openai", params={"max_tokens": 8})],
        )  # fmt: skip
    with open_store(str(tmp_path / "s.db")) as store:
        samples = [s for s in store.samples("r") if s.state.value == "done"]
    # Before, every request in flight near the end reserved without the excess: 36,917 tokens
    # spent against 30,000, and 12,177 against 12,000.
    assert outcome.stopped_because.startswith("budget: tokens")
    assert outcome.spent.tokens <= limit
    assert len(samples) >= 20


def test_requests_a_server_refuses_as_sent_say_to_change_the_configuration_not_to_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # o1 answering "'max_tokens' is not supported with this model": running again unchanged is
    # refused the same way, so "run it again" was the wrong advice.
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "BUDGETLAB_PRICES"):
        monkeypatch.delenv(var, raising=False)
    with FaultyServer(models=["echo", "fault/400"]) as srv:
        outcome = run(
            "r", f"openai:{srv.url}", store=str(tmp_path / "s.db"), backend_options=FAST, policy_args={"k": 1},
            problems=arithmetic_problems(n=2), configs=[SamplingConfig(model="fault/400", backend="openai", params={"max_tokens": 8})],
        )  # fmt: skip
    assert outcome.state.value == "stopped"
    assert "rejected the request (400" in outcome.stopped_because
    assert outcome.stopped_because.endswith("the server refuses the request as sent: change what its message names (a "
                                             "parameter or value it does not accept) in --config, then run it again")
