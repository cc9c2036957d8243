"""Draw samples from a Hugging Face ``transformers`` causal language model on this machine.

``transformers:/path/to/model`` serves every configuration with that model (a local folder with
the weights and tokenizer, or a hub id); plain ``transformers`` loads each configuration's
``model`` instead. Needs the extra: ``pip install 'budgetlab[transformers]'``.

Each request (k samples of one prompt) is one batched ``generate`` over k copies of the prompt.
Sampling is done per row with a ``torch.Generator`` seeded with that sample's own seed (a logits
processor draws the token and ``generate`` then keeps it), so sample ``i`` draws the same tokens
whichever samples share its batch, and a re-issued sample reproduces. Batched matrix products
can still differ in the last bits between batch sizes on some GPUs; ``exact=true`` generates one
sample at a time, so that even that cannot happen.

Configuration parameters: ``max_tokens`` (default 512), ``temperature`` (default 1; 0 is greedy),
``top_p``, ``top_k``, ``min_p``, ``repetition_penalty``, ``stop`` (a string or a list; the text
is cut before it), ``system`` and ``chat`` (false to send the plain prompt even when the
tokenizer has a chat template). ``logprob`` is the mean log-probability of the generated tokens
under the model (before temperature and truncation); token counts are the real ones.

Backend options: ``device`` (default ``cuda`` if available, else ``cpu``), ``dtype`` (``auto``,
``float32``, ``float16``, ``bfloat16``; default ``auto``: bfloat16 on a GPU that has it,
float16 on other GPUs, float32 on the CPU), ``exact`` (above), ``trust_remote_code``.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from budgetlab.backends._base import DrawRequest
from budgetlab.backends._params import ParamReader
from budgetlab.backends._prompt import render_messages, render_text
from budgetlab.core import Completion, Problem, SamplingConfig, Spend
from budgetlab.errors import InputError, pip_dependency_error

__all__ = ["TransformersBackend"]

DEFAULT_MAX_TOKENS = 512
_PARAMS = {
    "max_tokens": "a whole number of tokens to generate at most",
    "temperature": "a number >= 0 (0: greedy)",
    "top_p": "a number in (0, 1]",
    "top_k": "a whole number (0: off)",
    "min_p": "a number in [0, 1)",
    "repetition_penalty": "a number > 0",
    "stop": "a string or a list of strings",
    "system": "a system message",
    "chat": "false to skip the chat template",
    "logprobs": "accepted for compatibility (log-probabilities are always recorded)",
    "seed": "accepted for compatibility (each sample uses its own seed)",
}
_DTYPES = ("auto", "float32", "float16", "bfloat16")


def _import() -> tuple[Any, Any]:
    try:
        import transformers
    except ImportError:
        raise pip_dependency_error("the transformers backend", "transformers", extra="transformers") from None
    try:
        import torch
    except ImportError:
        raise pip_dependency_error("the transformers backend", "torch", extra="transformers") from None
    return transformers, torch


@dataclass(frozen=True)
class _Params:
    max_tokens: int
    temperature: float
    top_p: float
    top_k: int
    min_p: float
    repetition_penalty: float
    stop: tuple[str, ...]
    chat: bool


def parse_params(config: SamplingConfig) -> _Params:
    read = ParamReader(config, _PARAMS, "transformers")
    stop = read.stop()
    chat = bool(read.flag("chat", True))
    return _Params(
        max_tokens=read.number("max_tokens", DEFAULT_MAX_TOKENS, lambda v: v >= 1, integral=True),
        temperature=float(read.number("temperature", 1.0, lambda v: v >= 0)),
        top_p=float(read.number("top_p", 1.0, lambda v: 0 < v <= 1)),
        top_k=read.number("top_k", 0, lambda v: v >= 0, integral=True),
        min_p=float(read.number("min_p", 0.0, lambda v: 0 <= v < 1)),
        repetition_penalty=float(read.number("repetition_penalty", 1.0, lambda v: v > 0)),
        stop=stop,
        chat=chat,
    )


class _Loaded:
    """A tokenizer, and the model once it is needed."""

    def __init__(self, name: str, tokenizer: Any) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.model: Any = None
        self.lock = threading.Lock()  # the fast tokenizer is shared by the event loop and the generating thread


class TransformersBackend:
    """A local ``transformers`` model; see the module docstring."""

    name = "transformers"

    def __init__(
        self,
        target: str | None = None,
        device: str | None = None,
        dtype: str = "auto",
        exact: bool = False,
        trust_remote_code: bool = False,
    ) -> None:
        self._transformers, self._torch = _import()
        if dtype not in _DTYPES:
            raise InputError(f"transformers backend option dtype={dtype!r} must be one of {', '.join(_DTYPES)}")
        if not isinstance(exact, bool):
            raise InputError(f"transformers backend option exact={exact!r} must be true or false")
        self.target = target
        if target is not None and _looks_local(target) and not os.path.isdir(os.path.expanduser(target)):
            raise InputError(
                f"transformers model folder {target!r} does not exist; give a folder with config.json, the "
                "weights and the tokenizer (as written by save_pretrained), or a hub id"
            )
        torch = self._torch
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.dtype = dtype
        self.exact = exact
        self.trust_remote_code = bool(trust_remote_code)
        self._models: dict[str, _Loaded] = {}
        self._prompts: dict[tuple[str, str], list[int]] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="budgetlab-transformers")

    # ---- models and prompts -------------------------------------------------------------------
    def _model_name(self, config: SamplingConfig) -> str:
        return os.path.expanduser(self.target) if self.target else config.model

    def _loaded(self, config: SamplingConfig) -> _Loaded:
        name = self._model_name(config)
        loaded = self._models.get(name)
        if loaded is None:
            if _looks_local(name) and not os.path.isdir(name):
                raise InputError(
                    f"configuration {config.name!r}: model folder {name!r} does not exist; give transformers:FOLDER "
                    "or a configuration whose model is a folder or a hub id"
                )
            try:
                tokenizer = self._transformers.AutoTokenizer.from_pretrained(
                    name, trust_remote_code=self.trust_remote_code
                )
            except (OSError, ValueError) as exc:
                raise InputError(
                    f"cannot load the tokenizer of {name!r} ({type(exc).__name__}: {' '.join(str(exc).split())[:300]}); "
                    "give a model folder written by save_pretrained, or a hub id reachable from here"
                ) from None
            loaded = self._models[name] = _Loaded(name, tokenizer)
        return loaded

    def _model(self, loaded: _Loaded) -> Any:
        if loaded.model is None:
            dtype = self._torch_dtype()
            key = "dtype" if _version(self._transformers.__version__) >= (4, 56) else "torch_dtype"
            model = self._transformers.AutoModelForCausalLM.from_pretrained(
                loaded.name, trust_remote_code=self.trust_remote_code, **{key: dtype}
            )
            model.to(self.device)
            model.eval()
            loaded.model = model
        return loaded.model

    def _torch_dtype(self) -> Any:
        torch = self._torch
        if self.dtype != "auto":
            return getattr(torch, self.dtype)
        if self.device.startswith("cuda"):
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32

    def _prompt_ids(self, problem: Problem, config: SamplingConfig, params: _Params) -> list[int]:
        key = (problem.id, config.id)
        ids = self._prompts.get(key)
        if ids is None:
            loaded = self._loaded(config)
            tok = loaded.tokenizer
            with loaded.lock:
                if params.chat and getattr(tok, "chat_template", None):
                    text = tok.apply_chat_template(
                        render_messages(problem, config), add_generation_prompt=True, tokenize=False
                    )
                    ids = list(tok(text, add_special_tokens=False)["input_ids"])
                else:
                    ids = list(tok(render_text(problem, config))["input_ids"])
            if not ids:
                raise InputError(f"problem {problem.id!r} renders to an empty prompt for {config.name!r}")
            self._prompts[key] = ids
        return ids

    # ---- the backend contract -----------------------------------------------------------------
    def check(self, problems: Sequence[Problem], configs: Sequence[SamplingConfig]) -> None:
        for config in configs:
            parse_params(config)
            self._loaded(config)
        for problem in problems:
            if problem.prompt is None and not problem.messages:
                raise InputError(f"problem {problem.id!r} has no prompt; give each problem a 'prompt' (or 'messages')")

    def estimate(self, request: DrawRequest) -> list[Spend]:
        params = parse_params(request.config)
        prompt = len(self._prompt_ids(request.problem, request.config, params))
        return [Spend(samples=1, tokens=prompt + params.max_tokens)] * len(request.samples)

    async def draw(self, request: DrawRequest) -> list[Completion]:
        params = parse_params(request.config)
        ids = self._prompt_ids(request.problem, request.config, params)
        loaded = self._loaded(request.config)
        seeds = [s.seed for s in request.samples]
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._generate, loaded, ids, seeds, params)

    async def aclose(self) -> None:
        self._executor.shutdown(wait=True)
        self._models.clear()
        if self.device.startswith("cuda"):
            try:
                self._torch.cuda.empty_cache()
            except Exception:
                pass

    # ---- generation (in the backend's one thread) ---------------------------------------------
    def _generate(self, loaded: _Loaded, ids: list[int], seeds: list[int], params: _Params) -> list[Completion]:
        model = self._model(loaded)
        groups = [[s] for s in seeds] if self.exact else [seeds]
        out: list[Completion] = []
        for group in groups:
            started = time.perf_counter()
            rows = self._generate_rows(model, loaded, ids, group, params)
            latency = (time.perf_counter() - started) / max(1, len(group))
            out.extend(
                Completion(text=text, prompt_tokens=len(ids), completion_tokens=n, logprob=lp, latency=latency)
                for text, n, lp in rows
            )
        return out

    def _generate_rows(
        self, model: Any, loaded: _Loaded, ids: list[int], seeds: list[int], params: _Params
    ) -> list[tuple[str, int, float | None]]:
        torch = self._torch
        tf = self._transformers
        tok = loaded.tokenizer
        k = len(seeds)
        device = model.device
        input_ids = torch.tensor([ids] * k, dtype=torch.long, device=device)
        gen = model.generation_config
        eos = gen.eos_token_id if gen.eos_token_id is not None else tok.eos_token_id
        eos_ids = [] if eos is None else ([eos] if isinstance(eos, int) else list(eos))
        pad = gen.pad_token_id if gen.pad_token_id is not None else tok.pad_token_id
        if pad is None:
            pad = eos_ids[0] if eos_ids else 0
        config = tf.GenerationConfig(
            max_new_tokens=params.max_tokens,
            do_sample=False,  # the sampler below draws each token; generate keeps it
            num_beams=1,
            eos_token_id=eos_ids or None,
            pad_token_id=pad,
            bos_token_id=gen.bos_token_id,
            repetition_penalty=params.repetition_penalty,
        )
        sampler = _make_sampler(tf, torch, seeds, params, device)
        stopper = _make_stopper(tf, torch, loaded, len(ids), eos_ids, params.stop, k)
        with torch.inference_mode():
            sequences = model.generate(
                input_ids=input_ids,
                attention_mask=torch.ones_like(input_ids),
                generation_config=config,
                logits_processor=tf.LogitsProcessorList([sampler]),
                stopping_criteria=tf.StoppingCriteriaList([stopper]),
            )
        logprobs = torch.stack(sampler.logprobs, dim=1).cpu() if sampler.logprobs else None
        rows = []
        for i in range(k):
            generated = sequences[i, len(ids):].tolist()
            n = stopper.lengths[i] if stopper.lengths[i] is not None else len(generated)
            n = min(n, len(generated))
            tokens = generated[:n]
            if tokens and tokens[-1] in eos_ids:
                tokens = tokens[:-1]  # the end-of-sequence token is counted, not shown
            with loaded.lock:
                text = tok.decode(tokens, skip_special_tokens=True)
            for stop in params.stop:
                cut = text.find(stop)
                if cut >= 0:
                    text = text[:cut]
            lp = float(logprobs[i, :n].mean()) if logprobs is not None and n > 0 else None
            rows.append((text, n, lp))
        return rows


def _looks_local(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.path.isabs(name) or os.path.exists(name)


def _version(text: str) -> tuple[int, int]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return (parts + [0, 0])[0], (parts + [0, 0])[1]


def _make_sampler(tf: Any, torch: Any, seeds: list[int], params: _Params, device: Any) -> Any:
    """A logits processor that draws each row's next token with that row's own generator and
    leaves only that token possible, recording its log-probability under the model."""

    class SeededSampler(tf.LogitsProcessor):
        def __init__(self) -> None:
            self.generators = [torch.Generator(device=device).manual_seed(int(s) % 2**64) for s in seeds]
            self.logprobs: list[Any] = []

        def __call__(self, input_ids: Any, scores: Any) -> Any:
            logits = scores.float()
            logp = torch.log_softmax(logits, dim=-1)
            if params.temperature == 0:
                chosen = logits.argmax(dim=-1)
            else:
                warped = logits / params.temperature
                if params.top_k > 0 and params.top_k < warped.shape[-1]:
                    kth = torch.topk(warped, params.top_k, dim=-1).values[..., -1:]
                    warped = warped.masked_fill(warped < kth, float("-inf"))
                probs = torch.softmax(warped, dim=-1)
                if params.min_p > 0:
                    floor = probs.max(dim=-1, keepdim=True).values * params.min_p
                    probs = probs.masked_fill(probs < floor, 0.0)
                if params.top_p < 1.0:
                    sorted_probs, order = torch.sort(probs, dim=-1, descending=True)
                    before = torch.cumsum(sorted_probs, dim=-1) - sorted_probs
                    sorted_probs = sorted_probs.masked_fill(before >= params.top_p, 0.0)
                    probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
                chosen = torch.stack(
                    [torch.multinomial(probs[i], 1, generator=g)[0] for i, g in enumerate(self.generators)]
                )
            self.logprobs.append(logp.gather(-1, chosen[:, None])[:, 0])
            out = torch.full_like(scores, float("-inf"))
            return out.scatter(-1, chosen[:, None], 0.0)

    return SeededSampler()


def _make_stopper(
    tf: Any, torch: Any, loaded: _Loaded, prompt_len: int, eos_ids: list[int], stops: tuple[str, ...], k: int
) -> Any:
    """Stopping criteria that end each row at its end-of-sequence token or stop string, and
    remember how many tokens each row generated."""
    window = max((len(s) for s in stops), default=0) + 8

    class Stopper(tf.StoppingCriteria):
        def __init__(self) -> None:
            self.lengths: list[int | None] = [None] * k

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            step = input_ids.shape[1] - prompt_len
            last = input_ids[:, -1].tolist()
            for i in range(k):
                if self.lengths[i] is not None:
                    continue
                if last[i] in eos_ids:
                    self.lengths[i] = step
                elif stops:
                    tail = input_ids[i, max(prompt_len, input_ids.shape[1] - window):].tolist()
                    with loaded.lock:
                        text = loaded.tokenizer.decode(tail, skip_special_tokens=True)
                    if any(s in text for s in stops):
                        self.lengths[i] = step
            return torch.tensor([n is not None for n in self.lengths], dtype=torch.bool, device=input_ids.device)

    return Stopper()
