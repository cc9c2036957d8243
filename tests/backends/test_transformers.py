"""The transformers backend: the missing-package errors (simulated), parameter checks, and — when
torch and transformers are importable — real generation with a tiny randomly initialised GPT-2
and a byte-level tokenizer made in a temporary folder (nothing is downloaded): per-sample seeds
reproduce whatever the batch, greedy decoding and its token counts and log-probabilities agree
with ``generate`` and a forward pass, stop strings, the chat template, and a whole run.
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import types
from pathlib import Path

import pytest

from budgetlab.backends import DrawRequest, make_backend
from budgetlab.backends._transformers import parse_params
from budgetlab.core import Problem, Sample, SampleState, SamplingConfig
from budgetlab.core.run import RunState
from budgetlab.errors import BudgetlabError, InputError
from budgetlab.runner import run
from budgetlab.stores import SQLiteStore

HAVE_TRANSFORMERS = all(importlib.util.find_spec(m) is not None for m in ("torch", "transformers", "tokenizers"))
needs_transformers = [
    pytest.mark.transformers,
    pytest.mark.skipif(
        not HAVE_TRANSFORMERS, reason="torch and transformers are not installed; pip install 'budgetlab[transformers]'"
    ),
]


# ---- without the packages -----------------------------------------------------------------------
def test_missing_transformers_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)  # "import transformers" now raises ImportError
    with pytest.raises(BudgetlabError) as info:
        make_backend("transformers:/models/tiny", {})
    message = str(info.value)
    assert "the transformers backend needs the package 'transformers'" in message
    assert "pip install 'budgetlab[transformers]'" in message


def test_missing_torch_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", types.ModuleType("transformers"))
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(BudgetlabError, match=r"needs the package 'torch'.*pip install 'budgetlab\[transformers\]'"):
        make_backend("transformers", {})


def test_importing_budgetlab_imports_no_heavy_package():
    import subprocess

    code = "import sys, budgetlab; print(sorted(m for m in ('ray', 'torch', 'transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_parameters_are_checked():
    params = parse_params(SamplingConfig("m", "transformers", {"temperature": 0.5, "stop": "\n", "max_tokens": 8}))
    assert params.temperature == 0.5 and params.stop == ("\n",) and params.max_tokens == 8 and params.chat
    assert parse_params(SamplingConfig("m", "transformers")).max_tokens == 512
    for bad in ({"temperature": -1}, {"top_p": 0}, {"max_tokens": 0}, {"top_k": 1.5}, {"stop": [""]}, {"chat": "yes"}):
        with pytest.raises(InputError, match="for the transformers backend"):
            parse_params(SamplingConfig("m", "transformers", bad))
    with pytest.raises(InputError, match="unknown parameter 'beams'"):
        parse_params(SamplingConfig("m", "transformers", {"beams": 2}))


# ---- with a tiny model --------------------------------------------------------------------------
CHAT_TEMPLATE = (
    "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<assistant>{% endif %}"
)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A one-layer GPT-2 with random weights and a byte-level tokenizer (257 tokens: the 256
    bytes and <eos>), saved as save_pretrained writes a model."""
    if not HAVE_TRANSFORMERS:
        pytest.skip("torch and transformers are not installed")
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("tiny-gpt2")
    vocab = {ch: i for i, ch in enumerate(sorted(pre_tokenizers.ByteLevel.alphabet()))}
    vocab["<eos>"] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<eos>", pad_token="<eos>")
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(folder)
    torch.manual_seed(0)
    eos = vocab["<eos>"]
    config = GPT2Config(n_layer=1, n_head=2, n_embd=32, n_positions=256, vocab_size=len(vocab),
                        eos_token_id=eos, bos_token_id=eos)  # fmt: skip
    GPT2LMHeadModel(config).save_pretrained(folder)
    return folder


def _request(config: SamplingConfig, seeds, problem: Problem | None = None) -> DrawRequest:
    problem = problem or Problem("q1", prompt="What is 2+2?")
    return DrawRequest(problem, config, tuple(Sample("r", problem.id, config.id, i, s) for i, s in enumerate(seeds)))


def _draw(backend, request):
    return asyncio.run(backend.draw(request))


@pytest.fixture(scope="module")
def backend(tiny_model):
    b = make_backend(f"transformers:{tiny_model}", {"device": "cpu"})
    yield b
    asyncio.run(b.aclose())


def _mark(test):
    for mark in needs_transformers:
        test = mark(test)
    return test


@_mark
def test_seeds_reproduce_whatever_the_batch(backend):
    config = SamplingConfig("tiny", "transformers", {"max_tokens": 12, "temperature": 1.0})
    seeds = [11, 22, 33, 44]
    first = _draw(backend, _request(config, seeds))
    assert len(first) == 4 and all(c.error is None and c.text is not None for c in first)
    assert len({c.text for c in first}) == 4  # different seeds, different samples
    def key(c):
        return c.text, c.prompt_tokens, c.completion_tokens, c.logprob

    assert [key(c) for c in _draw(backend, _request(config, seeds))] == [key(c) for c in first]  # same seeds
    alone = _draw(backend, _request(config, [33]))[0]
    assert (alone.text, alone.completion_tokens) == (first[2].text, first[2].completion_tokens)
    assert alone.logprob == pytest.approx(first[2].logprob, abs=1e-5)
    shuffled = _draw(backend, _request(config, [44, 11]))
    assert [c.text for c in shuffled] == [first[3].text, first[0].text]


@_mark
def test_exact_mode_generates_one_by_one_with_the_same_result(tiny_model, backend):
    config = SamplingConfig("tiny", "transformers", {"max_tokens": 10, "top_k": 50, "top_p": 0.9})
    exact = make_backend(f"transformers:{tiny_model}", {"device": "cpu", "exact": True})
    try:
        got = _draw(exact, _request(config, [5, 6, 7]))
    finally:
        asyncio.run(exact.aclose())
    want = _draw(backend, _request(config, [5, 6, 7]))
    # The same tokens; the log-probabilities may differ in the last bits between batch sizes.
    assert [(c.text, c.completion_tokens) for c in got] == [(c.text, c.completion_tokens) for c in want]
    assert [c.logprob for c in got] == pytest.approx([c.logprob for c in want], abs=1e-5)


@_mark
def test_greedy_matches_generate_with_token_counts_and_logprobs(tiny_model, backend):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    max_tokens = 16
    config = SamplingConfig("tiny", "transformers", {"max_tokens": max_tokens, "temperature": 0, "chat": False})
    problem = Problem("q2", prompt="Say hi")
    out = _draw(backend, _request(config, [1, 2], problem))
    assert (out[0].text, out[0].logprob) == (out[1].text, out[1].logprob)  # greedy: the seed does not matter

    tok = AutoTokenizer.from_pretrained(tiny_model)
    model = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    ids = tok("Say hi", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_tokens,
                             eos_token_id=tok.eos_token_id, pad_token_id=tok.eos_token_id)[0]  # fmt: skip
        generated = ref[ids.shape[1]:].tolist()
        if tok.eos_token_id in generated:
            generated = generated[: generated.index(tok.eos_token_id) + 1]
        full = torch.tensor([ids[0].tolist() + generated])
        logp = torch.log_softmax(model(full).logits[0].float(), dim=-1)
        token_logps = [logp[ids.shape[1] - 1 + j, t].item() for j, t in enumerate(generated)]
    shown = [t for t in generated if t != tok.eos_token_id]
    assert out[0].prompt_tokens == ids.shape[1] == len("Say hi")
    assert out[0].completion_tokens == len(generated)
    assert out[0].text == tok.decode(shown, skip_special_tokens=True)
    assert out[0].logprob == pytest.approx(sum(token_logps) / len(token_logps), abs=1e-4)


@_mark
def test_estimate_and_chat_template(tiny_model, backend):
    config = SamplingConfig("tiny", "transformers", {"max_tokens": 7, "system": "Be brief."})
    problem = Problem("q3", prompt="Hello")
    rendered = "<system>Be brief.\n<user>Hello\n<assistant>"
    est = backend.estimate(_request(config, [1, 2, 3], problem))
    assert len(est) == 3 and all(s.samples == 1 and s.tokens == len(rendered) + 7 for s in est)
    out = _draw(backend, _request(config, [1], problem))
    assert out[0].prompt_tokens == len(rendered) and 1 <= out[0].completion_tokens <= 7
    plain = SamplingConfig("tiny", "transformers", {"max_tokens": 7, "chat": False})
    assert _draw(backend, _request(plain, [1], problem))[0].prompt_tokens == len("Hello")


@_mark
def test_stop_strings_end_each_sample(backend):
    stops = list("aeiou0123456789")
    config = SamplingConfig("tiny", "transformers", {"max_tokens": 120, "stop": stops})
    out = _draw(backend, _request(config, range(100, 108)))
    assert all(not any(s in c.text for s in stops) for c in out)
    stopped = [c for c in out if c.completion_tokens < 120]
    assert stopped, "with 15 stop characters in 257 tokens, some of 8 samples of 120 tokens stop early"
    free = _draw(backend, _request(SamplingConfig("tiny", "transformers", {"max_tokens": 120}), range(100, 108)))
    for cut, whole in zip(out, free):  # a stop string cuts the same sample short, at the stop
        assert whole.text.startswith(cut.text) and cut.completion_tokens <= whole.completion_tokens


@_mark
def test_check_reports_a_missing_model_folder(tmp_path, backend):
    with pytest.raises(InputError, match="does not exist"):
        make_backend(f"transformers:{tmp_path / 'nothing'}", {})
    with pytest.raises(InputError, match="dtype"):
        make_backend(f"transformers:{tmp_path}", {"dtype": "float8"})
    by_config = make_backend("transformers", {"device": "cpu"})
    with pytest.raises(InputError, match="does not exist"):
        by_config.check([Problem("q", prompt="x")], [SamplingConfig(str(tmp_path / "nothing"), "transformers")])


@_mark
def test_a_whole_run_and_resume(tiny_model, tmp_path):
    problems = [Problem(f"q{i}", prompt=f"{i}+{i}=", reference=str(2 * i)) for i in range(3)]
    configs = [SamplingConfig("tiny", "transformers", {"max_tokens": 8, "temperature": 0.8})]
    db = str(tmp_path / "t.db")
    common = dict(problems=problems, configs=configs, policy="fixed", policy_args={"k": 3}, verifier="exact")
    outcome = run("t", f"transformers:{tiny_model}", store=db, backend_options={"device": "cpu"}, **common)
    assert outcome.state is RunState.DONE and outcome.drawn == 9
    with SQLiteStore(db) as store:
        first = {(s.problem, s.index): (s.text, s.completion_tokens, s.seed) for s in store.samples("t")}
        assert all(s.state is SampleState.DONE and s.prompt_tokens > 0 for s in store.samples("t"))
    assert len({v[0] for v in first.values()}) == 9
    # The same run under another name draws the same samples (seeds derive from the run seed).
    again = run("t2", f"transformers:{tiny_model}", store=db, backend_options={"device": "cpu"}, **common)
    with SQLiteStore(db) as store:
        second = {(s.problem, s.index): (s.text, s.completion_tokens, s.seed) for s in store.samples("t2")}
    assert again.drawn == 9 and second == first
    assert run("t", store=db).drawn == 0
