"""One GGUF model on this machine: k samples of a prompt as k parallel sequences that share the
prompt's evaluation, and every request in flight decoded together.

The model is loaded in the caller's thread (tokenizing needs only the vocabulary, which
llama.cpp reads without locking); the llama context lives in one worker thread and is used only
there. That thread loops:

1. admit waiting requests, oldest first, while sequence slots are free: their prompts are
   evaluated (several prompts in one ``llama_decode``), each once, into the first sequence of
   its group; the prompt's KV cells are then copied to the group's other sequences
   (``llama_memory_seq_cp``), and each sequence draws its first token from the prompt's logits;
2. decode one token for every live sequence in one batch (all problems together), with logits
   for each, and let each sequence draw its next token with its own RNG (``_sampling``);
3. finish sequences (EOS/EOT, a stop string, ``max_tokens``), clear their cells
   (``llama_memory_seq_rm``) and hand their slots to waiting requests; a request's future is
   resolved when its last sample is done.

Budget forcing (:mod:`budgetlab.backends._forcing`) happens inside a sequence: while it thinks,
an end of thinking the rules refuse is taken back (the cells of the end delimiter's tokens are
removed and the sequence continues from the position before them) and the forced text (``Wait``,
or the end delimiter and the answer prefix) is fed token by token in the following steps, one
token per step like any other, after which the sequence samples again. A sequence never goes
past its ``cap`` of completion tokens, which the backend reserves.

Each sequence has its own KV buffer (``kv_unified=False``), so its attention reads only its own
cells; llama.cpp decodes such a batch in one pass only when the sequence ids are consecutive, so
new requests take the lowest free ids and sequences left above a gap are moved down
(:meth:`Engine._compact`). ``max_sequences`` caps the sequences decoded together (the context's
``n_seq_max``); each has ``n_ctx_seq`` cells, sized for the longest prompt + ``max_tokens`` seen,
and the context is rebuilt larger (between batches) when a longer request arrives. A request
with more samples than free slots is admitted in parts (each part evaluates the prompt once)
rather than wait for every running sequence to end. The number of threads is chosen by
:class:`_ThreadChoice`. The logits of a sequence do not depend on the batch it is decoded in,
its position in it, its sequence id or the number of threads (checked bit for bit with
SmolLM2 and Gemma 3), so a seed draws the same tokens however requests are batched.
"""

from __future__ import annotations

import codecs
import concurrent.futures
import ctypes
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from budgetlab.backends._forcing import THINKING, BudgetForcing, ForcingTrace
from budgetlab.backends._llama._models import import_llama, recent_log
from budgetlab.backends._llama._sampling import RowSampler, SamplingParams
from budgetlab.backends._llama._template import ChatTemplate
from budgetlab.backends._llama._weights import FLOAT_FILE_TYPES
from budgetlab.core import Completion
from budgetlab.errors import InputError

__all__ = ["Engine", "GenParams"]

_CTX_STEP = 256  # cells per sequence are a multiple of this
_MIN_CTX_SEQ = 256
_MAX_CELLS = 1 << 16  # KV cells of one context (all sequences): fewer parallel sequences when long
_ATTR_CONTROL = 1 << 3  # llama_token_attr: control tokens render as "" and plain text never parses to them
_GATHER_SECONDS = 0.003  # an idle engine waits this long for the other requests sent with the first


@dataclass(frozen=True)
class GenParams:
    sampling: SamplingParams
    max_tokens: int
    stop: tuple[str, ...] = ()
    ignore_eos: bool = False
    seed: int | None = None  # mixed into every sample's seed (the configuration's own ``seed``)
    forcing: BudgetForcing | None = None
    budget: int = 0  # completion tokens at most, forced ones included (0: max_tokens)

    @property
    def cap(self) -> int:
        """The most completion tokens a sample may have (with forcing: thinking, forced text
        and answer), so the most KV cells it adds to its prompt's."""
        return self.budget or self.max_tokens


@dataclass
class _Job:
    prompt: list[int]
    params: GenParams
    seeds: list[int]
    future: concurrent.futures.Future
    submitted: float
    results: list[Completion | None]
    waiting: deque[int]  # sample positions not yet admitted
    unfinished: int


@dataclass
class _Seq:
    job: _Job
    slot: int  # position of the sample in its job
    seq_id: int
    rng: np.random.Generator | None
    pos: int  # position of the next token to feed
    token: int = -1  # the last token drawn, fed at the next step
    n_gen: int = 0  # completion tokens: sampled (a refused end of thinking included) and forced
    n_sampled: int = 0  # sampled tokens kept in the sequence; ``logprob_sum`` is over these
    logprob_sum: float = 0.0
    text: str = ""
    decoder: Any = field(default=None)
    done: bool = False
    error: str | None = None
    answer_tokens: int = 0  # sampled since the answer started (all of them without forcing)
    answer_start: int = 0  # where the answer starts in ``text``: stop strings are looked for after it
    # budget forcing
    trace: ForcingTrace | None = None
    forced: deque[int] = field(default_factory=deque)  # tokens to feed before sampling again
    segment: int = 0  # where the model's current run of thinking starts in ``text``
    recent: list[tuple[int, int, float]] = field(default_factory=list)  # its tokens: (position, text offset, logprob)


def _rng(seed: int, config_seed: int | None) -> np.random.Generator:
    entropy = [seed & ((1 << 64) - 1)] if config_seed is None else [seed & ((1 << 64) - 1), config_seed & ((1 << 64) - 1)]
    return np.random.Generator(np.random.PCG64(entropy))


class Engine:
    """A loaded model and its decoding thread; see the module docstring."""

    def __init__(self, path: Path, *, threads: int | None = None, max_sequences: int = 32, label: str | None = None) -> None:
        L = self.L = import_llama()
        self.path = Path(path)
        self.label = label or self.path.name
        self.threads = _ThreadChoice(threads)
        self.max_sequences = int(max_sequences)
        params = L.llama_model_default_params()
        model = L.llama_model_load_from_file(str(self.path).encode(), params)
        if not model:
            raise InputError(
                f"llama.cpp cannot load the model file {self.path} ({recent_log() or 'no details'}); "
                "give a GGUF file of an architecture this llama-cpp-python supports, or upgrade it: "
                "pip install --upgrade llama-cpp-python"
            )
        self.model = model
        self.vocab = L.llama_model_get_vocab(model)
        self.n_vocab = int(L.llama_vocab_n_tokens(self.vocab))
        self.n_ctx_train = int(L.llama_model_n_ctx_train(model))
        self.add_bos = bool(L.llama_vocab_get_add_bos(self.vocab))
        self.bos = int(L.llama_vocab_bos(self.vocab))
        self.eog = frozenset(t for t in range(self.n_vocab) if L.llama_vocab_is_eog(self.vocab, t))
        self.eog_list = sorted(self.eog)
        # With float weights llama.cpp multiplies one row by a kernel other than two or more
        # (the logits differ in the last bits), so no decode has a single row: see _step, _admit.
        self.pad_single_rows = _int_or_none(self.metadata("general.file_type")) in FLOAT_FILE_TYPES
        source = self.metadata("tokenizer.chat_template")
        self.chat_template = (
            ChatTemplate(source, self._piece_text(self.bos), self._piece_text(int(L.llama_vocab_eos(self.vocab))))
            if source
            else None
        )
        self._token_cache: dict[tuple[str, bool | str | None], list[int]] = {}  # None: tokenize_text
        self._pieces: dict[int, bytes] = {}
        # shared with the worker thread
        self._cond = threading.Condition()
        self._queue: deque[_Job] = deque()
        self._closing = False
        self._broken: str | None = None  # why the worker stopped, if it failed
        self._thread: threading.Thread | None = None
        # worker-thread state
        self._ctx: Any = None
        self._mem: Any = None
        self._batch: Any = None
        self._batch_size = 0
        self.n_ctx_seq = 0
        self._free_ids: list[int] = []
        self._live: list[_Seq] = []
        self._sampler = RowSampler(self.n_vocab)
        self.stats = {
            "prompt_evals": 0,  # prompt evaluations (one per admitted group of sequences)
            "prompt_tokens_evaluated": 0,
            "decode_calls": 0,  # llama_decode calls for generation steps
            "tokens_generated": 0,
            "max_parallel": 0,  # most sequences decoded in one step
            "max_jobs_per_step": 0,  # most requests with a sequence in one step
            "context_builds": 0,
            "decode_seconds": 0.0,  # inside llama_decode (prompts and steps)
            "busy_seconds": 0.0,  # the worker's loop while it had work (decode + sampling + bookkeeping)
            "threads": self.threads.current,  # llama.cpp threads in use now
            "thread_switches": 0,
            "moves": 0,  # sequences moved to a lower id (see _compact)
            "padded_steps": 0,  # steps of one sequence decoded with the scratch sequence beside it
        }
        self.threads.stats = self.stats

    # ---- model facts (any thread) -----------------------------------------------------------
    def metadata(self, key: str) -> str | None:
        buf = ctypes.create_string_buffer(1 << 16)
        n = self.L.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        if n < 0:
            return None
        if n >= len(buf):
            buf = ctypes.create_string_buffer(n + 1)
            self.L.llama_model_meta_val_str(self.model, key.encode(), buf, len(buf))
        return buf.value.decode("utf-8", "replace")

    def tokenize(self, text: str, *, special: bool) -> list[int]:
        """``special``: the text is a rendered chat template (its control tokens are parsed,
        BOS added only if the template did not write it); else plain text (BOS added if the
        model wants one, control-token text left as text). Cached."""
        key = (text, special)
        cached = self._token_cache.get(key)
        if cached is not None:
            return cached
        tokens = self._llama_tokenize(text, add_bos=not special and self.add_bos, special=special)
        if special and self.add_bos and (not tokens or tokens[0] != self.bos):
            tokens.insert(0, self.bos)
        self._remember_tokens(key, tokens)
        return tokens

    def tokenize_text(self, text: str) -> list[int]:
        """Plain text that continues a sequence (forced text): no BOS, control-token text left
        as text. Cached; safe in the worker thread (it reads only the vocabulary)."""
        key = (text, None)
        cached = self._token_cache.get(key)
        if cached is not None:
            return cached
        tokens = self._llama_tokenize(text, add_bos=False, special=False)
        self._remember_tokens(key, tokens)
        return tokens

    def tokenize_forced(self, text: str) -> list[int]:
        """Forced text (a delimiter, the answer prefix, a wait): plain text, except that the text
        of a control token (a delimiter such as ``<|end_think|>`` that the tokenizer marks as
        control, which plain text never turns into) is fed as that token, the way the model
        writes it. Tokens the tokenizer marks user-defined (Qwen3's ``</think>``) are plain
        text already. Cached."""
        key = (text, "forced")
        cached = self._token_cache.get(key)
        if cached is not None:
            return cached
        tokens = self._llama_tokenize(text, add_bos=False, special=True)
        if not any(self._is_control(t) for t in tokens):
            tokens = self.tokenize_text(text)
        self._remember_tokens(key, tokens)
        return tokens

    def has_control_text(self, text: str) -> bool:
        """Whether ``text`` holds the text of one of the model's control tokens."""
        return self.tokenize_forced(text) != self.tokenize_text(text)

    def _is_control(self, token: int) -> bool:
        return bool(self.L.llama_vocab_get_attr(self.vocab, token) & _ATTR_CONTROL)

    def _llama_tokenize(self, text: str, *, add_bos: bool, special: bool) -> list[int]:
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (self.L.llama_token * cap)()
        n = self.L.llama_tokenize(self.vocab, data, len(data), buf, cap, add_bos, special)
        if n < 0:  # the buffer was too small: -n is the size needed
            cap = -n + 8
            buf = (self.L.llama_token * cap)()
            n = self.L.llama_tokenize(self.vocab, data, len(data), buf, cap, add_bos, special)
        return list(buf[:n])

    def _remember_tokens(self, key: tuple, tokens: list[int]) -> None:
        if len(self._token_cache) > 100_000:
            self._token_cache.clear()
        self._token_cache[key] = tokens

    def _piece(self, token: int) -> bytes:
        piece = self._pieces.get(token)
        if piece is None:
            buf = ctypes.create_string_buffer(64)
            n = self.L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            if n < 0:
                buf = ctypes.create_string_buffer(-n)
                n = self.L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, False)
            piece = self._pieces[token] = buf.raw[:n]
        return piece

    def _piece_text(self, token: int) -> str:
        if token < 0:
            return ""
        buf = ctypes.create_string_buffer(64)
        n = self.L.llama_token_to_piece(self.vocab, token, buf, len(buf), 0, True)
        return buf.raw[: max(n, 0)].decode("utf-8", "replace")

    def detokenize(self, tokens: list[int]) -> str:
        return b"".join(self._piece(t) for t in tokens).decode("utf-8", "replace")

    # ---- requests (any thread) --------------------------------------------------------------
    def submit(self, prompt: list[int], params: GenParams, seeds: list[int]) -> concurrent.futures.Future:
        """Draw one completion per seed; the future resolves to the completions in order."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        job = _Job(
            prompt=list(prompt), params=params, seeds=list(seeds), future=future, submitted=time.perf_counter(),
            results=[None] * len(seeds), waiting=deque(range(len(seeds))), unfinished=len(seeds),
        )  # fmt: skip
        if not seeds:
            future.set_result([])
            return future
        with self._cond:
            if self._closing:
                raise RuntimeError("the embedded backend is closed")
            if self._broken is not None:
                future.set_result([Completion(prompt_tokens=len(prompt), error=self._broken)] * len(seeds))
                return future
            self._queue.append(job)
            if self._thread is None:
                self._thread = threading.Thread(target=self._main, name=f"budgetlab-llama-{self.label}", daemon=True)
                self._thread.start()
            self._cond.notify()
        return future

    def close(self) -> None:
        """Stop the worker (requests still waiting fail) and free the context and the model."""
        with self._cond:
            self._closing = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
        if self.model is not None:
            self.L.llama_model_free(self.model)
            self.model = None

    # ---- the worker thread ------------------------------------------------------------------
    def _main(self) -> None:
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._live and not self._closing:
                        self._cond.wait()
                    if self._closing:
                        break
                    idle = not self._live
                if idle:  # let the other requests of the same burst arrive, to share the first batch
                    time.sleep(_GATHER_SECONDS)
                started = time.perf_counter()
                groups = self._take()
                if groups:
                    self._admit(groups)
                if self._live:
                    self._step()
                self.stats["busy_seconds"] += time.perf_counter() - started
        except BaseException as exc:  # a bug or a llama.cpp failure: fail every request, not hang
            with self._cond:
                self._broken = f"embedded backend failed: {type(exc).__name__}: {exc}"
            self._fail_all(self._broken)
            raise
        finally:
            self._fail_all("the embedded backend was closed before this sample was drawn")
            self._free_context()

    def _fail_all(self, message: str) -> None:
        for seq in self._live:
            self._finish(seq, error=message)
        self._live = []
        with self._cond:
            jobs = list(self._queue)
            self._queue.clear()
        for job in jobs:
            while job.waiting:
                self._settle(job, job.waiting.popleft(), Completion(error=message))

    def _settle(self, job: _Job, slot: int, completion: Completion) -> None:
        job.results[slot] = completion
        job.unfinished -= 1
        if job.unfinished == 0 and not job.future.done():
            job.future.set_result(list(job.results))

    def _take(self) -> list[tuple[_Job, list[int]]]:
        """Groups (job, sample positions) to admit now, oldest first. With sequences running,
        the context stays as it is; without, it will be sized for what is admitted (a longer
        request gets longer sequences, and fewer of them fit: see ``_MAX_CELLS``)."""
        groups: list[tuple[_Job, list[int]]] = []
        live = len(self._live)
        planned = self.n_ctx_seq if self._ctx is not None else 0
        admitted = 0
        with self._cond:
            while self._queue:
                job = self._queue[0]
                need = len(job.prompt) + job.params.cap
                if need > self.n_ctx_train:
                    self._queue.popleft()
                    what = "max_tokens" if not job.params.budget else "the completion tokens budget forcing may need"
                    message = (
                        f"prompt ({len(job.prompt)} tokens) + {what} ({job.params.cap}) exceeds the "
                        f"model's context of {self.n_ctx_train} tokens; lower max_tokens or shorten the prompt"
                    )
                    while job.waiting:
                        self._settle(job, job.waiting.popleft(), Completion(prompt_tokens=len(job.prompt), error=message))
                    continue
                if job.future.cancelled():
                    self._queue.popleft()
                    continue
                if need > planned:
                    if live:
                        break  # the context grows once the running sequences are done
                    planned = self._plan_ctx_seq(need)
                free = self._cap_for(planned) - live - admitted
                if free <= 0:
                    break
                take = min(free, len(job.waiting))
                if take < len(job.waiting) and (live or groups) and take < max(1, self.max_sequences // 4):
                    break  # wait for more free slots rather than evaluate the prompt for a few sequences
                groups.append((job, [job.waiting.popleft() for _ in range(take)]))
                admitted += take
                if not job.waiting:
                    self._queue.popleft()
        return groups

    def _plan_ctx_seq(self, need: int) -> int:
        """Cells per sequence of the context that serves a request needing ``need`` cells."""
        if self._ctx is not None and need <= self.n_ctx_seq:
            return self.n_ctx_seq
        size = max(_MIN_CTX_SEQ, -(-need // _CTX_STEP) * _CTX_STEP, self.n_ctx_seq * 2 if self.n_ctx_seq else 0)
        return min(size, max(need, self.n_ctx_train))

    def _cap_for(self, n_ctx_seq: int) -> int:
        return max(1, min(self.max_sequences, _MAX_CELLS // max(1, n_ctx_seq)))

    def _ensure_context(self, need: int) -> None:
        if self._ctx is not None and need <= self.n_ctx_seq:
            return
        L = self.L
        n_ctx_seq = self._plan_ctx_seq(need)
        n_seq = self._cap_for(n_ctx_seq)
        n_seq_max = max(n_seq, 2) if self.pad_single_rows else n_seq  # the scratch sequence of _step
        self._free_context()
        cp = L.llama_context_default_params()
        cp.n_seq_max = n_seq_max
        cp.n_ctx = n_ctx_seq * n_seq_max
        cp.n_batch = max(512, self.max_sequences)
        cp.n_ubatch = max(512, self.max_sequences)
        cp.n_threads = cp.n_threads_batch = self.threads.current
        # A KV buffer per sequence: a sequence's attention reads only its own cells (one shared
        # buffer measured 5-7% slower at 8-32 sequences of 64 tokens, and its cost grows with
        # every sequence's length). llama.cpp decodes a batch of such sequences in one pass only
        # when their ids are consecutive, so _step keeps the live ids at 0..n-1 (see _compact).
        cp.kv_unified = False
        cp.no_perf = True
        ctx = L.llama_init_from_model(self.model, cp)
        if not ctx:
            raise MemoryError(
                f"llama.cpp cannot create a context of {cp.n_ctx} cells for {self.max_sequences} sequences "
                f"({recent_log() or 'no details'}); lower max_tokens or the backend option max_sequences"
            )
        self._ctx = ctx
        self.threads.applied = self.threads.current
        self._mem = L.llama_get_memory(ctx)
        self.n_ctx_seq = n_ctx_seq
        self._batch_size = int(cp.n_batch)
        self._batch = L.llama_batch_init(self._batch_size, 0, 1)
        self._free_ids = list(range(n_seq))
        self.stats["context_builds"] += 1

    def _free_context(self) -> None:
        if self._batch is not None:
            self.L.llama_batch_free(self._batch)
            self._batch = None
        if self._ctx is not None:
            self.L.llama_free(self._ctx)
            self._ctx = None
            self._mem = None

    def _admit(self, groups: list[tuple[_Job, list[int]]]) -> None:
        L = self.L
        if not self._live:
            self._ensure_context(max(len(job.prompt) + job.params.cap for job, _ in groups))
        # Evaluate the prompts, several per llama_decode; each prompt once, in its first sequence.
        plans: list[tuple[_Job, list[int], list[int]]] = []
        self._free_ids.sort()  # the lowest free ids first: they fill the holes of finished sequences
        for job, slots in groups:
            ids = [self._free_ids.pop(0) for _ in slots]
            plans.append((job, slots, ids))
        batch = self._batch
        cap = self._batch_size
        pending: list[tuple[_Job, list[int], list[int], int]] = []  # plans whose last token is in the batch
        n = 0

        def flush() -> None:
            nonlocal n
            if n == 0:
                return
            if self.pad_single_rows and len(pending) == 1 and n >= 2:
                batch.logits[n - 2] = 1  # two rows of logits, as when prompts are evaluated together
            batch.n_tokens = n
            self.threads.apply(L, self._ctx, None)
            started = time.perf_counter()
            rc = L.llama_decode(self._ctx, batch)
            self.stats["decode_seconds"] += time.perf_counter() - started
            for job, slots, ids, row in pending:
                if rc != 0:
                    message = f"llama_decode failed on a prompt (code {rc}; {recent_log() or 'no details'})"
                    for slot, seq_id in zip(slots, ids):
                        L.llama_memory_seq_rm(self._mem, seq_id, -1, -1)
                        self._free_ids.append(seq_id)
                        self._settle(job, slot, Completion(prompt_tokens=len(job.prompt), error=message))
                    continue
                logits = np.ctypeslib.as_array(L.llama_get_logits_ith(self._ctx, row), shape=(self.n_vocab,))
                self._start(job, slots, ids, logits)
            pending.clear()
            n = 0

        for job, slots, ids in plans:
            tokens = job.prompt
            first = ids[0]
            for start in range(0, len(tokens), cap):
                chunk = tokens[start : start + cap]
                if n + len(chunk) > cap:
                    flush()
                for j, tok in enumerate(chunk):
                    i = n + j
                    batch.token[i] = tok
                    batch.pos[i] = start + j
                    batch.n_seq_id[i] = 1
                    batch.seq_id[i][0] = first
                    batch.logits[i] = 0
                n += len(chunk)
            batch.logits[n - 1] = 1
            pending.append((job, slots, ids, n - 1))
            self.stats["prompt_evals"] += 1
            self.stats["prompt_tokens_evaluated"] += len(tokens)
        flush()

    def _start(self, job: _Job, slots: list[int], ids: list[int], logits: np.ndarray) -> None:
        """The prompt is in sequence ``ids[0]``: share it with the group's other sequences and
        draw each sequence's first token from the prompt's last logits."""
        L = self.L
        for dst in ids[1:]:
            L.llama_memory_seq_cp(self._mem, ids[0], dst, -1, -1)
        params = job.params
        config_seed = params.seed
        for slot, seq_id in zip(slots, ids):
            seq = _Seq(
                job=job, slot=slot, seq_id=seq_id,
                rng=None if params.sampling.greedy else _rng(job.seeds[slot], config_seed),
                pos=len(job.prompt), decoder=codecs.getincrementaldecoder("utf-8")("replace"),
                trace=None if params.forcing is None else ForcingTrace(params.forcing),
            )  # fmt: skip
            self._live.append(seq)
            self._accept(seq, logits)

    def _accept(self, seq: _Seq, logits: np.ndarray) -> None:
        """Draw the sequence's next token from ``logits`` (or take the next forced one) and
        apply the stopping rules."""
        params = seq.job.params
        if seq.forced:  # forced text is being fed: these logits are not sampled
            seq.token = seq.forced.popleft()
            seq.n_gen += 1
            if seq.n_gen >= params.cap:
                self._finish(seq)
            return
        if params.ignore_eos and self.eog_list:
            logits[self.eog_list] = -np.inf  # llama.cpp's output buffer, rewritten by the next decode
        try:
            token, logprob = self._sampler.sample(logits, params.sampling, seq.rng)
        except (FloatingPointError, ValueError) as exc:  # e.g. non-finite logits: this sample fails
            self._finish(seq, error=f"sampling failed: {exc}")
            return
        seq.n_gen += 1
        seq.n_sampled += 1
        seq.logprob_sum += logprob
        seq.token = token
        if seq.trace is not None and seq.trace.phase == THINKING:
            self._think(seq, token, logprob)
            return
        seq.answer_tokens += 1
        if token in self.eog and not params.ignore_eos:
            self._finish(seq)
            return
        piece = self._piece(token)
        if piece:
            before = len(seq.text)
            seq.text += seq.decoder.decode(piece)
            if params.stop:
                cut = _find_stop(seq.text, params.stop, before, seq.answer_start)
                if cut >= 0:
                    seq.text = seq.text[:cut]
                    self._finish(seq)
                    return
        if seq.answer_tokens >= params.max_tokens or seq.n_gen >= params.cap:
            self._finish(seq)

    # ---- budget forcing (worker thread) -------------------------------------------------------
    def _think(self, seq: _Seq, token: int, logprob: float) -> None:
        """A token sampled while thinking: an end of thinking (the end delimiter completed, or an
        end-of-sequence token) goes to the forcing rules; else the token counts as thinking."""
        trace = seq.trace
        assert trace is not None
        if token in self.eog:  # not fed: the forced text replaces it
            seq.n_sampled -= 1
            seq.logprob_sum -= logprob
            self._force(seq, trace.end_attempt(), replace_current=True)
            return
        before = len(seq.text)
        seq.recent.append((seq.pos, before, logprob))
        seq.text += seq.decoder.decode(self._thinking_piece(token, trace.forcing.think_end))
        at = _find_stop(seq.text, (trace.forcing.think_end,), before, seq.segment)
        if at >= 0:
            carry = self._take_back(seq, at)
            self._force(seq, trace.end_attempt(), replace_current=True, carry=carry)
            return
        end = trace.count(1)
        if end is not None:  # the thinking budget is spent: this token is kept, the end follows it
            self._force(seq, end, replace_current=False)
        elif seq.n_gen >= seq.job.params.cap:
            self._finish(seq)

    def _thinking_piece(self, token: int, think_end: str) -> bytes:
        """A thinking token's bytes; a control token that is (part of) the end delimiter is
        written as its text, so that the delimiter is seen (control tokens are otherwise "")."""
        piece = self._piece(token)
        if not piece and self._is_control(token):
            text = self._piece_text(token)
            if text and text in think_end:
                return text.encode()
        return piece

    def _take_back(self, seq: _Seq, at: int) -> str:
        """Remove the tokens that wrote the text from offset ``at`` on (the end delimiter the
        model just completed): their cells, their text, their counts. Returns the text the first
        of them wrote before ``at``, which is fed again with the forced text."""
        i = len(seq.recent) - 1
        while i > 0 and seq.recent[i][1] > at:
            i -= 1
        pos, start, _ = seq.recent[i]
        dropped = seq.recent[i:]
        for _, _, lp in dropped:
            seq.logprob_sum -= lp
        seq.n_sampled -= len(dropped)
        assert seq.trace is not None
        seq.trace.thinking_tokens -= len(dropped) - 1  # all but the current token were counted
        if pos < seq.pos:
            self.L.llama_memory_seq_rm(self._mem, seq.seq_id, pos, -1)
        seq.pos = pos
        carry = seq.text[start:at]
        seq.text = seq.text[:at]
        return carry

    def _force(self, seq: _Seq, text: str, *, replace_current: bool, carry: str = "") -> None:
        """Append ``text`` to the sequence: its tokens are fed in the next steps (the sampled
        token not yet fed is replaced when ``replace_current``, else fed first)."""
        assert seq.trace is not None
        if self.has_control_text(text):  # the model's own text stays plain text; the delimiter is the control token
            seq.forced = deque((self.tokenize_text(carry) if carry else []) + self.tokenize_forced(text))
        else:  # one tokenization, so the carried text and the forced text merge as the model's would
            seq.forced = deque(self.tokenize_text(carry + text))
        seq.text += text
        seq.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        seq.segment = len(seq.text)
        seq.recent.clear()
        if seq.trace.phase != THINKING:
            seq.answer_start = len(seq.text)
        if replace_current:
            seq.token = seq.forced.popleft()
            seq.n_gen += 1
        if seq.n_gen >= seq.job.params.cap:
            self._finish(seq)

    def _finish(self, seq: _Seq, error: str | None = None) -> None:
        if seq.done:
            return
        seq.done = True
        job = seq.job
        text = seq.text + seq.decoder.decode(b"", final=True) if error is None else seq.text
        if error is None and job.params.stop:
            cut = _find_stop(text, job.params.stop, seq.answer_start, seq.answer_start)
            if cut >= 0:
                text = text[:cut]
        if self._mem is not None:
            self.L.llama_memory_seq_rm(self._mem, seq.seq_id, -1, -1)
        self._free_ids.append(seq.seq_id)
        self.stats["tokens_generated"] += seq.n_gen
        completion = Completion(
            text=text,
            prompt_tokens=len(job.prompt),
            completion_tokens=seq.n_gen,
            cost=0.0,
            latency=time.perf_counter() - job.submitted,
            logprob=(seq.logprob_sum / seq.n_sampled) if seq.n_sampled and error is None else None,
            error=error,
            details=seq.trace.details() if seq.trace is not None and error is None else {},
        )
        self._settle(job, seq.slot, completion)

    def _compact(self, live: list[_Seq]) -> None:
        """Move the sequences whose ids are >= the number of live sequences into the ids that
        finished sequences left free below it (copy of the sequence's KV buffer, then clear the
        old one), so the live ids are 0..n-1 and the step is one batch, not one per run of
        consecutive ids. New requests take the lowest free ids, so this is needed only when
        sequences end while nothing waits to replace them."""
        n = len(live)
        high = sorted((s for s in live if s.seq_id >= n), key=lambda s: s.seq_id)
        if not high:
            return
        used = {s.seq_id for s in live}
        holes = [i for i in range(n) if i not in used]
        L = self.L
        for seq, hole in zip(high, holes):
            L.llama_memory_seq_cp(self._mem, seq.seq_id, hole, -1, -1)
            L.llama_memory_seq_rm(self._mem, seq.seq_id, -1, -1)
            self._free_ids.remove(hole)
            self._free_ids.append(seq.seq_id)
            seq.seq_id = hole
            self.stats["moves"] += 1

    def _step(self) -> None:
        """One token for every live sequence, in one batch."""
        L = self.L
        for seq in self._live:
            if seq.job.future.cancelled():  # the caller gave up on this request: free its sequences
                self._finish(seq, error="cancelled")
        live = [s for s in self._live if not s.done]
        if not live:
            self._live = live
            return
        self._compact(live)
        live.sort(key=lambda s: s.seq_id)
        self._live = live
        batch = self._batch
        n = len(live)
        for i, seq in enumerate(live):
            batch.token[i] = seq.token
            batch.pos[i] = seq.pos
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = seq.seq_id
            batch.logits[i] = 1
        padded = self.pad_single_rows and n == 1
        if padded:  # the same token in the scratch sequence (id 1: live ids are 0..n-1), dropped after
            batch.token[1] = live[0].token
            batch.pos[1] = live[0].pos
            batch.n_seq_id[1] = 1
            batch.seq_id[1][0] = 1
            batch.logits[1] = 1
        batch.n_tokens = n + padded
        threads = self.threads.apply(L, self._ctx, n)
        started = time.perf_counter()
        rc = L.llama_decode(self._ctx, batch)
        seconds = time.perf_counter() - started
        self.threads.record(n, threads, seconds)
        self.stats["decode_seconds"] += seconds
        self.stats["decode_calls"] += 1
        if padded:
            L.llama_memory_seq_rm(self._mem, 1, -1, -1)
            self.stats["padded_steps"] += 1
        self.stats["threads"] = self.threads.current
        self.stats["max_parallel"] = max(self.stats["max_parallel"], n)
        self.stats["max_jobs_per_step"] = max(self.stats["max_jobs_per_step"], len({id(s.job) for s in live}))
        if rc != 0:
            message = f"llama_decode failed (code {rc}; {recent_log() or 'no details'})"
            for seq in live:
                self._finish(seq, error=message)
            self._live = []
            return
        rows = np.ctypeslib.as_array(L.llama_get_logits(self._ctx), shape=(n, self.n_vocab))
        for i, seq in enumerate(live):
            seq.pos += 1
            self._accept(seq, rows[i])
        self._live = [s for s in live if not s.done]


def _int_or_none(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


class _ThreadChoice:
    """How many threads llama.cpp decodes with: ``threads`` if given; else the number of cores,
    checked now and then against one thread, by timing decode steps of the same batch size.

    llama.cpp's threads meet at a spinning OpenMP barrier after every operation: on a dedicated
    machine all cores are fastest, but once another process wants a core, the spinning thread
    holds the core the other one waits for, and a step can take 10-100x longer (measured on 2
    cores: 2-40 tokens/s instead of 150-400; one thread kept ~150). The logits do not depend on the
    number of threads (checked bit for bit), so switching never changes what a seed draws. A
    probe is two steps with the other count; it wins if 15% faster, and a losing probe doubles
    the wait before the next one (4 s up to about a minute), which bounds what probing costs.
    """

    def __init__(self, threads: int | None) -> None:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        self.auto = threads is None and cores > 1
        self.best = int(threads or cores)
        self.current = self.best
        self.applied: int | None = None
        self.recent: deque[tuple[int, float]] = deque(maxlen=3)  # (batch size, seconds) at self.best
        self.probe: list[float] | None = None
        self.probe_with = 1
        self.wait = 4.0
        self.next_probe = time.monotonic() + 0.5
        self.stats: dict[str, Any] = {}

    def apply(self, L: Any, ctx: Any, n: int | None) -> int:
        """Set the threads for the next decode of ``n`` sequences (``None``: a prompt batch)."""
        want = self.best
        if self.auto and n is not None:
            if self.probe is None and time.monotonic() >= self.next_probe and len(self.recent) >= 2 and all(
                size == n for size, _ in self.recent
            ):
                self.probe = []
                self.probe_with = 1 if self.best != 1 else max(2, self.current_max())
            if self.probe is not None:
                want = self.probe_with
        if want != self.applied:
            L.llama_set_n_threads(ctx, want, want)
            self.applied = want
        self.current = want
        return want

    def current_max(self) -> int:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)

    def record(self, n: int, threads: int, seconds: float) -> None:
        if not self.auto:
            return
        if self.probe is None:
            if threads == self.best:
                if self.recent and self.recent[-1][0] != n:
                    self.recent.clear()
                self.recent.append((n, seconds))
            return
        if any(size != n for size, _ in self.recent):  # the batch changed under the probe: inconclusive
            self.probe = None
            self.recent.clear()
            self.next_probe = time.monotonic() + self.wait
            return
        self.probe.append(seconds)
        if len(self.probe) < 2:
            return
        probe = sum(self.probe) / len(self.probe)
        base = sum(t for _, t in self.recent) / len(self.recent)
        self.probe = None
        if probe < 0.85 * base:
            self.best = self.probe_with
            self.recent.clear()
            self.wait = 4.0
            self.stats["thread_switches"] = self.stats.get("thread_switches", 0) + 1
        else:
            self.wait = min(self.wait * 2, 64.0)
        self.next_probe = time.monotonic() + self.wait


def _find_stop(text: str, stops: tuple[str, ...], before: int, start: int = 0) -> int:
    """Where the earliest stop string starts in ``text``, looking only where one could have
    been completed by what came after ``before``, and not before ``start``; -1 if none."""
    best = -1
    for stop in stops:
        i = text.find(stop, max(start, before - len(stop) + 1))
        if i >= 0 and (best < 0 or i < best):
            best = i
    return best

