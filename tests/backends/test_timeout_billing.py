"""Requests that time out after they were sent: a hosted API runs them to the end and may bill
them. With ``bill_timeouts`` each such attempt is counted at the request's upper bound, so a
budget holds and the spend says what may have been billed; a connect timeout (nothing reached the
server) counts nothing, and ``bill_timeouts=false`` (a local server's default) counts nothing."""

from __future__ import annotations

import asyncio
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="the openai backend needs httpx: pip install 'budgetlab[openai]'")

from rich.console import Console  # noqa: E402

from budgetlab.analysis import build_report  # noqa: E402
from budgetlab.analysis._timeouts import timed_out_note, timed_out_spend  # noqa: E402
from budgetlab.backends import DrawRequest  # noqa: E402
from budgetlab.backends._openai import OpenAIBackend  # noqa: E402
from budgetlab.backends._openai._wire import ConfigSpec  # noqa: E402
from budgetlab.cli._render import print_report  # noqa: E402
from budgetlab.core import Problem, Sample, SampleState  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.errors import BudgetlabError, InputError  # noqa: E402
from budgetlab.tasks import arithmetic_problems  # noqa: E402
from budgetlab.testing import FaultyServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _openai_support import CHAT, FAST, cfg, clean_openai_env, do_run, stored  # noqa: E402, F401 (the fixture applies by import)

PRICED = {"max_tokens": 8, "price_in": 1000.0, "price_out": 2000.0}  # dollars large enough to see
HANGS = "fault/sleep=30"  # answers long after the client's timeout
BILLED = {"timeout": 0.2, "max_attempts": 2, "bill_timeouts": True}


def _bound(config, problem: Problem) -> tuple[int, int]:
    """(prompt tokens, completion tokens): one attempt's upper bound for one sample."""
    spec = ConfigSpec.build(config, {})
    return spec.prompt_bound(spec.prompt(problem)), spec.max_tokens


def _cost(prompt_tokens: int, completion_tokens: int) -> float:
    return (prompt_tokens * PRICED["price_in"] + completion_tokens * PRICED["price_out"]) / 1e6


def test_a_request_that_times_out_on_every_attempt_is_counted_at_its_bound_for_each_attempt(tmp_path: Path) -> None:
    problems = arithmetic_problems(n=2)
    config = cfg(HANGS, **PRICED)
    with FaultyServer(models=[HANGS]) as srv:
        do_run(tmp_path, srv.url, config, problems=problems, k=2, options=BILLED)
        assert srv.count(CHAT) == 2 * 2  # one request of n=2 per problem, 2 attempts each
    info, samples = stored(tmp_path)
    assert len(samples) == 4 and all(s.state is SampleState.FAILED for s in samples)
    for problem in problems:
        prompt_bound, max_tokens = _bound(config, problem)
        mine = [s for s in samples if s.problem == problem.id]
        # The two samples share the request: its prompt's bound is split between them, and each
        # has its own max_tokens; twice, for the two attempts.
        assert sum(s.prompt_tokens for s in mine) == 2 * prompt_bound
        assert all(s.completion_tokens == 2 * max_tokens for s in mine)
        assert sum(s.cost for s in mine) == pytest.approx(_cost(2 * prompt_bound, 2 * 2 * max_tokens))
        for s in mine:
            assert s.details["billed_estimate"] == {
                "timed_out_attempts": 2, "prompt_tokens": s.prompt_tokens, "completion_tokens": s.completion_tokens,
                "cost": pytest.approx(s.cost),
            }  # fmt: skip
            assert "may have billed" in (s.error or "")
    assert info.spent.dollars == pytest.approx(sum(s.cost for s in samples)) and info.spent.dollars > 0
    assert info.spent.tokens == sum(s.prompt_tokens + s.completion_tokens for s in samples)
    assert info.spent.samples == 0
    # The report's note says how much of the spend is that estimate.
    counted = timed_out_spend(samples)
    assert counted == {"samples": 4, "failed": 4, "tokens": info.spent.tokens, "dollars": pytest.approx(info.spent.dollars)}
    note = timed_out_note({"spent": info.spent.to_dict(), "timed_out": counted})
    assert note == (f"of the ${info.spent.dollars:.4f} spent, up to ${info.spent.dollars:.4f} is an estimate for 4 samples "
                    "whose requests timed out after they were sent, which the provider may have billed")
    report = build_report(str(tmp_path / "store.db"), "r")
    assert report["timed_out"] == counted
    console = Console(width=200, record=True)
    print_report(console, report)
    assert note in console.export_text()


def test_a_sample_whose_requests_all_timed_out_is_drawn_again_by_the_next_invocation(tmp_path: Path) -> None:
    problems = arithmetic_problems(n=2)
    config = cfg(HANGS, **PRICED)
    with FaultyServer(models=[HANGS]) as srv:
        first = do_run(tmp_path, srv.url, config, problems=problems, k=1, options=BILLED)
        spent_first = stored(tmp_path)[0].spent
        # Nothing came back: the run says so, as for any failure that cost nothing, and a new
        # invocation draws them again; what the timed-out attempts may have cost stays spent.
        assert first.state is RunState.STOPPED and first.failed == 2
        assert "run it again to draw them again" in first.stopped_because
        again = do_run(tmp_path, srv.url, config, problems=problems, k=1, options=BILLED)
        assert srv.count(CHAT) == 2 * 2 * 2  # both problems' 2 attempts, in each invocation
    info, samples = stored(tmp_path)
    assert again.drawn == 2 and again.failed == 2
    assert info.spent.dollars == pytest.approx(2 * spent_first.dollars) and spent_first.dollars > 0
    assert info.spent.tokens == 2 * spent_first.tokens


def test_a_dollar_budget_holds_when_every_request_times_out(tmp_path: Path) -> None:
    problems = arithmetic_problems(n=12)
    config = cfg(HANGS, **PRICED)
    # What one sample reserves: both attempts at its bound (the problems' prompts are alike in size).
    reserved = max(_cost(2 * p, 2 * t) for p, t in (_bound(config, problem) for problem in problems))
    limit = 3.5 * reserved
    with FaultyServer(models=[HANGS]) as srv:
        outcome = do_run(tmp_path, srv.url, config, problems=problems, k=1, options=BILLED, concurrency=4,
                         budget=f"dollars={limit!r}")  # fmt: skip
    info, samples = stored(tmp_path)
    # Before, timed-out requests cost $0: every sample was sent, the run stopped on 12 failures.
    assert outcome.stopped_because.startswith("budget: dollars"), outcome.stopped_because
    assert 0 < info.spent.dollars <= limit
    assert info.spent.dollars == pytest.approx(sum(s.cost for s in samples))
    assert sum(s.state is SampleState.FAILED for s in samples) == 3


def test_a_timed_out_attempt_before_an_answer_is_counted_on_the_sample_drawn(tmp_path: Path) -> None:
    problem = arithmetic_problems(n=1)
    model = "fault/sleep=30*1"  # the first request hangs, the retry is answered
    config = cfg(model, **PRICED)
    with FaultyServer(models=[model]) as srv:
        do_run(tmp_path, srv.url, config, problems=problem, k=1, options=BILLED)
        answered = srv.requests[-1].response["usage"]
    _, (sample,) = stored(tmp_path)
    _, max_tokens = _bound(config, problem[0])
    assert sample.state is SampleState.DONE
    # The answer says how many tokens the prompt is: the timed-out attempt sent the same prompt.
    assert sample.prompt_tokens == 2 * answered["prompt_tokens"]
    assert sample.completion_tokens == answered["completion_tokens"] + max_tokens
    assert sample.cost == pytest.approx(_cost(sample.prompt_tokens, sample.completion_tokens))
    assert sample.details["billed_estimate"]["timed_out_attempts"] == 1


def test_bill_timeouts_false_counts_timed_out_requests_as_free(tmp_path: Path) -> None:
    config = cfg(HANGS, **PRICED)
    with FaultyServer(models=[HANGS]) as srv:
        outcome = do_run(tmp_path, srv.url, config, problems=arithmetic_problems(n=2), k=2,
                         options={**BILLED, "bill_timeouts": False})  # fmt: skip
    info, samples = stored(tmp_path)
    assert all(s.state is SampleState.FAILED and s.cost == 0 and not s.prompt_tokens for s in samples)
    assert all("billed_estimate" not in s.details for s in samples)
    assert info.spent.dollars == 0 and info.spent.tokens == 0
    assert outcome.failed == 4 and "run it again" in outcome.stopped_because  # drawn again by the next run
    assert timed_out_spend(samples) is None and timed_out_note({"spent": info.spent.to_dict(), "timed_out": None}) is None


def test_timeouts_are_billed_by_default_on_a_hosted_api_only_and_reserve_every_attempt() -> None:
    problem = arithmetic_problems(n=1)[0]
    config = cfg("gpt-4o-mini", max_tokens=8)
    request = DrawRequest(problem, config, (Sample("r", problem.id, config.id, 0, 1),))
    hosted = OpenAIBackend("https://api.openai.com/v1", max_attempts=3)
    local = OpenAIBackend("http://127.0.0.1:8000/v1", max_attempts=3)
    assert hosted.bill_timeouts and not local.bill_timeouts
    (one,) = local.estimate(request)
    (every,) = hosted.estimate(request)
    assert every.tokens == 3 * one.tokens and every.dollars == pytest.approx(3 * one.dollars) and one.dollars > 0
    (free,) = OpenAIBackend("https://api.openai.com/v1", max_attempts=3, bill_timeouts=False).estimate(request)
    assert free == one
    with pytest.raises(InputError, match=r"bill_timeouts='no' must be true or false"):
        OpenAIBackend("http://127.0.0.1:8000/v1", bill_timeouts="no")  # type: ignore[arg-type]


@pytest.fixture
def unanswered_port() -> Iterator[int]:
    """A port whose connections never complete: its listener's accept queue is full and nobody
    accepts, so the kernel drops new handshakes (a connect timeout: nothing reached a server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        try:
            filler.connect(("127.0.0.1", port))
        except BlockingIOError:
            pass
        fillers.append(filler)
    try:
        yield port
    finally:
        for s in (*fillers, listener):
            s.close()


def test_a_connect_timeout_counts_nothing(unanswered_port: int) -> None:
    problem = arithmetic_problems(n=1)[0]
    config = cfg("echo", **PRICED)
    request = DrawRequest(problem, config, tuple(Sample("r", problem.id, config.id, i, i) for i in range(2)))
    backend = OpenAIBackend(f"http://127.0.0.1:{unanswered_port}/v1", **{**FAST, **BILLED, "connect_timeout": 0.2})

    async def draw() -> list:
        try:
            return await backend.draw(request)
        finally:
            await backend.aclose()

    try:
        completions = asyncio.run(draw())
    except BudgetlabError as exc:  # the connect timeout won the race with the request's own timer
        assert "cannot reach the server" in str(exc)
    else:  # the request's timer won, before anything was sent
        assert all(c.error and c.cost == 0 and not c.prompt_tokens and not c.completion_tokens for c in completions)
        assert all("billed_estimate" not in c.details for c in completions)
