"""Server behaviours of real OpenAI-compatible APIs that the basic fault kinds do not cover: an
exhausted quota (429 insufficient_quota), a prompt too long for the model (400 on the first
request of n), a reasoning model cut by max_tokens before it answers (no content,
finish_reason=length), and an empty answer that was billed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="the openai backend needs httpx: pip install 'budgetlab[openai]'")

from budgetlab.backends._openai._wire import RequestFailed, parse_answer  # noqa: E402
from budgetlab.core import Problem, SampleState  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.errors import BudgetlabError  # noqa: E402
from budgetlab.testing import FaultyServer, faulty_server  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _openai_support import CHAT, URL, cfg, clean_openai_env, do_run, stored  # noqa: E402, F401 (the fixture applies by import)

# The server answers "echo SEED" (2 tokens) to a prompt without a question: max_tokens=1 cuts it.
CHAT_PROBLEMS = [Problem(f"p{i}", prompt=f"Say something {i}.", reference="0") for i in range(2)]


def test_an_exhausted_quota_stops_the_run_at_once_instead_of_retrying_every_request(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # OpenAI answers 429 insufficient_quota when the account has no credit: waiting cannot help,
    # and retrying each request max_attempts times would grind through the whole run.
    monkeypatch.setitem(faulty_server._STATUS_ERRORS, 429, (
        "You exceeded your current quota, please check your plan and billing details.",
        "insufficient_quota", "insufficient_quota"))  # fmt: skip
    with FaultyServer(models=["echo", "fault/429"]) as srv:
        with pytest.raises(BudgetlabError) as err:
            do_run(tmp_path, srv.url, cfg("fault/429", max_tokens=8), n=1, concurrency=2)
        message = str(err.value)
        assert "\n" not in message and "quota" in message and "billing" in message
        assert srv.count(CHAT) == 1  # not retried
        info, _ = stored(tmp_path)
        assert info.state is RunState.FAILED


def test_a_400_for_the_prompt_itself_does_not_turn_off_n_for_the_rest_of_the_run(tmp_path: Path) -> None:
    # The first problem's prompt is too long: its request of n=2 and the single requests drawn
    # after it are all refused. That proves nothing about n, so the other problems still get
    # one request of n each (n=1 requests would bill each prompt k times).
    with FaultyServer(models=["echo"]) as srv:
        srv.script("400", "400", "400")
        do_run(tmp_path, srv.url, cfg(max_tokens=8), n=3, k=2, concurrency=2)
        bodies = [r.body for r in srv.requests if r.path == CHAT]
        assert [b.get("n", 1) for b in bodies[:3]] == [2, 1, 1]
        assert [b.get("n", 1) for b in bodies[3:]] == [2, 2]
        _, samples = stored(tmp_path)
        assert sum(s.state is SampleState.DONE for s in samples) == 4


def test_n_stays_off_when_single_requests_succeed_after_a_refused_n(tmp_path: Path) -> None:
    with FaultyServer(models=["echo"], n_mode="reject") as srv:
        do_run(tmp_path, srv.url, cfg(max_tokens=8), n=3, k=2, concurrency=2)
        bodies = [r.body for r in srv.requests if r.path == CHAT]
        assert [b.get("n", 1) for b in bodies] == [2, 1, 1, 1, 1, 1, 1]


def test_a_reasoning_model_cut_by_max_tokens_before_answering_is_an_empty_answer_not_a_failure(tmp_path: Path) -> None:
    # vLLM's reasoning parser sends content null (OpenAI sends "") with finish_reason "length"
    # when max_tokens runs out while the model thinks: a drawn sample with no answer, judged
    # wrong. Failing it instead would drop the long (mostly wrong) samples from pass@k.
    with FaultyServer(models=["echo", "fault/missing=content"]) as srv:
        outcome = do_run(tmp_path, srv.url, cfg("fault/missing=content", max_tokens=1), problems=CHAT_PROBLEMS, k=2)
        assert outcome.state is RunState.DONE, outcome.stopped_because
        _, samples = stored(tmp_path)
        assert all(s.state is SampleState.DONE and s.text == "" and s.correct is False for s in samples)
        assert all(s.details.get("finish_reason") == "length" for s in samples)
        assert all(s.prompt_tokens > 0 for s in samples)


def test_finish_reason_is_kept_in_the_sample_details(tmp_path: Path) -> None:
    with FaultyServer(models=["echo"]) as srv:
        # "What is 1 + 2?" gets "3" (or "4"): one token, not cut.
        problems = [Problem("a", prompt="What is 1 + 2?", reference="3"), CHAT_PROBLEMS[0]]
        do_run(tmp_path, srv.url, cfg(max_tokens=1), problems=problems, k=2)
        _, samples = stored(tmp_path)
        finish = {(s.problem, s.index): s.details.get("finish_reason") for s in samples}
        assert finish == {("a", 0): "stop", ("a", 1): "stop", ("p0", 0): "length", ("p0", 1): "length"}


def test_a_missing_content_that_is_not_a_cut_still_fails_naming_the_field() -> None:
    answer = {"choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": None}}]}
    parsed = parse_answer(json.dumps(answer).encode(), "application/json", "chat", URL)
    assert parsed.choices[0].error is not None and "lacks choices[0].message.content" in parsed.choices[0].error


def test_a_billed_empty_choices_list_does_not_promise_a_redraw() -> None:
    # A failure the server billed stays failed (the next run does not draw it again).
    answer = {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 0}}
    with pytest.raises(RequestFailed) as billed:
        parse_answer(json.dumps(answer).encode(), "application/json", "chat", URL)
    assert "billed 5 tokens" in billed.value.message and "run it again" not in billed.value.message
    del answer["usage"]
    with pytest.raises(RequestFailed) as free:
        parse_answer(json.dumps(answer).encode(), "application/json", "chat", URL)
    assert "run it again" in free.value.message


def test_a_prompt_too_long_for_the_model_says_how_to_fit_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(faulty_server._STATUS_ERRORS, 400, (
        "This model's maximum context length is 4096 tokens. However, you requested 9000 tokens.",
        "invalid_request_error", "context_length_exceeded"))  # fmt: skip
    with FaultyServer(models=["echo", "fault/400"]) as srv:
        do_run(tmp_path, srv.url, cfg("fault/400", max_tokens=8), n=1, k=1)
        _, samples = stored(tmp_path)
        error = samples[0].error or ""
        assert "\n" not in error and "context" in error and "max_tokens=8" in error


def test_a_proxys_html_error_page_is_summed_up_by_its_title() -> None:
    from budgetlab.backends._openai._wire import error_text

    page = b"<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1><hr>nginx</body></html>"
    assert error_text(page) == "an HTML page: 502 Bad Gateway"
    assert error_text(b"<!DOCTYPE html><html><body><h1>Service <b>Unavailable</b></h1></body></html>") == "an HTML page: Service Unavailable"


def test_an_api_key_given_as_an_option_is_sent_but_never_stored(tmp_path) -> None:
    """A store file is readable by whoever can read its folder: the key and credential headers
    stay out of it, and a resumed run sends the key given again."""
    import sqlite3

    from budgetlab.core import Problem, SamplingConfig
    from budgetlab.runner import run

    db = tmp_path / "s.db"
    problems = [Problem(id="p", prompt="2+2?", reference="4")]
    configs = [SamplingConfig(model="echo", backend="openai", params={"max_tokens": 8})]
    with FaultyServer(models=["echo"]) as srv:
        options = {"api_key": "sk-uat-secret", "headers": {"Authorization-Extra": "tok-1", "X-Route": "a"}, "timeout": 5}
        run("r", f"openai:{srv.url}", store=str(db), problems=problems, configs=configs, policy="fixed:k=2",
            backend_options=options)  # fmt: skip
        assert all(r.headers.get("authorization") == "Bearer sk-uat-secret" for r in srv.requests if r.path.endswith("completions"))
        run("r", store=str(db), policy="fixed:k=3", backend_options={"api_key": "sk-uat-secret-2"})
        assert srv.requests[-1].headers.get("authorization") == "Bearer sk-uat-secret-2"
    raw = db.read_bytes() + b"".join(p.read_bytes() for p in tmp_path.glob("s.db-*"))
    assert b"sk-uat-secret" not in raw and b"tok-1" not in raw
    with sqlite3.connect(db) as conn:
        (spec,) = conn.execute("SELECT spec FROM runs").fetchone()
    assert '"X-Route": "a"' in spec and '"timeout": 5' in spec
