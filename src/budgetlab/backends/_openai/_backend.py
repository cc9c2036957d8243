"""The backend of any OpenAI-compatible server: OpenAI itself, vLLM, llama.cpp, Ollama, ..."""

from __future__ import annotations

import asyncio
import ipaddress
import math
import os
import re
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from budgetlab.backends._base import DrawRequest
from budgetlab.backends._openai._forced import draw_forced, forced_bound, prompt_with_suffix
from budgetlab.backends._openai._transport import Transport
from budgetlab.backends._openai._wire import (
    Answer,
    ConfigSpec,
    RequestFailed,
    apportion,
    error_code,
    error_text,
    estimated,
    one_line,
    parse_answer,
)
from budgetlab.backends._prices import PRICES_ENV, price_table
from budgetlab.core import Completion, Problem, Sample, SamplingConfig, Spend
from budgetlab.errors import BudgetlabError, InputError, UnpricedModelWarning, pip_dependency_error

__all__ = ["OpenAIBackend"]

DEFAULT_BASE_URL = "https://api.openai.com/v1"
# A refusal of a prompt too long for the model: OpenAI and vLLM ("maximum context length",
# context_length_exceeded), llama.cpp ("exceeds the available context size").
_CONTEXT = re.compile(r"context[ _](length|size|window)")


def _option(name: str, value: Any, *, integer: bool = False, minimum: float = 0.0, strict: bool = True) -> Any:
    kinds = (int,) if integer else (int, float)
    ok = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    if not ok:
        what = "a whole number" if integer else "a number"
        bound = f"{'above' if strict else 'at least'} {minimum:g}"
        raise InputError(f"openai backend option {name}={value!r} must be {what} {bound}; e.g. --backend-arg {name}=...")
    return value


def _is_local(host: str | None) -> bool:
    if not host:
        return False
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host == "localhost" or host.endswith((".local", ".localhost"))
    return ip.is_loopback or ip.is_private


class OpenAIBackend:
    """Draws samples from an OpenAI-compatible HTTP API (``/chat/completions`` or ``/completions``).

    ``target`` is the API base URL (``http://127.0.0.1:8000/v1``); without one, ``$OPENAI_BASE_URL``,
    else ``https://api.openai.com/v1``. The API key is ``api_key``, else ``$OPENAI_API_KEY`` (or the
    variable named by ``api_key_env``); a local server needs none. Backend options are recorded
    with the run (in the store), all but the key (``api_key`` and credential headers are never
    stored): a run resumed in a new shell takes the key from the environment, or from the option
    given again.

    Configuration parameters: ``endpoint`` (``chat``, the default, or ``completions``), sampling
    parameters sent as they are (``temperature``, ``top_p``, ``max_tokens`` (default 512, always
    sent: it bounds the spend), ``stop``, ...), ``logprobs=true`` (the mean token log-probability
    of each sample), ``seed=false`` (send no seed), ``system``, ``price_in``/``price_out``
    (dollars per million tokens), ``prompt_overhead``, ``extra_body``, and ``budget_forcing``
    with ``endpoint=completions``: each phase of a sample is a request that continues its text
    (:mod:`budgetlab.backends._openai._forced`).

    Requests:

    * the samples of a request go as one request with ``n = len(samples)`` and the first sample's
      seed (the server draws the ``n`` choices from it); a server that ignores ``n`` (answers
      fewer choices) or rejects it (400/422 before ``n`` ever worked) is remembered per model and
      endpoint, and the rest of the samples are drawn one request each, each with its own seed.
      A sample's seed is sent modulo 2**31;
    * at most ``concurrency`` requests are in flight; each has ``timeout`` seconds; 408, 409, 425,
      429, 5xx, timeouts and dropped connections are retried up to ``max_attempts`` attempts in
      all, after exponential backoff with jitter (``backoff`` doubling up to ``max_backoff``
      seconds) or the server's ``Retry-After`` / ``retry-after-ms`` (a wait beyond
      ``max_retry_wait`` gives up at once).

    Spend: a sample's tokens come from the answer's ``usage``. With ``n`` choices in one answer,
    the prompt tokens (counted once by the server) are split evenly between the choices, the
    first ones taking the remainder, and the completion tokens in proportion to each choice's
    token count (from its log-probs) or else its length; both add up exactly to the reported
    usage. Without a usage the tokenizer-free bounds below are counted instead. Dollars are the
    tokens at the model's price (:mod:`budgetlab.backends._prices`; $0 when it has none).

    :meth:`estimate` is an upper bound: the prompt's UTF-8 bytes (every token of a byte-level or
    byte-fallback tokenizer is at least one byte) plus the chat template's allowance (8 tokens per
    message and 64 per prompt; ``prompt_overhead`` replaces the 64), or the prompt tokens the
    server already reported for that problem, plus ``max_tokens``. With ``bill_timeouts`` (below) it
    is that times ``max_attempts``, since every attempt may then be billed: the run reserves that
    much per sample while it is in flight (lower ``max_attempts`` to reserve less).

    Timeouts: a hosted API runs a request to the end (and bills it) when its client stops waiting.
    With ``bill_timeouts`` (the default for a server that is not on this machine or a private
    network), each attempt that timed out after the whole request was sent counts as billed at
    the bound above (the prompt's, shared by the samples of a request of ``n``, and ``max_tokens``
    each, at the model's price), whether the request then failed or a retry was answered: its
    samples carry it in their tokens and cost, and say so in their details (``billed_estimate``:
    the timed-out attempts, and the tokens and dollars counted for them). So a budget holds, and
    the spend shown is what the provider may have billed. A sample that failed with only such an
    estimate is drawn again by a later run, as a failure that cost nothing is (the estimate stays
    in the run's spend). A connect timeout, where nothing reached the server, counts nothing. vLLM and llama.cpp's server
    stop generating when the client goes away: ``bill_timeouts=false``, the default for a local
    server, counts timed-out attempts as free.

    Failures: a request that fails after its retries (timeout, 429, 5xx, a 4xx such as a too
    long prompt, an answer that is not JSON, truncated, or lacks its fields) fails its samples
    with a one-line error and the run goes on. Errors that make every further request futile
    raise :class:`~budgetlab.errors.BudgetlabError` and stop the run: a refused API key (401/403),
    an unknown model or URL (404), a server that cannot be reached after the retries. Completions
    a request already received are returned first (the error is raised by the next request).

    :meth:`check` asks ``GET /models`` once: it fails on an unreachable server or a refused key,
    and on a model the server does not list (``check_models=False`` skips the model test, for
    servers that accept names they do not list); a server without the listing is not checked.
    """

    name = "openai"

    def __init__(
        self,
        target: str | None = None,
        *,
        api_key: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        concurrency: int = 16,
        timeout: float = 120.0,
        connect_timeout: float = 10.0,
        max_attempts: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_wait: float = 120.0,
        use_n: bool = True,
        check_models: bool = True,
        prices: str | None = None,
        headers: Mapping[str, str] | None = None,
        bill_timeouts: bool | None = None,
    ) -> None:
        try:
            import httpx  # noqa: F401
        except ImportError:
            raise pip_dependency_error("the openai backend", "httpx", "openai") from None
        base = (target or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL).strip().rstrip("/")
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(
                f"openai backend target {base!r} is not an http(s) URL; write the API base URL, "
                "e.g. --backend openai:http://127.0.0.1:8000/v1"
            )
        self.base_url = base
        self.concurrency = _option("concurrency", concurrency, integer=True, minimum=1, strict=False)
        self.timeout = float(_option("timeout", timeout))
        self.max_attempts = _option("max_attempts", max_attempts, integer=True, minimum=1, strict=False)
        for label, value in (("backoff", backoff), ("max_backoff", max_backoff), ("max_retry_wait", max_retry_wait)):
            _option(label, value, strict=False)
        self.use_n = bool(use_n)
        if bill_timeouts is not None and not isinstance(bill_timeouts, bool):
            raise InputError(
                f"openai backend option bill_timeouts={bill_timeouts!r} must be true or false; "
                "e.g. --backend-arg bill_timeouts=false"
            )
        # A hosted API runs a request to the end whoever waits for it; a local server stops.
        self.bill_timeouts = not _is_local(parts.hostname) if bill_timeouts is None else bill_timeouts
        self.check_models = bool(check_models)
        self.api_key_env = api_key_env
        key = api_key if api_key is not None else os.environ.get(api_key_env)
        self._has_key = bool(key)
        sent: dict[str, str] = {"Authorization": f"Bearer {key}"} if key else {}
        sent.update({str(k): str(v) for k, v in (headers or {}).items()})
        self._headers = sent
        self._backoff = float(backoff)
        self._connect_timeout = float(_option("connect_timeout", connect_timeout))
        self._prices = price_table(prices)
        self._transport = Transport(
            base, sent, timeout=self.timeout, connect_timeout=self._connect_timeout,
            concurrency=self.concurrency, max_attempts=self.max_attempts, backoff=float(backoff),
            max_backoff=float(max_backoff), max_retry_wait=float(max_retry_wait),
        )  # fmt: skip
        self._specs: dict[str, ConfigSpec] = {}
        self._n_ok: dict[tuple[str, str], bool] = {}  # (model, endpoint) -> does the server honour n?
        self._prompt_tokens: dict[tuple[str, str], int] = {}  # (config id, problem id) -> reported
        # config id -> the most tokens a reply billed beyond the bounds: prompt tokens beyond the
        # prompt's bound (a system prompt the server adds), completion tokens per sample beyond
        # max_tokens (reasoning some APIs bill on top). Later estimates add them, so that a
        # server's surprise can take a run past its budget once at most, not on every request.
        self._prompt_excess: dict[str, int] = {}
        self._completion_excess: dict[str, int] = {}
        self._fatal: BudgetlabError | None = None

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.base_url!r})"

    # ---- configurations ------------------------------------------------------------------------
    def _spec(self, config: SamplingConfig) -> ConfigSpec:
        spec = self._specs.get(config.id)
        if spec is None:
            spec = self._specs[config.id] = ConfigSpec.build(config, self._prices)
        return spec

    def _key_fix(self) -> str:
        if self._has_key:
            return f"set ${self.api_key_env} (or the backend option api_key) to a valid key"
        return f"this server needs an API key: set ${self.api_key_env}"

    def check(self, problems: Sequence[Problem], configs: Sequence[SamplingConfig]) -> None:
        specs = [self._spec(c) for c in configs]
        for problem in problems:
            for spec in specs:
                spec.prompt(problem)
        listed = self._list_models()
        if self.check_models and listed is not None:
            # Ollama lists its models with their tag ("llama3.2:latest") and serves the bare name too.
            served = set(listed) | {name[: -len(":latest")] for name in listed if name.endswith(":latest")}
            missing = [c.model for c in configs if c.model not in served]
            if missing:
                shown = ", ".join(listed[:8]) + (f" and {len(listed) - 8} more" if len(listed) > 8 else "")
                raise InputError(
                    f"model {missing[0]!r} is not among the models {self.base_url} serves ({shown}); use one of "
                    "those names, or --backend-arg check_models=false if the server accepts names it does not list"
                )
        if not _is_local(urlsplit(self.base_url).hostname):
            for spec in specs:
                if spec.price is None:
                    warnings.warn(
                        f"no price is known for model {spec.config.model!r}: its samples count as $0, so a dollar "
                        f"budget does not limit them; give price_in/price_out or a price file (${PRICES_ENV})",
                        UnpricedModelWarning,
                        stacklevel=2,
                    )

    def _list_models(self) -> list[str] | None:
        """The model ids of ``GET /models``, or ``None`` when the server does not list them."""
        import httpx

        url = self.base_url + "/models"
        timeout = httpx.Timeout(min(self.timeout, 30.0), connect=min(self.timeout, self._connect_timeout))
        attempts = min(self.max_attempts, 3)
        last: Exception | None = None
        with httpx.Client(headers=self._headers, timeout=timeout) as client:
            for attempt in range(attempts):
                try:
                    response = client.get(url)
                    break
                except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                    last = exc
                    if attempt + 1 < attempts:
                        time.sleep(self._transport.delay(attempt + 1, None))
                except httpx.HTTPError:
                    return None  # slow or odd: the draws will tell
            else:
                raise BudgetlabError(
                    f"cannot reach the server at {self.base_url} ({type(last).__name__}: {one_line(last)}) after "
                    f"{attempts} attempts; start the server or fix the URL in --backend openai:URL "
                    "(e.g. openai:http://127.0.0.1:8000/v1)"
                )
        if response.status_code == 401:
            raise BudgetlabError(f"{self.base_url} refused the API key (401: {error_text(response.content)}); {self._key_fix()}")
        if response.status_code != 200:
            return None
        try:
            data = response.json()
        except ValueError:
            if "html" in response.headers.get("content-type", ""):
                raise InputError(
                    f"{url} answered with an HTML page, not JSON: {self.base_url} does not look like an "
                    "OpenAI-compatible API base URL (it usually ends in /v1)"
                ) from None
            return None
        models = data.get("data") if isinstance(data, Mapping) else None
        if not isinstance(models, list):
            return None
        ids = [m["id"] for m in models if isinstance(m, Mapping) and isinstance(m.get("id"), str)]
        return ids or None

    # ---- spend ---------------------------------------------------------------------------------
    def _prompt_bound(self, spec: ConfigSpec, request: DrawRequest, prompt: list[dict[str, str]] | str) -> int:
        known = self._prompt_tokens.get((request.config.id, request.problem.id))
        return known if known is not None else spec.prompt_bound(prompt) + self._prompt_excess.get(request.config.id, 0)

    def _completion_bound(self, spec: ConfigSpec) -> int:
        return spec.max_tokens + self._completion_excess.get(spec.config.id, 0)

    def estimate(self, request: DrawRequest) -> list[Spend]:
        spec = self._spec(request.config)
        if spec.forcing is not None:
            prompt_tokens, completion_tokens = forced_bound(spec, self._forced_prompt(spec, request))
        else:
            prompt_tokens = self._prompt_bound(spec, request, spec.prompt(request.problem))
            completion_tokens = self._completion_bound(spec)
        # Each attempt may be billed when timed-out ones are: reserve them all.
        attempts = self.max_attempts if self.bill_timeouts else 1
        prompt_tokens, completion_tokens = attempts * prompt_tokens, attempts * completion_tokens
        spend = Spend(
            samples=1,
            tokens=prompt_tokens + completion_tokens,
            dollars=spec.cost(prompt_tokens, completion_tokens),
        )
        return [spend] * len(request.samples)

    def _timed_out(self, spec: ConfigSpec, request: DrawRequest, prompt: Any, completions: list[Completion],
                   attempts: int) -> list[Completion]:  # fmt: skip
        """``completions`` (the samples of one request) charged for ``attempts`` of it that timed
        out after it was sent, at its upper bound: the prompt's bound shared between them, and
        ``max_tokens`` each."""
        if not attempts or not self.bill_timeouts:
            return completions
        prompt_parts = apportion(attempts * self._prompt_bound(spec, request, prompt), [1.0] * len(completions))
        return [
            estimated(spec, c, attempts, p, attempts * self._completion_bound(spec))
            for c, p in zip(completions, prompt_parts)
        ]

    def _forced_prompt(self, spec: ConfigSpec, request: DrawRequest) -> str:
        prompt = spec.prompt(request.problem)
        assert isinstance(prompt, str)  # forcing needs the completions endpoint (checked with the spec)
        return prompt_with_suffix(spec, prompt)

    # ---- drawing -------------------------------------------------------------------------------
    async def _exchange(self, spec: ConfigSpec, prompt: Any, n: int, seed: int, body: dict[str, Any] | None = None
                        ) -> tuple[Answer, float, int]:  # fmt: skip
        """The answer, its latency and the attempts before it that timed out after being sent."""
        reply = await self._transport.post(spec.path, body if body is not None else spec.request_body(prompt, n, seed))
        url = self.base_url + spec.path
        if 200 <= reply.status < 300:
            try:
                answer = parse_answer(reply.content, reply.content_type, spec.endpoint, self.base_url)
            except RequestFailed as exc:
                exc.latency, exc.timed_out = reply.latency, reply.timed_out
                raise
            return answer, reply.latency, reply.timed_out
        message, code = error_text(reply.content), error_code(reply.content)
        model = spec.config.model
        if reply.status == 401:
            raise BudgetlabError(f"{self.base_url} refused the API key (401: {message}); {self._key_fix()}")
        if reply.status == 402:
            # Payment required (DeepSeek's "Insufficient Balance"): like OpenAI's 429
            # insufficient_quota, every further request would be refused the same way.
            raise BudgetlabError(
                f"{self.base_url} says the account has no balance left (402: {message}); add credit or raise the "
                "spending limit in the provider's billing settings, then run the same command again"
            )
        if reply.status == 403:
            raise BudgetlabError(
                f"{self.base_url} refuses model {model!r} to this API key (403: {message}); use a key with access to it"
            )
        if "model_not_found" in code or (reply.status == 404 and ("model" in code or "model" in message.lower())):
            raise BudgetlabError(
                f"model {model!r} is not served by {self.base_url} ({reply.status}: {message}); use a model the "
                f"server lists at {self.base_url}/models"
            )
        if reply.status in (404, 405):
            other = "chat" if spec.endpoint == "completions" else "completions"
            raise BudgetlabError(
                f"{url} does not exist ({reply.status}: {message}); give the server's OpenAI base URL, usually "
                f"ending in /v1 (e.g. openai:http://127.0.0.1:8000/v1), or try endpoint={other}"
            )
        if reply.status in (400, 413, 422) and _CONTEXT.search(f"{code} {message.lower()}"):
            # Sent again it fails again: say what to change.
            raise RequestFailed(
                f"{url} rejected the request: the prompt and max_tokens={spec.max_tokens} do not fit the model's context "
                f"({reply.status}: {message}); lower max_tokens or shorten the prompt",
                status=reply.status, latency=reply.latency, timed_out=reply.timed_out,
            )  # fmt: skip
        raise RequestFailed(f"{url} rejected the request ({reply.status}: {message})", status=reply.status,
                            latency=reply.latency, timed_out=reply.timed_out)  # fmt: skip

    def _completions(
        self, spec: ConfigSpec, request: DrawRequest, prompt: Any, answer: Answer, latency: float, count: int
    ) -> list[Completion]:
        choices = answer.choices[:count]
        if answer.prompt_tokens is not None and answer.completion_tokens is not None:
            key = (request.config.id, request.problem.id)
            if answer.prompt_tokens > 0:
                # A prompt has at least one token: a reported 0 (Ollama, when its prompt cache
                # answered) says nothing about what a request of it may bill later, and taking
                # it as the bound would reserve max_tokens alone for the next samples.
                self._prompt_tokens[key] = max(self._prompt_tokens.get(key, 0), answer.prompt_tokens)
            prompt_parts = apportion(answer.prompt_tokens, [1.0] * len(choices))
            if all(c.tokens is not None for c in choices):
                weights = [float(c.tokens or 0) for c in choices]
            else:
                weights = [len(c.text or "") + 1.0 for c in choices]
            completion_parts = apportion(answer.completion_tokens, weights)
            if spec.forcing is None:
                self._learn_excess(request.config.id, answer.prompt_tokens - spec.prompt_bound(prompt),
                                   max(completion_parts, default=0) - spec.max_tokens)
        else:  # no usage: count the bounds
            prompt_parts = apportion(self._prompt_bound(spec, request, prompt), [1.0] * len(choices))
            completion_parts = [
                min(spec.max_tokens, c.tokens if c.tokens is not None else len((c.text or "").encode("utf-8")))
                for c in choices
            ]
        return [
            Completion(
                text=c.text,
                prompt_tokens=p,
                completion_tokens=t,
                cost=spec.cost(p, t),
                latency=latency,
                logprob=c.logprob,
                error=c.error,
                # "length": cut by max_tokens, worth knowing before reading its accuracy
                details={"finish_reason": c.finish_reason} if c.finish_reason else {},
            )
            for c, p, t in zip(choices, prompt_parts, completion_parts)
        ]

    def _learn_excess(self, config_id: str, prompt_over: int, completion_over: int) -> None:
        if prompt_over > self._prompt_excess.get(config_id, 0):
            self._prompt_excess[config_id] = prompt_over
        if completion_over > self._completion_excess.get(config_id, 0):
            self._completion_excess[config_id] = completion_over

    def _failed(self, spec: ConfigSpec, request: DrawRequest, prompt: Any, exc: RequestFailed, count: int
                ) -> list[Completion]:  # fmt: skip
        prompt_parts = apportion(exc.prompt_tokens, [1.0] * count)
        completion_parts = apportion(exc.completion_tokens, [1.0] * count)
        failed = [
            Completion(prompt_tokens=p, completion_tokens=t, cost=spec.cost(p, t), latency=exc.latency, error=exc.message)
            for p, t in zip(prompt_parts, completion_parts)
        ]
        return self._timed_out(spec, request, prompt, failed, exc.timed_out)

    async def _single(
        self, spec: ConfigSpec, request: DrawRequest, prompt: Any, sample: Sample, refused: list[Sample] | None = None
    ) -> Completion:
        """One sample's own request; ``refused`` collects the samples whose request got a 400/422."""
        try:
            answer, latency, timed_out = await self._exchange(spec, prompt, 1, sample.seed)
        except RequestFailed as exc:
            if refused is not None and exc.status in (400, 422):
                refused.append(sample)
            return self._failed(spec, request, prompt, exc, 1)[0]
        drawn = self._completions(spec, request, prompt, answer, latency, 1)
        return self._timed_out(spec, request, prompt, drawn, timed_out)[0]

    async def _forced_single(self, spec: ConfigSpec, request: DrawRequest, prompt: Any, sample: Sample) -> Completion:
        return await draw_forced(spec, lambda body: self._exchange(spec, prompt, 1, sample.seed, body), prompt, sample.seed,
                                 bill_timeouts=self.bill_timeouts)  # fmt: skip

    async def draw(self, request: DrawRequest) -> list[Completion]:
        if self._fatal is not None:
            raise self._fatal
        spec = self._spec(request.config)
        prompt = spec.prompt(request.problem)
        samples = request.samples
        out: list[Completion | None] = [None] * len(samples)
        key = (request.config.model, spec.endpoint)
        probing = False  # did this request's n > 1 get a 400/422 that may be about n, or not?
        refused: list[Sample] = []
        n_timed_out = 0  # attempts of the request of n that timed out after it was sent
        if spec.forcing is not None:  # each sample continues its own text: one request chain each
            prompt = self._forced_prompt(spec, request)
        elif len(samples) > 1 and self.use_n and self._n_ok.get(key, True):
            try:
                answer, latency, n_timed_out = await self._exchange(spec, prompt, len(samples), samples[0].seed)
            except RequestFailed as exc:
                if exc.status in (400, 422) and self._n_ok.get(key) is not True:
                    # Perhaps n > 1 is what it rejects: draw one by one. Also when another
                    # request, in flight at the same time, has just learnt so: this one was sent
                    # with n before it knew, and failing its samples would waste them.
                    self._n_ok[key] = False
                    probing = True
                    n_timed_out = exc.timed_out
                else:
                    return self._failed(spec, request, prompt, exc, len(samples))
            else:
                got = self._completions(spec, request, prompt, answer, latency, len(samples))
                self._n_ok[key] = len(got) >= len(samples)
                out[: len(got)] = got
        rest = [i for i, c in enumerate(out) if c is None]
        if rest:
            if spec.forcing is None:
                draws = [self._single(spec, request, prompt, samples[i], refused) for i in rest]
            else:
                draws = [self._forced_single(spec, request, prompt, samples[i]) for i in rest]
            results = await asyncio.gather(*draws, return_exceptions=True)
            if probing and len(refused) == len(rest) and self._n_ok.get(key) is False:
                # One by one they were refused too: the 400 was about this prompt (too long, a bad
                # parameter), not n. Forget it, or every later problem would bill its prompt k times.
                del self._n_ok[key]
            fatal: BudgetlabError | None = None
            for i, result in zip(rest, results):
                if isinstance(result, BudgetlabError):
                    fatal = fatal or result
                elif isinstance(result, BaseException):
                    if not isinstance(result, Exception):
                        raise result
                    out[i] = Completion(error=f"{type(result).__name__}: {one_line(result)}")
                else:
                    out[i] = result
            if fatal is not None:
                if all(c is None for c in out):
                    raise fatal
                # Keep what was already received (and paid for); the next request raises.
                self._fatal = fatal
                out = [c if c is not None else Completion(error=str(fatal)) for c in out]
        drawn = [c for c in out if c is not None]
        return self._timed_out(spec, request, prompt, drawn, n_timed_out)

    async def aclose(self) -> None:
        await self._transport.aclose()

