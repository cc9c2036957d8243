"""What goes over the wire: request bodies from a configuration, and completions from an answer.

Everything here is pure (no I/O), so it is tested without a server.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from budgetlab.backends._forcing import FORCING_PARAM, BudgetForcing, forcing_of
from budgetlab.backends._prices import Price, lookup_price
from budgetlab.backends._prompt import render_messages, render_text
from budgetlab.core import BILLED_ESTIMATE, Completion, Problem, SamplingConfig
from budgetlab.errors import InputError

__all__ = [
    "Answer",
    "Choice",
    "ConfigSpec",
    "DEFAULT_MAX_TOKENS",
    "RequestFailed",
    "apportion",
    "error_code",
    "error_text",
    "estimated",
    "one_line",
    "parse_answer",
]

DEFAULT_MAX_TOKENS = 512
# Seeds are sent modulo 2**31: every server takes a non-negative 32-bit signed integer.
SEED_MODULUS = 2**31
# Tokens a chat template may add around the messages (role markers, a default system prompt):
# per message, and once per prompt. Overridable per configuration with ``prompt_overhead``.
CHAT_PER_MESSAGE = 8
CHAT_OVERHEAD = 64
TEXT_OVERHEAD = 8  # BOS and the like

_NUMBER = (int, float)

# Sampling parameters sent to the server as they are, with the type each must have.
SENT_PARAMS: dict[str, tuple[tuple[type, ...], str]] = {
    "temperature": (_NUMBER, "a number"),
    "top_p": (_NUMBER, "a number"),
    "max_tokens": ((int,), "a whole number"),
    "max_completion_tokens": ((int,), "a whole number"),
    "stop": ((str, list, tuple), "a string or a list of strings"),
    "presence_penalty": (_NUMBER, "a number"),
    "frequency_penalty": (_NUMBER, "a number"),
    "top_k": ((int,), "a whole number"),
    "min_p": (_NUMBER, "a number"),
    "repetition_penalty": (_NUMBER, "a number"),
    "repeat_penalty": (_NUMBER, "a number"),
    "logit_bias": ((Mapping,), "a mapping of token ids to biases"),
    "top_logprobs": ((int,), "a whole number"),
    "reasoning_effort": ((str,), "a string"),
    "response_format": ((Mapping,), "a mapping"),
    "user": ((str,), "a string"),
}
# Parameters budgetlab reads itself.
LOCAL_PARAMS = {
    "endpoint": "chat (default) or completions",
    "system": "a system message for the chat endpoint",
    "logprobs": "true to record the mean token log-probability",
    "seed": "false to send no seed (by default each sample's own seed is sent)",
    "price_in": "dollars per million prompt tokens",
    "price_out": "dollars per million completion tokens",
    "prompt_overhead": "tokens the chat template adds (for the spend bound)",
    "extra_body": "a mapping of further fields sent as they are",
    FORCING_PARAM: "budget forcing of a model that thinks between delimiters (completions endpoint; see budgetlab.backends._forcing)",
}


def one_line(text: Any, limit: int = 300) -> str:
    """``text`` on one line, at most ``limit`` characters."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class RequestFailed(Exception):
    """A request that failed for its own samples only (the run goes on). Tokens are those the
    server reported as used (billed) by the failed request, if any; ``timed_out`` counts its
    attempts that timed out after the request was sent (the server may have billed them)."""

    def __init__(self, message: str, *, status: int | None = None, prompt_tokens: int = 0,
                 completion_tokens: int = 0, latency: float = 0.0, timed_out: int = 0) -> None:  # fmt: skip
        super().__init__(message)
        self.message = message
        self.status = status
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self.latency = latency
        self.timed_out = timed_out


def apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split the integer ``total`` in proportion to ``weights`` (largest remainders, ties to the
    first), so the parts add up to ``total`` exactly."""
    n = len(weights)
    if n == 0:
        return []
    mass = sum(weights)
    if mass <= 0:
        weights, mass = [1.0] * n, float(n)
    exact = [total * w / mass for w in weights]
    parts = [math.floor(x) for x in exact]
    left = total - sum(parts)
    order = sorted(range(n), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:left]:
        parts[i] += 1
    return parts


def _bad(config: SamplingConfig, key: str, value: Any, fix: str) -> InputError:
    return InputError(f"configuration {config.name!r}: parameter {key}={value!r} {fix}")


@dataclass
class ConfigSpec:
    """A configuration checked and turned into what every request of it sends."""

    config: SamplingConfig
    endpoint: str  # "chat" or "completions"
    body: dict[str, Any]  # fields sent with every request (model and sampling parameters)
    max_tokens: int  # the completion-token bound of a sample
    logprobs: bool
    send_seed: bool
    price: Price | None
    overhead: int | None  # prompt_overhead, or None for the default
    extra: dict[str, Any] = field(default_factory=dict)
    forcing: BudgetForcing | None = None

    @property
    def path(self) -> str:
        return "/chat/completions" if self.endpoint == "chat" else "/completions"

    @classmethod
    def build(cls, config: SamplingConfig, prices: Mapping[str, Price]) -> ConfigSpec:
        params = dict(config.params)
        unknown = [k for k in params if k not in SENT_PARAMS and k not in LOCAL_PARAMS]
        if unknown:
            raise InputError(
                f"configuration {config.name!r}: unknown parameter {unknown[0]!r} for the openai backend; "
                f"use {', '.join(SENT_PARAMS)} (sent to the server), {', '.join(LOCAL_PARAMS)}, "
                "or put other server fields in extra_body"
            )
        endpoint = params.pop("endpoint", "chat")
        if endpoint not in ("chat", "completions"):
            raise _bad(config, "endpoint", endpoint, "is not chat or completions; write endpoint=chat or endpoint=completions")
        body: dict[str, Any] = {"model": config.model}
        for key, (kinds, what) in SENT_PARAMS.items():
            if key not in params or params[key] is None:
                continue
            value = params[key]
            if not isinstance(value, kinds) or isinstance(value, bool):
                raise _bad(config, key, value, f"must be {what}")
            if key == "stop":
                value = [value] if isinstance(value, str) else list(value)
                if not all(isinstance(s, str) for s in value):
                    raise _bad(config, key, params[key], "must be a string or a list of strings")
            if key in ("max_tokens", "max_completion_tokens") and value < 1:
                raise _bad(config, key, value, "must be at least 1")
            body[key] = dict(value) if isinstance(value, Mapping) else value
        if "max_completion_tokens" in body:
            max_tokens = body["max_completion_tokens"]
            body.pop("max_tokens", None)
        else:
            max_tokens = body.setdefault("max_tokens", DEFAULT_MAX_TOKENS)
        logprobs = params.get("logprobs") or False
        if not isinstance(logprobs, (bool, int)):
            raise _bad(config, "logprobs", logprobs, "must be true or false")
        if logprobs:
            if endpoint == "chat":
                body["logprobs"] = True
                body.setdefault("top_logprobs", 1)  # llama-cpp-python sends logprobs only with top_logprobs
            else:
                body["logprobs"] = 1 if isinstance(logprobs, bool) else int(logprobs)
                body.pop("top_logprobs", None)
        seed = params.get("seed", True)
        if seed not in (True, False, None):
            raise _bad(
                config, "seed", seed,
                "cannot be fixed: each sample gets its own seed derived from the run seed (--seed); "
                "give seed=false to send none",
            )  # fmt: skip
        extra = params.get("extra_body") or {}
        if not isinstance(extra, Mapping):
            raise _bad(config, "extra_body", extra, "must be a mapping of fields to send")
        price = lookup_price(config.model, prices)
        given = {k: params.get(k) for k in ("price_in", "price_out") if params.get(k) is not None}
        for key, value in given.items():
            if not isinstance(value, _NUMBER) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise _bad(config, key, value, "must be a non-negative number of dollars per million tokens")
        if given:
            if len(given) == 1 and price is None:
                missing = ({"price_in", "price_out"} - set(given)).pop()
                raise InputError(
                    f"configuration {config.name!r} gives {next(iter(given))} but not {missing}, and model "
                    f"{config.model!r} has no known price; give both (dollars per million tokens)"
                )
            base = price or Price(0.0, 0.0)
            price = Price(float(given.get("price_in", base.input)), float(given.get("price_out", base.output)))
        overhead = params.get("prompt_overhead")
        if overhead is not None and (not isinstance(overhead, int) or isinstance(overhead, bool) or overhead < 0):
            raise _bad(config, "prompt_overhead", overhead, "must be a non-negative number of tokens")
        forcing = forcing_of(config)
        if forcing is not None and endpoint != "completions":
            raise InputError(
                f"configuration {config.name!r}: {FORCING_PARAM} continues the model's text, which only the completions "
                "endpoint can do; add endpoint=completions (and a prompt, not chat messages)"
            )
        return cls(config, endpoint, body, int(max_tokens), bool(logprobs), seed is True, price, overhead, dict(extra), forcing)

    # ---- requests ---------------------------------------------------------------------------
    def prompt(self, problem: Problem) -> list[dict[str, str]] | str:
        if self.endpoint == "chat":
            return render_messages(problem, self.config)
        return render_text(problem, self.config)

    def request_body(
        self, prompt: list[dict[str, str]] | str, n: int, seed: int | None, *, max_tokens: int | None = None,
        stop: Sequence[str] | None | bool = True,
    ) -> dict[str, Any]:
        """The body of one request; ``max_tokens`` and ``stop`` (``None``: none; ``True``: the
        configuration's) replace the configuration's for one step of budget forcing."""
        body = dict(self.body)
        body["messages" if self.endpoint == "chat" else "prompt"] = prompt
        if n > 1:
            body["n"] = n
        if self.send_seed and seed is not None:
            body["seed"] = seed % SEED_MODULUS
        if max_tokens is not None:
            body["max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"] = max_tokens
        if stop is not True:
            body.pop("stop", None)
            if stop:
                body["stop"] = list(stop)
        body.update(self.extra)
        return body

    @property
    def stop(self) -> tuple[str, ...] | None:
        return tuple(self.body["stop"]) if self.body.get("stop") else None

    def prompt_bound(self, prompt: list[dict[str, str]] | str) -> int:
        """A tokenizer-free upper bound on the prompt's tokens: its UTF-8 bytes (a token of a
        byte-level BPE or byte-fallback tokenizer covers at least one byte) plus what a chat
        template may add. Characters / 2 is not a bound: tokenizers that split every digit
        (SmolLM2, Llama 2) give more than one token per two characters on arithmetic."""
        if isinstance(prompt, str):
            return len(prompt.encode("utf-8")) + (TEXT_OVERHEAD if self.overhead is None else self.overhead)
        size = sum(len(str(m.get("content", "")).encode("utf-8")) + CHAT_PER_MESSAGE for m in prompt)
        return size + (CHAT_OVERHEAD if self.overhead is None else self.overhead)

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return self.price.cost(prompt_tokens, completion_tokens) if self.price is not None else 0.0


def estimated(spec: ConfigSpec, completion: Completion, attempts: int, prompt_tokens: int,
              completion_tokens: int) -> Completion:  # fmt: skip
    """``completion`` plus the tokens counted for ``attempts`` that timed out after being sent,
    at the model's price, recorded in its details as an estimate."""
    cost = spec.cost(prompt_tokens, completion_tokens)
    before = completion.details.get(BILLED_ESTIMATE) or {}
    counted = {
        "timed_out_attempts": before.get("timed_out_attempts", 0) + attempts,
        "prompt_tokens": before.get("prompt_tokens", 0) + prompt_tokens,
        "completion_tokens": before.get("completion_tokens", 0) + completion_tokens,
        "cost": before.get("cost", 0.0) + cost,
    }
    error = completion.error
    if error is not None and not before:
        error += " (the server may have billed the timed-out attempts: counted at their upper bound)"
    return dataclasses.replace(
        completion,
        prompt_tokens=completion.prompt_tokens + prompt_tokens,
        completion_tokens=completion.completion_tokens + completion_tokens,
        cost=completion.cost + cost,
        error=error,
        details={**completion.details, BILLED_ESTIMATE: counted},
    )


# ---- answers ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Choice:
    text: str | None
    logprob: float | None
    tokens: int | None  # the choice's own token count, when the server says (logprobs)
    error: str | None
    finish_reason: str | None = None


@dataclass(frozen=True)
class Answer:
    choices: list[Choice]
    prompt_tokens: int | None  # None: the answer has no usable usage
    completion_tokens: int | None


def _error_message(data: Any) -> str | None:
    if not isinstance(data, Mapping):
        return None
    err = data.get("error")
    if isinstance(err, Mapping):
        msg = err.get("message") or err.get("code") or err.get("type")
        return one_line(msg) if msg else one_line(json.dumps(err))
    if isinstance(err, str):
        return one_line(err)
    for key in ("detail", "message"):
        if isinstance(data.get(key), (str, list)):
            return one_line(data[key])
    return None


def error_text(content: bytes) -> str:
    """The message of an error answer: its JSON error message, else its first bytes."""
    try:
        msg = _error_message(json.loads(content))
    except (ValueError, UnicodeDecodeError):
        msg = None
    if msg:
        return msg
    text = content[:4096].decode("utf-8", "replace")
    if re.search(r"<html|<!doctype", text, re.IGNORECASE):  # a proxy's error page: its title says it
        title = re.search(r"<title[^>]*>(.*?)</title>|<h1[^>]*>(.*?)</h1>", text, re.IGNORECASE | re.DOTALL)
        found = next((g for g in title.groups() if g), "") if title else ""
        return f"an HTML page{': ' + one_line(re.sub(r'<[^>]+>', ' ', found)) if found.strip() else ''}"
    return one_line(text[:200]) or "no message"


def error_code(content: bytes) -> str:
    """The ``error.code`` / ``error.type`` of an error answer, lower case ('' if none)."""
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError):
        return ""
    err = data.get("error") if isinstance(data, Mapping) else None
    if isinstance(err, Mapping):
        return " ".join(str(err.get(k) or "") for k in ("code", "type")).lower()
    return ""


def _mean_logprob(logprobs: Any, endpoint: str) -> tuple[float | None, int | None]:
    if not isinstance(logprobs, Mapping):
        return None, None
    # Chat answers list tokens under "content", completions under "token_logprobs"; llama.cpp's
    # server answers /v1/completions in the chat shape too, so either is read on either endpoint.
    content, flat = logprobs.get("content"), logprobs.get("token_logprobs")
    if isinstance(content, list) and (endpoint == "chat" or not isinstance(flat, list)):
        values = [t.get("logprob") for t in content if isinstance(t, Mapping)]
    else:
        values = flat if isinstance(flat, list) else []
    numbers = [float(v) for v in values if isinstance(v, _NUMBER) and not isinstance(v, bool) and math.isfinite(v)]
    if not values:
        return None, None
    return (sum(numbers) / len(numbers) if numbers else None), len(values)


def _choice(raw: Any, index: int, endpoint: str, hint: str) -> Choice:
    if not isinstance(raw, Mapping):
        return Choice(None, None, None, f"the server's answer has choices[{index}] = {one_line(raw, 60)!r}, not an object; {hint}")
    if endpoint == "chat":
        message = raw.get("message")
        content = message.get("content") if isinstance(message, Mapping) else None
        if isinstance(content, list):  # content parts
            content = "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
        where = "choices[{}].message.content".format(index)
    else:
        content = raw.get("text")
        where = "choices[{}].text".format(index)
    logprob, tokens = _mean_logprob(raw.get("logprobs"), endpoint)
    finish = raw.get("finish_reason")
    finish = finish if isinstance(finish, str) else None
    if not isinstance(content, str):
        message = raw.get("message") if isinstance(raw.get("message"), Mapping) else {}
        refusal = message.get("refusal")
        thought = any(isinstance(message.get(k), str) and message.get(k) for k in ("reasoning_content", "reasoning"))
        if (finish == "length" or thought) and not refusal:
            # max_tokens ran out before any answer (a reasoning model still thinking: vLLM's
            # reasoning parser sends content null where OpenAI sends ""): a drawn sample with no
            # answer, judged wrong like any other cut sample, not a failure left out of pass@k.
            # Likewise an answer that is all thinking (a reasoning parser that found no end of
            # the thoughts puts everything in reasoning_content and sends content null): drawn
            # and billed, with no answer.
            return Choice("", logprob, tokens, None, finish)
        why = f" (refusal: {one_line(refusal, 120)})" if refusal else f" (finish_reason={raw.get('finish_reason')!r})"
        return Choice(None, logprob, tokens, f"the server's answer lacks {where}{why}; {hint}")
    return Choice(content, logprob, tokens, None, finish)


def _usage(data: Mapping[str, Any]) -> tuple[int | None, int | None]:
    usage = data.get("usage")
    if not isinstance(usage, Mapping):
        return None, None
    out = []
    for key in ("prompt_tokens", "completion_tokens"):
        value = usage.get(key)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        out.append(value if ok else None)
    if out[1] is None and isinstance(usage.get("total_tokens"), int) and out[0] is not None:
        out[1] = max(usage["total_tokens"] - out[0], 0)
    if out[0] is None or out[1] is None:
        return None, None
    return out[0], out[1]


def parse_answer(content: bytes, content_type: str, endpoint: str, url: str) -> Answer:
    """Parse a 2xx answer; raise :class:`RequestFailed` with a one-line reason when it is not
    an OpenAI completion. A JSON body is accepted whatever its content-type says."""
    hint = f"check that {url} is an OpenAI-compatible API (the base URL usually ends in /v1)"
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        first = one_line(content[:80].decode("utf-8", "replace"), 80)
        if "json" not in content_type.lower():
            raise RequestFailed(
                f"the server answered with content-type {content_type or 'none'!r}, not JSON ({first!r}...); {hint}"
            ) from None
        where = f"{exc.msg} at byte {exc.pos} of {len(content)}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise RequestFailed(f"the server's answer is not valid JSON ({where}; truncated?); {hint}") from None
    if not isinstance(data, Mapping):
        raise RequestFailed(f"the server's answer is a JSON {type(data).__name__}, not an object; {hint}")
    prompt_tokens, completion_tokens = _usage(data)
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices:
        err = _error_message(data)
        if err:
            reason = f"the server answered with an error: {err}"
        else:
            keys = ", ".join(list(map(str, data))[:8]) or "none"
            billed = (prompt_tokens or 0) + (completion_tokens or 0)
            if isinstance(choices, list) and billed:
                # A billed failure stays failed (only free ones are drawn again): promise no redraw.
                reason = (f"the server's answer has an empty 'choices' list: it sent no completion but billed {billed} "
                          "tokens, so these samples stay failed; see the server's log for why")
            elif isinstance(choices, list):
                reason = ("the server's answer has an empty 'choices' list: it sent no completion; "
                          "run it again to draw these samples again, or see the server's log for why")
            else:
                reason = f"the server's answer lacks 'choices' (its fields: {keys}); {hint}"
        raise RequestFailed(reason, prompt_tokens=prompt_tokens or 0, completion_tokens=completion_tokens or 0)
    indexed = sorted(
        enumerate(choices),
        key=lambda ic: (ic[1].get("index") if isinstance(ic[1], Mapping) and isinstance(ic[1].get("index"), int) else ic[0]),
    )
    parsed = [_choice(raw, i, endpoint, hint) for i, raw in indexed]
    return Answer(parsed, prompt_tokens, completion_tokens)
