"""Budget forcing over the OpenAI-compatible backend: each phase of a sample is a completions
request continuing its text. Against a scripted thinking model behind httpx's MockTransport
(stop strings and max_tokens honoured like a real server), the FaultyServer (a real HTTP server
that ignores stop strings), and llama-cpp-python's server when it is installed."""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

httpx = pytest.importorskip("httpx", reason="the openai backend needs httpx: pip install 'budgetlab[openai]'")

from budgetlab.backends import DrawRequest  # noqa: E402
from budgetlab.backends._forcing import BudgetForcing, split_thinking  # noqa: E402
from budgetlab.backends._openai import OpenAIBackend  # noqa: E402
from budgetlab.backends._openai._forced import GENERATED_BYTES_PER_TOKEN  # noqa: E402
from budgetlab.core import Budget, Problem, Sample, SampleState, SamplingConfig  # noqa: E402
from budgetlab.core.run import RunState  # noqa: E402
from budgetlab.errors import InputError  # noqa: E402
from budgetlab.runner import run  # noqa: E402
from budgetlab.stores import open_store  # noqa: E402
from budgetlab.tasks import arithmetic_problems  # noqa: E402
from budgetlab.testing import FaultyServer  # noqa: E402

URL = "http://127.0.0.1:9/v1"  # never reached: the mock transport answers
FAST = {"backoff": 0.01, "max_backoff": 0.05}
WORD = re.compile(r"\S+|\s+")


class ThinkingModel:
    """A completions endpoint whose model thinks ``segments[w]`` words after its ``w``-th
    "Wait" (then writes ``</think>``), and answers ``answer`` after "Final answer:". Tokens are
    words; the stop string's tokens are counted as generated, as servers do. Every request is
    recorded."""

    def __init__(self, segments: list[int], answer: str = " 7\nQ: more", logprob: float = -0.5, word: str = "hm") -> None:
        self.segments = segments
        self.answer = answer
        self.logprob = logprob
        self.word = word
        self.bodies: list[dict[str, Any]] = []
        self.fail_request: int | None = None

    def continuation(self, prompt: str) -> list[str]:
        if prompt.endswith("Final answer:"):
            return WORD.findall(self.answer)
        thought = prompt.rsplit("<think>", 1)[-1]
        waits = thought.count("Wait")
        n = self.segments[min(waits, len(self.segments) - 1)]
        return [f" {self.word}{waits}.{i}" for i in range(n)] + ["</think>", " 3"]

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/models"):
            return httpx.Response(200, json={"data": [{"id": "thinker"}]})
        body = json.loads(request.content)
        self.bodies.append(body)
        if self.fail_request is not None and len(self.bodies) == self.fail_request:
            return httpx.Response(400, json={"error": {"message": "scripted failure"}})
        tokens = self.continuation(body["prompt"])
        stops = body.get("stop") or []
        text, used, finish = "", 0, "length"
        for token in tokens:
            if used == body["max_tokens"]:
                break
            used += 1
            hit = [(text + token).find(s) for s in stops if s in text + token]
            if hit:
                text, finish = (text + token)[: min(hit)], "stop"
                break
            text += token
        else:
            finish = "stop"
        usage = {"prompt_tokens": len(WORD.findall(body["prompt"])), "completion_tokens": used}
        choice = {"index": 0, "text": text, "finish_reason": finish,
                  "logprobs": {"tokens": ["x"] * used, "token_logprobs": [self.logprob] * used}}  # fmt: skip
        return httpx.Response(200, json={"choices": [choice], "usage": {**usage, "total_tokens": sum(usage.values())}})


@pytest.fixture
def mock(monkeypatch: pytest.MonkeyPatch):
    """Route every httpx client through a MockTransport to the model the test sets."""
    holder: dict[str, ThinkingModel] = {}
    transport = httpx.MockTransport(lambda request: holder["model"].handle(request))
    monkeypatch.setattr(httpx, "AsyncClient", functools.partial(httpx.AsyncClient, transport=transport))
    monkeypatch.setattr(httpx, "Client", functools.partial(httpx.Client, transport=transport))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "BUDGETLAB_PRICES"):
        monkeypatch.delenv(var, raising=False)

    def use(model: ThinkingModel) -> ThinkingModel:
        holder["model"] = model
        return model

    return use


def cfg(forcing: Any, **params: Any) -> SamplingConfig:
    base = {"endpoint": "completions", "max_tokens": 4, "stop": ["\n"], "logprobs": True, "budget_forcing": forcing}
    return SamplingConfig(model="thinker", backend="openai", params={**base, **params})


PROBLEM = Problem("p", prompt="Q: What is 3 + 4?\nA:", reference="7")


def draw(config: SamplingConfig, seeds=(11,), problem: Problem = PROBLEM):
    backend = OpenAIBackend(URL, **FAST)
    request = DrawRequest(problem, config, tuple(Sample("r", problem.id, config.id, i, s) for i, s in enumerate(seeds)))

    async def go():
        try:
            return await backend.draw(request)
        finally:
            await backend.aclose()

    return asyncio.run(go()), backend.estimate(request)[0]


def test_an_early_end_gets_a_wait_and_each_phase_is_a_continuation(mock) -> None:
    model = mock(ThinkingModel([2, 3]))
    (c,), bound = draw(cfg({"min_thinking_tokens": 5, "max_thinking_tokens": 20, "max_waits": 2}))
    assert c.error is None
    assert c.text == " hm0.0 hm0.1Wait hm1.0 hm1.1 hm1.2</think>\nFinal answer: 7"
    assert split_thinking(c.text, BudgetForcing()) == (" hm0.0 hm0.1Wait hm1.0 hm1.1 hm1.2", " 7")
    assert dict(c.details) == {"thinking_tokens": 3 + 4, "waits": 1, "thinking_cut": False,
                               "thinking_ended_by_model": True, "requests": 3}  # fmt: skip
    prompt = "Q: What is 3 + 4?\nA:<think>"
    sent = [(b["prompt"], b["max_tokens"], b.get("stop"), b["seed"]) for b in model.bodies]
    assert sent == [
        (prompt, 20, ["</think>"], 11),
        (prompt + " hm0.0 hm0.1Wait", 17, ["</think>"], 12),
        (prompt + " hm0.0 hm0.1Wait hm1.0 hm1.1 hm1.2</think>\nFinal answer:", 4, ["\n"], 13),
    ]
    # every request's usage is billed: the prompt each time, and every generated token
    assert c.prompt_tokens == sum(len(WORD.findall(b["prompt"])) for b in model.bodies)
    assert c.completion_tokens == 3 + 4 + 3  # the answer: " ", "7" and the stop "\n"
    assert c.logprob == pytest.approx(-0.5)
    assert c.prompt_tokens + c.completion_tokens <= bound.tokens


def test_the_thinking_is_cut_at_its_maximum(mock) -> None:
    model = mock(ThinkingModel([50]))
    (c,), _ = draw(cfg({"max_thinking_tokens": 6}))
    assert c.text == " " + " ".join(f"hm0.{i}" for i in range(6)) + "</think>\nFinal answer: 7"
    assert c.details["thinking_cut"] and c.details["thinking_tokens"] == 6 and c.details["requests"] == 2
    assert [b["max_tokens"] for b in model.bodies] == [6, 4]


def test_no_thinking_is_one_request_with_the_end_in_the_prompt(mock) -> None:
    model = mock(ThinkingModel([5]))
    (c,), bound = draw(cfg({"max_thinking_tokens": 0}))
    assert c.text == " 7" and c.details["requests"] == 1
    assert model.bodies[0]["prompt"].endswith("A:<think></think>\nFinal answer:")
    assert c.prompt_tokens + c.completion_tokens <= bound.tokens


def test_samples_are_drawn_one_chain_each_with_their_own_seeds(mock) -> None:
    model = mock(ThinkingModel([1]))
    completions, _ = draw(cfg({"max_thinking_tokens": 8}), seeds=(100, 200))
    assert [c.error for c in completions] == [None, None]
    assert all("n" not in b for b in model.bodies)
    assert sorted(b["seed"] for b in model.bodies) == [100, 101, 200, 201]


def test_a_failed_request_fails_its_sample_with_what_was_spent(mock) -> None:
    model = mock(ThinkingModel([2, 2], answer=" 7"))
    model.fail_request = 2
    (c,), _ = draw(cfg({"min_thinking_tokens": 5, "max_waits": 1}), problem=PROBLEM)
    assert c.error is not None and "scripted failure" in c.error and "\n" not in c.error
    assert c.prompt_tokens == len(WORD.findall(model.bodies[0]["prompt"])) and c.completion_tokens == 3


class TimingOutModel(ThinkingModel):
    """Its request number ``time_out_request`` times out once (after it was sent) and is then answered."""

    time_out_request = 2

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/completions") and len(self.bodies) + 1 == self.time_out_request:
            self.time_out_request = 0
            raise httpx.ReadTimeout("timed out", request=request)
        return super().handle(request)


def test_a_timed_out_phase_is_counted_at_its_bound_when_timeouts_are_billed(mock) -> None:
    from budgetlab.backends._openai._wire import ConfigSpec

    model = mock(TimingOutModel([2, 3]))
    config = cfg({"min_thinking_tokens": 5, "max_thinking_tokens": 20, "max_waits": 2}, price_in=1000, price_out=2000)
    backend = OpenAIBackend(URL, **FAST, max_attempts=2, bill_timeouts=True)
    request = DrawRequest(PROBLEM, config, (Sample("r", PROBLEM.id, config.id, 0, 11),))

    async def go():
        try:
            return await backend.draw(request)
        finally:
            await backend.aclose()

    (c,), bound = asyncio.run(go()), backend.estimate(request)[0]
    assert c.error is None and c.details["requests"] == 3  # the same sample as without the timeout
    billed_prompt = sum(len(WORD.findall(b["prompt"])) for b in model.bodies)
    spec = ConfigSpec.build(config, {})
    timed_out = model.bodies[1]  # the request that timed out was sent again as it was
    assert c.details["billed_estimate"] == {"timed_out_attempts": 1, "prompt_tokens": spec.prompt_bound(timed_out["prompt"]),
                                            "completion_tokens": timed_out["max_tokens"], "cost": pytest.approx(
                                                spec.cost(spec.prompt_bound(timed_out["prompt"]), timed_out["max_tokens"]))}
    assert c.prompt_tokens == billed_prompt + spec.prompt_bound(timed_out["prompt"])
    assert c.completion_tokens == 3 + 4 + 3 + timed_out["max_tokens"]
    assert c.cost == pytest.approx(spec.cost(c.prompt_tokens, c.completion_tokens))
    assert c.prompt_tokens + c.completion_tokens <= bound.tokens and c.cost <= bound.dollars


def test_thinking_that_would_not_fit_the_reservation_is_cut_early(mock) -> None:
    # every "token" is far longer than the reservation assumes, so sending it back would overspend
    long_word = "x" * (4 * GENERATED_BYTES_PER_TOKEN)
    model = mock(ThinkingModel([40, 40], word=long_word))
    (c,), bound = draw(cfg({"min_thinking_tokens": 60, "max_thinking_tokens": 64, "max_waits": 1}))
    assert c.prompt_tokens + c.completion_tokens <= bound.tokens  # never more than was reserved
    # the first thinking (41 tokens of 32+ bytes) left no room to send it back a second time and
    # still answer: the wait's continuation was not sent, the thinking was cut, the answer forced
    assert c.error is None and c.text.endswith("Wait</think>\nFinal answer: 7")
    assert c.details["thinking_cut"] and c.details["waits"] == 1 and c.details["requests"] == 2
    assert [b["max_tokens"] for b in model.bodies] == [64, 4]


def test_forcing_needs_the_completions_endpoint(mock) -> None:
    mock(ThinkingModel([1]))
    with pytest.raises(InputError, match="endpoint=completions"):
        draw(cfg(True, endpoint="chat"))


def test_a_whole_run_records_the_forced_texts_within_its_budget(tmp_path: Path, mock) -> None:
    mock(ThinkingModel([1, 6]))
    problems = arithmetic_problems(n=3)
    config = cfg({"min_thinking_tokens": 4, "max_thinking_tokens": 12, "max_waits": 1})
    outcome = run("forced", f"openai:{URL}", store=str(tmp_path / "s.db"), problems=problems, configs=[config],
                  policy_args={"k": 2}, backend_options=FAST, budget=Budget(tokens=100_000))  # fmt: skip
    assert outcome.state is RunState.DONE, outcome.stopped_because
    with open_store(str(tmp_path / "s.db")) as st:
        samples = st.samples("forced")
        spent = st.get_run("forced").spent
    assert [s.state for s in samples] == [SampleState.DONE] * 6
    assert all("Wait" in s.text and s.text.endswith("</think>\nFinal answer: 7") for s in samples)
    assert all(s.answer == "7" for s in samples)  # the verifier reads the answer after the thinking
    assert spent.tokens == sum(s.prompt_tokens + s.completion_tokens for s in samples)


# ---- a real HTTP server that ignores stop strings ---------------------------------------------
def _faulty_answer(prompt: str, seed: int) -> str:
    if prompt.endswith("Final answer:"):
        return "7"
    return "so three plus four </think> 7 and more"


def test_against_the_faulty_server_that_ignores_stop_strings(tmp_path: Path) -> None:
    problems = arithmetic_problems(n=2)
    with FaultyServer(models=["echo"], answer=_faulty_answer) as server:
        config = SamplingConfig(model="echo", backend="openai", params={
            "endpoint": "completions", "max_tokens": 4, "budget_forcing": {"max_thinking_tokens": 3}})  # fmt: skip
        cut = run("cut", f"openai:{server.url}", store=str(tmp_path / "s.db"), problems=problems, configs=[config],
                  policy_args={"k": 1}, backend_options=FAST)  # fmt: skip
        ended = SamplingConfig(model="echo", backend="openai", params={
            "endpoint": "completions", "max_tokens": 4, "budget_forcing": {"max_thinking_tokens": 50}})  # fmt: skip
        natural = run("natural", f"openai:{server.url}", store=str(tmp_path / "s.db"), problems=problems,
                      configs=[ended], policy_args={"k": 1}, backend_options=FAST)  # fmt: skip
        bodies = [r.body for r in server.requests if r.path == "/v1/completions"]
    assert cut.state is RunState.DONE and natural.state is RunState.DONE
    with open_store(str(tmp_path / "s.db")) as st:
        cut_texts = [s.text for s in st.samples("cut")]
        natural_texts = [s.text for s in st.samples("natural")]
    # the server truncated the thinking to 3 tokens (length): cut and forced to answer
    assert cut_texts == [" so three plus</think>\nFinal answer: 7"] * 2
    # it wrote the delimiter and went on (no stop honoured): the text after it is dropped
    assert natural_texts == [" so three plus four </think>\nFinal answer: 7"] * 2
    thinking = [b for b in bodies if b["prompt"].endswith("<think>")]
    answering = [b for b in bodies if b["prompt"].endswith("Final answer:")]
    assert len(thinking) == len(answering) == 4 and len(bodies) == 8
    assert all(b["stop"] == ["</think>"] for b in thinking) and all("stop" not in b for b in answering)


# ---- llama-cpp-python's server (skipped without it) ---------------------------------------------
def _load_server_fixture() -> Any:
    path = Path(__file__).with_name("test_llama_server.py")
    spec = importlib.util.spec_from_file_location("_budgetlab_llama_server_fixture", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module.llama_server


llama_server = _load_server_fixture()


@pytest.mark.network
def test_forcing_through_llama_cpp_server(llama_server: str) -> None:
    few_shot = "Q: What is 2 + 3?\nA: <think>2 plus 3 makes 5.</think>\nFinal answer: 5\n\n"
    problem = Problem("p", prompt=few_shot + "Q: What is 3 + 4?\nA:", reference="7")
    config = SamplingConfig(model="smollm2", backend="openai", params={
        "endpoint": "completions", "max_tokens": 6, "stop": ["\n"], "temperature": 0.7, "logprobs": True,
        "budget_forcing": {"think_start": " <think>", "max_thinking_tokens": 12, "min_thinking_tokens": 10, "max_waits": 2}})  # fmt: skip
    backend = OpenAIBackend(llama_server, timeout=60)
    request = DrawRequest(problem, config, tuple(Sample("r", "p", config.id, i, 5 + i) for i in range(3)))
    bound = backend.estimate(request)[0]

    async def go():
        try:
            return await backend.draw(request)
        finally:
            await backend.aclose()

    completions = asyncio.run(go())
    for c in completions:
        assert c.error is None, c.error
        assert c.text.count("</think>\nFinal answer:") == 1
        assert c.details["thinking_tokens"] <= 12 and c.details["waits"] <= 2
        assert c.details["thinking_cut"] or c.details["thinking_tokens"] >= 10 or c.details["waits"] == 2
        assert 0 < c.completion_tokens <= 12 + 6 and c.logprob is not None
        assert c.prompt_tokens + c.completion_tokens <= bound.tokens
