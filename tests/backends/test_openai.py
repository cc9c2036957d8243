"""The OpenAI-compatible backend against :class:`budgetlab.testing.FaultyServer` (a real HTTP
server on 127.0.0.1, no model): whole runs, retries and their bounds, Retry-After, n > 1 and its
fallbacks, usage and cost accounting, fatal errors that abort a run without losing what was
drawn, per-sample failures, the spend bound, prices, and the command line."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

pytest.importorskip("httpx", reason="the openai backend needs httpx: pip install 'budgetlab[openai]'")

from budgetlab.backends import DrawRequest, make_backend  # noqa: E402
from budgetlab.backends._openai import OpenAIBackend  # noqa: E402
from budgetlab.backends._openai._transport import parse_retry_after  # noqa: E402
from budgetlab.backends._openai._wire import apportion  # noqa: E402
from budgetlab.backends._prices import BUILTIN_PRICES, Price, load_prices, lookup_price, price_table  # noqa: E402
from budgetlab.cli._main import main  # noqa: E402
from budgetlab.core import Budget, Problem, Sample, SampleState, SamplingConfig, derive_seed  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.errors import BudgetlabError, InputError  # noqa: E402
from budgetlab.runner import prepare, run  # noqa: E402
from budgetlab.stores import open_store  # noqa: E402
from budgetlab.tasks import arithmetic_problems  # noqa: E402
from budgetlab.testing import Fault, FaultyServer, count_tokens, default_answer  # noqa: E402

CHAT = "/v1/chat/completions"
FAST = {"backoff": 0.01, "max_backoff": 0.05}  # retries without the real waits


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "BUDGETLAB_PRICES"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def server() -> Iterator[FaultyServer]:
    with FaultyServer(models=["echo", "other"]) as srv:
        yield srv


def cfg(model: str = "echo", **params: Any) -> SamplingConfig:
    return SamplingConfig(model=model, backend="openai", params=params)


def do_run(
    tmp_path: Path,
    url: str,
    configs: Sequence[SamplingConfig],
    *,
    problems: Sequence[Problem] | None = None,
    k: int = 2,
    name: str = "r",
    options: dict[str, Any] | None = None,
    **kw: Any,
):
    return run(
        name,
        f"openai:{url}",
        store=str(tmp_path / "store.db"),
        backend_options={**FAST, **(options or {})},
        policy_args={"k": k},
        problems=list(problems if problems is not None else arithmetic_problems(n=3)),
        configs=list(configs),
        **kw,
    )


def stored(tmp_path: Path, name: str = "r"):
    with open_store(str(tmp_path / "store.db")) as st:
        return st.get_run(name), st.samples(name)


def completion_bodies(server: FaultyServer, model: str | None = None) -> list[dict]:
    return [r.body for r in server.requests if r.path == CHAT and (model is None or r.model == model)]


def reported_usage(server: FaultyServer) -> tuple[int, int]:
    """What the server reported as used, over every answer that carried a usage."""
    prompt = completion = 0
    for r in server.requests:
        usage = r.response.get("usage") if isinstance(r.response, dict) and r.status == 200 else None
        if usage:
            prompt += usage["prompt_tokens"]
            completion += usage["completion_tokens"]
    return prompt, completion


def one_line(text: str) -> str:
    assert "\n" not in text, text
    return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---- whole runs ------------------------------------------------------------------------------
def test_a_whole_run_completes_with_one_request_of_n_per_problem(tmp_path: Path, server: FaultyServer) -> None:
    problems = arithmetic_problems(n=4)
    outcome = do_run(tmp_path, server.url, [cfg(temperature=0.7, max_tokens=16, logprobs=True)], problems=problems, k=3)
    assert outcome.state is RunState.DONE, outcome.stopped_because
    info, samples = stored(tmp_path)
    assert [s.state for s in samples] == [SampleState.DONE] * 12
    bodies = completion_bodies(server)
    assert len(bodies) == 4 and all(b["n"] == 3 for b in bodies)
    assert all(b["temperature"] == 0.7 and b["max_tokens"] == 16 and b["logprobs"] is True for b in bodies)
    by_problem = {p.id: p for p in problems}
    config_id = cfg(temperature=0.7, max_tokens=16, logprobs=True).id
    for body in bodies:
        problem = next(p for p in problems if body["messages"][-1]["content"] == p.prompt)
        first = derive_seed(0, problem.id, config_id, 0)
        assert body["seed"] == first % 2**31  # one request: the first sample's seed
    for s in samples:
        seed = derive_seed(0, s.problem, s.config, 0) % 2**31 + s.index  # choice i drew with seed + i
        assert s.text == default_answer(by_problem[s.problem].prompt or "", seed)
        assert s.correct is (seed % 4 != 3)
        assert s.logprob == -((seed % 7) + 1) / 8
        assert s.prompt_tokens > 0 and s.completion_tokens > 0 and s.latency > 0 and s.error is None


def test_usage_and_cost_add_up_exactly_to_the_spend(tmp_path: Path, server: FaultyServer) -> None:
    configs = [cfg(max_tokens=8, price_in=3.0, price_out=15.0), cfg("other", endpoint="completions", max_tokens=8)]
    outcome = do_run(tmp_path, server.url, configs, problems=arithmetic_problems(n=5), k=3)
    assert outcome.state is RunState.DONE
    info, samples = stored(tmp_path)
    prompt, completion = reported_usage(server)
    assert sum(s.prompt_tokens for s in samples) == prompt
    assert sum(s.completion_tokens for s in samples) == completion
    assert info.spent.tokens == prompt + completion == outcome.spent.tokens
    # Dollars: only the priced configuration costs, at 3 and 15 dollars per million tokens.
    priced = configs[0].id
    paid = [r.response["usage"] for r in server.requests if r.path == CHAT and r.status == 200]
    expected = sum(u["prompt_tokens"] * 3.0 + u["completion_tokens"] * 15.0 for u in paid) / 1e6
    assert info.spent.dollars == pytest.approx(expected, rel=1e-12, abs=0)
    assert sum(s.cost for s in samples if s.config == priced) == pytest.approx(expected, rel=1e-12, abs=0)
    assert all(s.cost == 0 for s in samples if s.config != priced)  # a local model has no price
    # Within one answer of n choices, the prompt is split evenly (remainder to the first ones).
    for s in samples:
        assert s.completion_tokens == count_tokens(s.text or "")


def test_a_token_budget_is_never_overspent(tmp_path: Path, server: FaultyServer) -> None:
    outcome = do_run(tmp_path, server.url, [cfg(max_tokens=8)], problems=arithmetic_problems(n=20), k=2,
                     budget=Budget(tokens=600))  # fmt: skip  (the whole run takes over 1000)
    assert outcome.state is RunState.STOPPED and "tokens" in outcome.stopped_because
    info, samples = stored(tmp_path)
    assert 0 < info.spent.tokens <= 600
    assert any(s.state is SampleState.DONE for s in samples)


def test_estimate_is_an_upper_bound_and_learns_the_prompt_size(server: FaultyServer) -> None:
    backend = OpenAIBackend(server.url, **FAST)
    problems = arithmetic_problems(n=6, digits=3) + [Problem("u", prompt="Ünïcödé " * 20 + "What is 1 + 1?")]
    configs = [cfg(max_tokens=8), cfg(endpoint="completions", max_tokens=8), cfg(system="Be brief.", max_tokens=8)]

    async def go() -> None:
        try:
            for problem in problems:
                for config in configs:
                    request = DrawRequest(problem, config, tuple(Sample("r", problem.id, config.id, i, i) for i in range(3)))
                    bound = backend.estimate(request)
                    got = await backend.draw(request)
                    for b, c in zip(bound, got, strict=True):
                        assert c.error is None
                        assert c.prompt_tokens + c.completion_tokens <= b.tokens
                    # The prompt's reported size replaces the tokenizer-free bound.
                    prompt_total = sum(c.prompt_tokens for c in got)
                    assert backend.estimate(request)[0].tokens == prompt_total + 8
        finally:
            await backend.aclose()

    asyncio.run(go())


# ---- retries ---------------------------------------------------------------------------------
def test_transient_faults_are_retried_and_succeed(tmp_path: Path) -> None:
    models = ["fault/500*2", "fault/429*1", "fault/503=0*1", "fault/drop*1"]
    with FaultyServer(models=models) as srv:
        outcome = do_run(tmp_path, srv.url, [cfg(m, max_tokens=8) for m in models], k=2,
                         options={"max_attempts": 3})  # fmt: skip
        assert outcome.state is RunState.DONE
        info, samples = stored(tmp_path)
        assert len(samples) == 3 * 2 * len(models)
        assert all(s.state is SampleState.DONE for s in samples), [s.error for s in samples if s.error]
        # 3 problems: one request each, plus the failed first attempts (3 requests in flight at once).
        assert srv.count(CHAT, model="fault/500*2") == 3 + 2
        assert srv.count(CHAT, model="fault/500*2", status=500) == 2
        assert srv.count(CHAT, model="fault/429*1") == 3 + 1
        assert srv.count(CHAT, model="fault/503=0*1") == 3 + 1
        assert srv.count(CHAT, model="fault/drop*1") == 3 + 1
        # What was paid is what the successful answers reported.
        assert info.spent.tokens == sum(reported_usage(srv))


def test_persistent_faults_fail_their_samples_after_bounded_retries_and_the_run_goes_on(tmp_path: Path) -> None:
    broken = {
        "fault/500": "failed on 3 attempts: 500",
        "fault/429": "rate limited",
        "fault/truncated": "is not valid JSON",
        "fault/missing": "lacks 'choices'",
        "fault/missing=content": ".message.content (finish_reason='stop')",
        "fault/html": "content-type 'text/html'",
        "fault/drop": "closed the connection",
    }
    models = ["echo", *broken, "fault/text_plain"]
    with FaultyServer(models=models) as srv:
        outcome = do_run(tmp_path, srv.url, [cfg(m, max_tokens=8) for m in models], k=2,
                         options={"max_attempts": 3})  # fmt: skip
        # A run with failed samples ends stopped, saying how to draw them again, not complete.
        assert outcome.state is RunState.STOPPED, outcome.stopped_because
        assert "samples settled now failed" in outcome.stopped_because and "run it again" in outcome.stopped_because
        _, samples = stored(tmp_path)
        by_model = {c.id: c.model for c in (cfg(m, max_tokens=8) for m in models)}
        for s in samples:
            model = by_model[s.config]
            if model in broken:
                assert s.state is SampleState.FAILED, model
                assert broken[model] in one_line(s.error or ""), (model, s.error)
            else:  # echo, and a JSON answer with the wrong content-type, are fine
                assert s.state is SampleState.DONE, (model, s.error)
        # Retried faults: exactly max_attempts per request (3 problems: 3 requests); a malformed
        # answer is not retried (it was paid for, and would come back the same).
        for model in ("fault/500", "fault/429", "fault/drop"):
            assert srv.count(CHAT, model=model) == 3 * 3, model
        for model in ("fault/truncated", "fault/missing", "fault/missing=content", "fault/html"):
            assert srv.count(CHAT, model=model) == 3, model
        # A request that failed but reported a usage is paid for.
        missing_content = [s for s in samples if by_model[s.config] == "fault/missing=content"]
        assert all(s.prompt_tokens > 0 for s in missing_content)


def test_a_request_past_the_timeout_is_retried_and_a_persistent_one_fails(tmp_path: Path) -> None:
    models = ["fault/sleep=3*1", "fault/sleep=3"]
    with FaultyServer(models=models) as srv:
        outcome = do_run(tmp_path, srv.url, [cfg(m, max_tokens=8) for m in models], problems=arithmetic_problems(n=1),
                         k=2, options={"timeout": 1.0, "max_attempts": 2})  # fmt: skip
        assert outcome.state is RunState.STOPPED and outcome.failed == 2, outcome.stopped_because
        _, samples = stored(tmp_path)
        flaky, slow = cfg(models[0], max_tokens=8).id, cfg(models[1], max_tokens=8).id
        assert all(s.state is SampleState.DONE for s in samples if s.config == flaky)
        for s in (s for s in samples if s.config == slow):
            assert s.state is SampleState.FAILED
            assert "no answer from" in one_line(s.error or "") and "within the timeout of 1 s on 2 attempts" in s.error
        assert srv.count(CHAT, model=models[0]) == 2 and srv.count(CHAT, model=models[1]) == 2


def test_retry_after_is_honoured(tmp_path: Path, server: FaultyServer) -> None:
    server.script("429=1")
    started = time.monotonic()
    outcome = do_run(tmp_path, server.url, [cfg(max_tokens=8)], problems=arithmetic_problems(n=1), k=2)
    assert outcome.state is RunState.DONE
    first, second = [r.at for r in server.requests if r.path == CHAT]
    assert 1.0 <= second - first < 3.0  # the backoff alone would wait about 0.01 s
    assert time.monotonic() - started < 5


def test_a_retry_after_beyond_max_retry_wait_gives_up_at_once(tmp_path: Path, server: FaultyServer) -> None:
    server.script("429=3600")
    do_run(tmp_path, server.url, [cfg(max_tokens=8)], problems=arithmetic_problems(n=1), k=2,
           options={"max_retry_wait": 5})  # fmt: skip
    _, samples = stored(tmp_path)
    assert all(s.state is SampleState.FAILED and "asks to wait 3600 s" in (s.error or "") for s in samples)
    assert server.count(CHAT) == 1


def test_retry_after_parsing() -> None:
    assert parse_retry_after({"retry-after": "2"}) == 2.0
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "9"}) == 0.25
    assert parse_retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0
    assert parse_retry_after({"retry-after": "soon"}) is None
    assert parse_retry_after({}) is None


# ---- n > 1 and its fallbacks -----------------------------------------------------------------
@pytest.mark.parametrize("n_mode", ["ignore", "reject"])
def test_a_server_that_ignores_or_rejects_n_gets_one_request_per_sample(tmp_path: Path, n_mode: str) -> None:
    with FaultyServer(models=["echo"], n_mode=n_mode) as srv:
        # concurrency=3 samples: one request at a time, so the fallback is learnt on the first.
        outcome = do_run(tmp_path, srv.url, [cfg(max_tokens=8)], problems=arithmetic_problems(n=3), k=3, concurrency=3)
        assert outcome.state is RunState.DONE
        info, samples = stored(tmp_path)
        assert [s.state for s in samples] == [SampleState.DONE] * 9
        bodies = completion_bodies(srv)
        with_n = [b for b in bodies if "n" in b]
        assert len(with_n) == 1  # tried once, then remembered for the model
        # ignore: the first answer's choice is kept, 2 more requests; reject: 3 more.
        assert len(bodies) == (1 + 2 + 3 + 3 if n_mode == "ignore" else 1 + 3 + 3 + 3)
        single = {b["seed"] for b in bodies if "n" not in b}
        for s in samples:
            if not (n_mode == "ignore" and s.index == 0 and s.problem == samples[0].problem):
                assert s.seed % 2**31 in single  # each sample drawn with its own seed
        assert info.spent.tokens == sum(reported_usage(srv))


def test_use_n_false_sends_one_request_per_sample(tmp_path: Path, server: FaultyServer) -> None:
    do_run(tmp_path, server.url, [cfg(max_tokens=8)], problems=arithmetic_problems(n=2), k=3, options={"use_n": False})
    bodies = completion_bodies(server)
    assert len(bodies) == 6 and not any("n" in b for b in bodies)


def test_a_fatal_error_after_part_of_a_request_keeps_what_was_received(server: FaultyServer) -> None:
    backend = OpenAIBackend(server.url, **FAST)
    problem = arithmetic_problems(n=1)[0]
    config = cfg(max_tokens=8)
    request = DrawRequest(problem, config, tuple(Sample("r", problem.id, config.id, i, 10 + i) for i in range(2)))
    server.script("ignore_n", "401")

    async def go():
        try:
            got = await backend.draw(request)
            with pytest.raises(BudgetlabError, match="refused the API key"):
                await backend.draw(request)
            return got
        finally:
            await backend.aclose()

    first, second = asyncio.run(go())
    assert first.error is None and first.text is not None  # received (and paid for): kept
    assert second.error is not None and "401" in second.error


# ---- fatal errors abort the run, keeping what was settled ------------------------------------
def test_a_refused_api_key_mid_run_aborts_it_and_keeps_settled_samples(tmp_path: Path) -> None:
    with FaultyServer(models=["echo"], api_key="sk-good") as srv:
        srv.script("ok", "ok", "401")
        with pytest.raises(BudgetlabError) as err:
            do_run(tmp_path, srv.url, [cfg(max_tokens=8)], problems=arithmetic_problems(n=4), k=2, concurrency=2,
                   options={"api_key": "sk-good"})  # fmt: skip
        message = one_line(str(err.value))
        assert "refused the API key (401" in message and "OPENAI_API_KEY" in message
        info, samples = stored(tmp_path)
        assert info.state is RunState.FAILED and info.stopped_because == message
        done = [s for s in samples if s.state is SampleState.DONE]
        assert len(done) == 4 and info.spent.samples == 4
        assert srv.count(CHAT) == 3  # a 401 is not retried


def test_a_wrong_api_key_is_refused_before_anything_is_drawn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-bad")
    with FaultyServer(models=["echo"], api_key="sk-good") as srv:
        with pytest.raises(BudgetlabError, match=r"refused the API key \(401") as err:
            do_run(tmp_path, srv.url, [cfg()])
        one_line(str(err.value))
        assert srv.count(CHAT) == 0
        with open_store(str(tmp_path / "store.db")) as st:
            assert st.find_run("r") is None
        # The key from the environment is sent when it is right.
        monkeypatch.setenv("OPENAI_API_KEY", "sk-good")
        assert do_run(tmp_path, srv.url, [cfg(max_tokens=8)]).state is RunState.DONE


def test_an_unknown_model_is_refused_by_check_when_the_server_lists_models(tmp_path: Path, server: FaultyServer) -> None:
    with pytest.raises(InputError, match=r"model 'gpt-nope' is not among the models .* \(echo, other\)") as err:
        do_run(tmp_path, server.url, [cfg("gpt-nope")])
    one_line(str(err.value))
    assert server.count(CHAT) == 0
    # A server that accepts names it does not list: the check can be turned off.
    with FaultyServer(models=["echo"], accept_any_model=True) as srv:
        outcome = do_run(tmp_path, srv.url, [cfg("gpt-nope", max_tokens=8)], name="r2", options={"check_models": False})
        assert outcome.state is RunState.DONE


def test_an_unknown_model_mid_run_aborts_it_and_keeps_settled_samples(tmp_path: Path) -> None:
    with FaultyServer(models=["echo"], list_models=False) as srv:  # nothing to check against
        with pytest.raises(BudgetlabError) as err:
            do_run(tmp_path, srv.url, [cfg(max_tokens=8), cfg("nope", max_tokens=8)],
                   problems=arithmetic_problems(n=2), k=2, concurrency=2)  # fmt: skip
        message = one_line(str(err.value))
        assert "model 'nope' is not served by" in message and "/models" in message
        info, samples = stored(tmp_path)
        assert info.state is RunState.FAILED
        assert [(s.state, s.config) for s in samples if s.state.finished] == [(SampleState.DONE, cfg(max_tokens=8).id)] * 2


def test_a_wrong_base_url_is_one_line_naming_v1(tmp_path: Path, server: FaultyServer) -> None:
    root = server.url.removesuffix("/v1")
    with pytest.raises(BudgetlabError, match=r"/chat/completions does not exist \(404.*ending in /v1") as err:
        do_run(tmp_path, root, [cfg(max_tokens=8)])
    one_line(str(err.value))


def test_an_unreachable_server_is_one_line(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(BudgetlabError, match="cannot reach the server at .* after 2 attempts; start the server") as err:
        do_run(tmp_path, url, [cfg()], options={"max_attempts": 2})
    one_line(str(err.value))


def test_a_server_that_goes_away_mid_run_aborts_it(tmp_path: Path) -> None:
    srv = FaultyServer(models=["echo"]).start()
    with open_store(str(tmp_path / "store.db")) as st:
        prepared = prepare("r", f"openai:{srv.url}", store=st, backend_options={**FAST, "max_attempts": 2},
                           problems=arithmetic_problems(n=2), configs=[cfg(max_tokens=8)])  # fmt: skip
        srv.stop()
        with pytest.raises(BudgetlabError, match="cannot reach the server") as err:
            prepared.execute()
        one_line(str(err.value))
        assert st.get_run("r").state is RunState.FAILED


# ---- endpoints, parameters, prices -----------------------------------------------------------
def test_completions_endpoint_sends_a_prompt_and_reads_token_logprobs(tmp_path: Path, server: FaultyServer) -> None:
    config = cfg(endpoint="completions", logprobs=True, max_tokens=8, stop=["\n"], seed=False)
    outcome = do_run(tmp_path, server.url, [config], problems=arithmetic_problems(n=2), k=2)
    assert outcome.state is RunState.DONE
    bodies = [r.body for r in server.requests if r.path == "/v1/completions"]
    assert len(bodies) == 2
    for body in bodies:
        assert isinstance(body["prompt"], str) and body["logprobs"] == 1 and body["stop"] == ["\n"]
        assert "seed" not in body and "messages" not in body
    _, samples = stored(tmp_path)
    assert all(s.state is SampleState.DONE and s.logprob is not None and s.logprob < 0 for s in samples)


def test_system_parameter_and_extra_body_are_sent(tmp_path: Path, server: FaultyServer) -> None:
    do_run(tmp_path, server.url, [cfg(system="Answer with a number.", extra_body={"top_k": 5, "mirostat": 0})], k=1,
           problems=arithmetic_problems(n=1))  # fmt: skip
    (body,) = completion_bodies(server)
    assert body["messages"][0] == {"role": "system", "content": "Answer with a number."}
    assert body["top_k"] == 5 and body["mirostat"] == 0 and body["max_tokens"] == 512


@pytest.mark.parametrize(
    ("params", "needle"),
    [
        ({"temprature": 0.7}, "unknown parameter 'temprature'"),
        ({"endpoint": "embeddings"}, "is not chat or completions"),
        ({"temperature": "hot"}, "must be a number"),
        ({"max_tokens": 0}, "must be at least 1"),
        ({"seed": 7}, "each sample gets its own seed"),
        ({"price_in": -1, "price_out": 1}, "non-negative number"),
        ({"price_in": 1}, "gives price_in but not price_out"),
    ],
)
def test_bad_configuration_parameters_are_one_line_input_errors(tmp_path: Path, server: FaultyServer, params, needle) -> None:
    with pytest.raises(InputError, match=needle) as err:
        do_run(tmp_path, server.url, [cfg(**params)])
    one_line(str(err.value))
    assert server.count(CHAT) == 0


def test_bad_backend_options_are_one_line_input_errors() -> None:
    for spec, options, needle in [
        ("openai:localhost:8000", {}, "not an http(s) URL"),
        ("openai:http://127.0.0.1:1/v1", {"max_attempts": 0}, "max_attempts=0 must be a whole number at least 1"),
        ("openai:http://127.0.0.1:1/v1", {"timeout": -1}, "timeout=-1 must be a number above 0"),
        ("openai:http://127.0.0.1:1/v1", {"retries": 3}, "does not take 'retries'"),
    ]:
        with pytest.raises(InputError) as err:
            make_backend(spec, options)
        assert needle in one_line(str(err.value))


def test_base_url_and_key_from_the_environment(monkeypatch: pytest.MonkeyPatch, server: FaultyServer) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.url + "/")
    monkeypatch.setenv("MY_KEY", "sk-123")
    backend = make_backend("openai", {"api_key_env": "MY_KEY"})
    assert isinstance(backend, OpenAIBackend) and backend.base_url == server.url
    backend.check(arithmetic_problems(n=1), [cfg()])
    assert server.requests[-1].headers["authorization"] == "Bearer sk-123"


def test_prices_table_files_and_lookup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert lookup_price("gpt-4o-mini-2024-07-18") == BUILTIN_PRICES["gpt-4o-mini"]
    assert lookup_price("gpt-4o-2024-08-06") == BUILTIN_PRICES["gpt-4o"]
    assert lookup_price("openai/gpt-4o") == BUILTIN_PRICES["gpt-4o"]
    assert lookup_price("o3-mini-2025-01-31") == BUILTIN_PRICES["o3-mini"]
    assert lookup_price("smollm2") is None
    assert Price(2.0, 8.0).cost(1_000_000, 500_000) == 6.0
    toml = tmp_path / "p.toml"
    toml.write_text('["my-model"]\ninput = 0.5\noutput = 1.5\n["gpt-4o"]\ninput = 1\noutput = 2\n')
    jsn = tmp_path / "p.json"
    jsn.write_text(json.dumps({"json-model": [0.25, 0.75]}))
    assert load_prices(toml) == {"my-model": Price(0.5, 1.5), "gpt-4o": Price(1.0, 2.0)}
    monkeypatch.setenv("BUDGETLAB_PRICES", str(jsn))
    table = price_table(toml)
    assert table["json-model"] == Price(0.25, 0.75) and table["gpt-4o"] == Price(1.0, 2.0)
    bad = tmp_path / "bad.json"
    for content, needle in [('{"m": {"input": -1, "output": 1}}', "is not a price"), ("{oops", "not valid JSON")]:
        bad.write_text(content)
        with pytest.raises(InputError, match=needle) as err:
            load_prices(bad)
        one_line(str(err.value))
    with pytest.raises(InputError, match="does not exist"):
        load_prices(tmp_path / "absent.toml")


def test_price_file_option_prices_the_samples(tmp_path: Path) -> None:
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"echo": {"input": 1.0, "output": 2.0}}))
    with FaultyServer(models=["echo"]) as srv:
        outcome = do_run(tmp_path, srv.url, [cfg(max_tokens=8)], options={"prices": str(prices)})
        prompt, completion = reported_usage(srv)
    assert outcome.spent.dollars == pytest.approx((prompt * 1.0 + completion * 2.0) / 1e6, rel=1e-12)


def test_apportion_adds_up_exactly() -> None:
    assert apportion(10, [1, 1, 1]) == [4, 3, 3]
    assert apportion(7, [0, 0]) == [4, 3]
    assert apportion(100, [1, 3]) == [25, 75]
    assert apportion(0, []) == []
    for total in range(50):
        assert sum(apportion(total, [3, 1, 4, 1, 5])) == total


# ---- the faulty server itself ----------------------------------------------------------------
def test_faulty_server_parses_faults_and_takes_them_from_a_header() -> None:
    import httpx

    assert Fault.parse("429=2*3") == Fault("status", "2", 3, 429)
    assert Fault.parse("sleep=0.5") == Fault("sleep", "0.5")
    for bad in ("nope", "500*x", "missing=everything"):
        with pytest.raises(ValueError):
            Fault.parse(bad)
    with FaultyServer() as srv:
        body = {"model": "echo", "messages": [{"role": "user", "content": "What is 2 + 2?"}], "seed": 1}
        ok = httpx.post(srv.url + "/chat/completions", json=body)
        assert ok.status_code == 200 and ok.json()["choices"][0]["message"]["content"] == "4"
        bad = httpx.post(srv.url + "/chat/completions", json=body, headers={"X-Fault": "503=1"})
        assert bad.status_code == 503 and bad.headers["retry-after"] == "1"
        assert httpx.post(srv.url + "/chat/completions", json={**body, "model": "x"}).status_code == 404
        assert srv.count(CHAT) == 3 and srv.count(CHAT, status=200) == 1
    with pytest.raises(RuntimeError):
        srv.url  # noqa: B018 - stopped


# ---- the command line ------------------------------------------------------------------------
def test_cli_run_through_the_openai_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str], server: FaultyServer) -> None:
    store = tmp_path / "cli.db"
    argv = ["run", "--backend", f"openai:{server.url}", "--config", "model=echo,temperature=0.7,max_tokens=8",
            "--task", "arithmetic:n=4", "-k", "2", "--store", str(store), "--no-progress", "--name", "cli",
            "--backend-arg", "backoff=0.01"]  # fmt: skip
    rc = main(argv, console=Console(width=400, no_color=True))
    out, err = capsys.readouterr()
    assert rc == 0, err
    assert "8 samples drawn now" in out
    with open_store(str(store)) as st:
        samples = st.samples("cli")
        assert len(samples) == 8 and all(s.state is SampleState.DONE for s in samples)
        assert st.get_run("cli").spent.tokens == sum(reported_usage(server))
    # Running it again by name resumes it and draws nothing.
    assert main(["run", "--name", "cli", "--store", str(store), "--no-progress"], console=Console(width=400)) == 0
    assert "0 samples drawn now" in capsys.readouterr().out
    assert len(completion_bodies(server)) == 4


def test_cli_unknown_model_is_one_line_on_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str], server: FaultyServer) -> None:
    store = tmp_path / "cli.db"
    rc = main(["run", "--backend", f"openai:{server.url}", "--config", "model=gpt-nope", "--task", "arithmetic:n=2",
               "-k", "2", "--store", str(store), "--no-progress"], console=Console(width=400))  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and len(err.splitlines()) == 1 and "model 'gpt-nope' is not among the models" in err
    assert not store.exists()


def test_only_remote_models_without_a_price_warn() -> None:
    from budgetlab.backends._openai._backend import _is_local

    assert _is_local("127.0.0.1") and _is_local("localhost") and _is_local("10.0.0.7") and _is_local("::1")
    assert not _is_local("api.openai.com") and not _is_local("8.8.8.8") and not _is_local(None)
    backend = OpenAIBackend("https://api.example.invalid/v1", check_models=False)
    backend._list_models = lambda: None  # type: ignore[method-assign] - no network here
    with pytest.warns(UserWarning, match="no price is known for model 'mystery'"):
        backend.check(arithmetic_problems(n=1), [cfg("mystery")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend.check(arithmetic_problems(n=1), [cfg("gpt-4o-mini"), cfg("mystery", price_in=1, price_out=2)])


def test_faulty_server_runs_from_the_command_line() -> None:
    import subprocess
    import sys

    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "budgetlab.testing.faulty_server", "--port", "0", "--model", "m1", "--api-key", "k"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" at ")[1].split()[0]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        listed = httpx.get(url + "/models", headers={"Authorization": "Bearer k"}).json()
        assert [m["id"] for m in listed["data"]] == ["m1"]
        assert httpx.get(url + "/models").status_code == 401
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_an_empty_choices_list_is_called_empty_not_missing() -> None:
    from budgetlab.backends._openai._wire import RequestFailed, parse_answer

    answer = {"id": "x", "object": "chat.completion", "model": "m", "choices": [],
              "usage": {"prompt_tokens": 5, "completion_tokens": 0}}  # fmt: skip
    with pytest.raises(RequestFailed) as empty:
        parse_answer(json.dumps(answer).encode(), "application/json", "chat", "http://127.0.0.1:1/v1")
    assert "empty 'choices' list" in empty.value.message and "lacks" not in empty.value.message
    assert empty.value.prompt_tokens == 5  # what the server billed is still counted
    del answer["choices"]
    with pytest.raises(RequestFailed) as missing:
        parse_answer(json.dumps(answer).encode(), "application/json", "chat", "http://127.0.0.1:1/v1")
    assert "lacks 'choices' (its fields: id, object, model, usage)" in missing.value.message
