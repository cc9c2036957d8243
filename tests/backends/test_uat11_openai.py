"""UAT of the openai backend against the quirks of real servers: n refused while several
requests are in flight (Groq, llama.cpp), DeepSeek's 402 Insufficient Balance, an answer that is
all reasoning (vLLM's reasoning parser, Ollama), llama.cpp's chat-shaped log-probabilities on
/v1/completions, a prompt count of 0 from a prompt cache (Ollama), a status without a reason
phrase (Cloudflare's 524)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="the openai backend needs httpx: pip install 'budgetlab[openai]'")

from budgetlab.backends import DrawRequest  # noqa: E402
from budgetlab.backends._openai import OpenAIBackend  # noqa: E402
from budgetlab.backends._openai._wire import Answer, Choice, parse_answer  # noqa: E402
from budgetlab.core import Sample, SampleState  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.errors import BudgetlabError, InputError  # noqa: E402
from budgetlab.tasks import arithmetic_problems  # noqa: E402
from budgetlab.testing import FaultyServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _openai_support import CHAT, URL, cfg, clean_openai_env, do_run, stored  # noqa: E402, F401 (the fixture applies by import)


def test_n_refused_while_several_requests_of_n_are_in_flight_draws_them_all_one_by_one(tmp_path: Path) -> None:
    # Groq ("'n' : number must be at most 1") and llama.cpp's server ("Only one completion choice
    # is allowed") refuse n > 1 with a 400. The three problems' requests of n=2 go out together:
    # the first refusal taught the backend to draw one by one, but the two refused after it
    # failed their samples (4 of 6) instead of drawing them one by one too.
    with FaultyServer(models=["echo"], n_mode="reject") as srv:
        outcome = do_run(tmp_path, srv.url, cfg(max_tokens=8), n=3, k=2, concurrency=6)
        assert outcome.state is RunState.DONE, outcome.stopped_because
        _, samples = stored(tmp_path)
        assert len(samples) == 6 and all(s.state is SampleState.DONE for s in samples)
        assert sum(1 for r in srv.requests if r.path == CHAT and r.body.get("n", 1) == 1) == 6


def test_a_402_payment_required_stops_the_run_at_once_saying_to_add_credit(tmp_path: Path) -> None:
    # DeepSeek answers 402 "Insufficient Balance" when the account is empty: every request of the
    # run would be refused the same way, each failing its samples with "run it again".
    with FaultyServer(models=["echo", "fault/402"]) as srv:
        with pytest.raises(BudgetlabError) as err:
            do_run(tmp_path, srv.url, cfg("fault/402", max_tokens=8), n=1, concurrency=2)
        message = str(err.value)
        assert "\n" not in message and "402" in message and "Insufficient Balance" in message and "credit" in message
        assert srv.count(CHAT) == 1
        info, _ = stored(tmp_path)
        assert info.state is RunState.FAILED


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_an_answer_that_is_all_reasoning_is_a_drawn_sample_with_no_answer(field: str) -> None:
    # vLLM's reasoning parser (reasoning_content) and Ollama (reasoning) send content null when the
    # model never closed its thoughts, with finish_reason "stop": billed and drawn, no answer.
    answer = {
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": None, field: "Let me think... 7 + 6 = 13"}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32},
    }  # fmt: skip
    parsed = parse_answer(json.dumps(answer).encode(), "application/json", "chat", URL)
    assert parsed.choices[0].error is None and parsed.choices[0].text == ""
    assert parsed.choices[0].finish_reason == "stop"


def test_llama_cpp_completions_logprobs_in_the_chat_shape_are_read() -> None:
    # llama.cpp's server answers /v1/completions with logprobs {"content": [{"token", "logprob", ...}]}.
    answer = {
        "choices": [{"index": 0, "text": " 13", "finish_reason": "stop", "logprobs": {"content": [
            {"id": 1, "token": " 1", "bytes": [32, 49], "logprob": -0.5, "top_logprobs": []},
            {"id": 2, "token": "3", "bytes": [51], "logprob": -1.5, "top_logprobs": []},
        ]}}],
        "usage": {"prompt_tokens": 20, "completion_tokens": 2, "total_tokens": 22},
    }  # fmt: skip
    parsed = parse_answer(json.dumps(answer).encode(), "application/json", "completions", URL)
    assert parsed.choices[0].logprob == pytest.approx(-1.0) and parsed.choices[0].tokens == 2
    # the usual completions shape still wins when both are there
    answer["choices"][0]["logprobs"]["token_logprobs"] = [-0.25, -0.25]
    parsed = parse_answer(json.dumps(answer).encode(), "application/json", "completions", URL)
    assert parsed.choices[0].logprob == pytest.approx(-0.25)


def test_a_reported_prompt_count_of_zero_does_not_become_the_prompt_bound() -> None:
    # Ollama reports prompt_tokens 0 when its prompt cache answered; a later request of the same
    # prompt (cache evicted) bills it all. Taking 0 as the prompt's size reserved max_tokens
    # alone for the next samples, so a budget near its end could be overspent.
    backend = OpenAIBackend(URL, check_models=False)
    problem = arithmetic_problems(n=1)[0]
    config = cfg(max_tokens=8)
    request = DrawRequest(problem, config, (Sample("r", problem.id, config.id, 0, seed=1),))
    before = backend.estimate(request)[0].tokens
    spec = backend._spec(config)
    prompt = spec.prompt(problem)
    backend._completions(spec, request, prompt, Answer([Choice("13", None, None, None, "stop")], 0, 1), 0.1, 1)
    assert backend.estimate(request)[0].tokens == before
    backend._completions(spec, request, prompt, Answer([Choice("13", None, None, None, "stop")], 30, 1), 0.1, 1)
    assert backend.estimate(request)[0].tokens == 30 + 8
    asyncio.run(backend.aclose())


def test_a_status_without_a_reason_phrase_reads_cleanly(tmp_path: Path) -> None:
    # Cloudflare's 524 (and other unofficial codes) come without a reason phrase: "524: ..." not "524 : ...".
    with FaultyServer(models=["echo", "fault/524"]) as srv:
        do_run(tmp_path, srv.url, cfg("fault/524", max_tokens=8), n=1, k=1, options={"max_attempts": 1})
        _, samples = stored(tmp_path)
        assert samples[0].state is SampleState.FAILED
        assert "524: " in (samples[0].error or "") and "524 :" not in (samples[0].error or "")


def test_retry_after_zero_backs_off_instead_of_retrying_at_once(tmp_path: Path) -> None:
    # A proxy's "Retry-After: 0" on a 429 is no advice: the retries went out back to back.
    with FaultyServer(models=["echo", "fault/429=0*2"]) as srv:
        do_run(tmp_path, srv.url, cfg("fault/429=0*2", max_tokens=8), n=1, k=1,
               options={"backoff": 0.2, "max_backoff": 0.4})  # fmt: skip
        arrivals = [r.at for r in srv.requests if r.path == CHAT]
        assert len(arrivals) == 3
        assert min(b - a for a, b in zip(arrivals, arrivals[1:])) >= 0.1  # equal jitter: at least backoff / 2


def test_ollama_models_listed_with_their_latest_tag_are_found_by_their_bare_name(tmp_path: Path) -> None:
    # Ollama's /v1/models lists "llama3.2:latest" and serves "llama3.2" too, the name its users write.
    with FaultyServer(models=["llama3.2:latest"], accept_any_model=True) as srv:
        outcome = do_run(tmp_path, srv.url, cfg("llama3.2", max_tokens=8), n=1, k=1)
        assert outcome.state is RunState.DONE, outcome.stopped_because
    with FaultyServer(models=["llama3.2:1b"], accept_any_model=True) as srv:
        (tmp_path / "other").mkdir()
        with pytest.raises(InputError, match="is not among the models"):  # another tag: not this one
            do_run(tmp_path / "other", srv.url, cfg("llama3.2", max_tokens=8), n=1, k=1)
