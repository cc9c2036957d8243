"""Budget forcing over an OpenAI-compatible completions endpoint.

A server cannot be told to refuse an end of thinking in the middle of a generation, so each
phase of a forced sample is its own request that continues the text: the prompt (ending in the
start delimiter), what the model wrote so far and the forced text. Thinking requests stop at the
end delimiter (``stop``) with the thinking tokens left as ``max_tokens``; the answer request
gets the configuration's ``max_tokens`` and ``stop``. The rules are those of
:mod:`budgetlab.backends._forcing`; request ``j`` of a sample sends seed ``seed + j``, so a
re-drawn sample sends the same requests.

Every request bills its whole prompt again, so a forced sample's ``prompt_tokens`` is the sum of
its requests' prompts (what the server reports). The spend reserved for it
(:func:`forced_bound`) assumes at most ``GENERATED_BYTES_PER_TOKEN`` bytes per generated token
for the text that is sent back; each request is checked against what is left of the reservation
before it goes out (its prompt's tokenizer-free bound, its ``max_tokens``), so a sample never
spends more than was reserved: when the thinking would not fit, it is cut early, and a sample
whose answer would not fit fails with the reason. With ``bill_timeouts``, a request's attempts that
timed out after being sent are counted on top at that request's bound (they may have been
billed); what is left of the reservation for later requests is unchanged by them, so a sample
draws the same requests either way (the backend reserves for them separately).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from budgetlab.backends._forcing import (
    BudgetForcing,
    ForcingTrace,
    Piece,
    drive_forcing,
)
from budgetlab.backends._openai._wire import Answer, ConfigSpec, RequestFailed, estimated
from budgetlab.core import Completion

__all__ = ["GENERATED_BYTES_PER_TOKEN", "OutOfReserve", "draw_forced", "forced_bound", "prompt_with_suffix"]

# Bytes of generated text per token assumed by the reservation (English text averages about 4
# with the usual tokenizers); a text that beats it gets its thinking cut, never an overspend.
GENERATED_BYTES_PER_TOKEN = 8

# A request's body -> its answer, latency, and attempts before it that timed out after being sent.
Exchange = Callable[[dict[str, Any]], Awaitable[tuple[Answer, float, int]]]


def forced_bound(spec: ConfigSpec, prompt: str) -> tuple[int, int]:
    """(prompt tokens, completion tokens) reserved for one forced sample of ``prompt`` (which
    already ends in the forcing's prompt suffix)."""
    forcing = spec.forcing
    assert forcing is not None
    if forcing.max_thinking_tokens == 0:
        return spec.prompt_bound(prompt), spec.max_tokens
    requests = 2 + forcing.max_waits  # the first thinking, one more per wait, the answer
    sent_back = (
        GENERATED_BYTES_PER_TOKEN * forcing.max_thinking_tokens
        + forcing.max_waits * len(forcing.wait.encode()) + len(forcing.end_text.encode())
    )  # fmt: skip
    return requests * (spec.prompt_bound(prompt) + sent_back), forcing.max_thinking_tokens + spec.max_tokens


class OutOfReserve(Exception):
    """The next request could not fit in what is left of the sample's reservation."""


@dataclass
class _Tally:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency: float = 0.0
    logprob_sum: float = 0.0
    logprob_tokens: int = 0
    requests: int = 0
    # attempts that timed out after being sent, and the bounds counted for them
    timed_out: int = 0
    timed_out_prompt: int = 0
    timed_out_completion: int = 0

    def time_out(self, attempts: int, prompt_bound: int, max_tokens: int) -> None:
        self.timed_out += attempts
        self.timed_out_prompt += attempts * prompt_bound
        self.timed_out_completion += attempts * max_tokens


async def draw_forced(spec: ConfigSpec, exchange: Exchange, prompt: str, seed: int, *,
                      bill_timeouts: bool = False) -> Completion:  # fmt: skip
    """One forced sample; a request that fails fails the sample with what it had spent (and,
    with ``bill_timeouts``, the bounds of its attempts that timed out after being sent)."""
    forcing: BudgetForcing | None = spec.forcing
    assert forcing is not None
    prompt_left, completion_left = forced_bound(spec, prompt)
    tally = _Tally()

    async def step(generated: str, max_tokens: int, stop: tuple[str, ...] | None, thinking: bool) -> Piece:
        nonlocal prompt_left, completion_left
        text = prompt + generated
        bound = spec.prompt_bound(text)
        if thinking:  # leave room for the answer request that must follow
            answer_text = text + forcing.end_text
            room = prompt_left - spec.prompt_bound(answer_text) - GENERATED_BYTES_PER_TOKEN * max_tokens
            if bound > room:
                return Piece("", 0, True)  # no room to think more: the thinking is cut here
        max_tokens = min(max_tokens, completion_left)
        if bound > prompt_left or max_tokens < 1:
            raise OutOfReserve(
                f"budget forcing: request {tally.requests + 1} of this sample would exceed the spend reserved for it "
                f"(its text is longer than {GENERATED_BYTES_PER_TOKEN} bytes per token); lower max_thinking_tokens"
            )
        body = spec.request_body(text, 1, seed + tally.requests, max_tokens=max_tokens, stop=stop)
        try:
            answer, latency, timed_out = await exchange(body)
        except RequestFailed as exc:
            tally.time_out(exc.timed_out, bound, max_tokens)
            raise
        tally.time_out(timed_out, bound, max_tokens)
        tally.requests += 1
        tally.latency += latency
        choice = answer.choices[0]
        if answer.prompt_tokens is not None and answer.completion_tokens is not None:
            used_prompt, used = answer.prompt_tokens, answer.completion_tokens
        else:  # no usage: count the bounds
            used_prompt = bound
            used = min(max_tokens, choice.tokens if choice.tokens is not None else len((choice.text or "").encode("utf-8")))
        tally.prompt_tokens += used_prompt
        tally.completion_tokens += used
        prompt_left -= max(used_prompt, bound)
        completion_left -= max(used, 0)
        if choice.error is not None:
            raise RequestFailed(choice.error)
        if choice.logprob is not None and choice.tokens:
            tally.logprob_sum += choice.logprob * choice.tokens
            tally.logprob_tokens += choice.tokens
        length = choice.finish_reason == "length" or (choice.finish_reason is None and used >= max_tokens)
        return Piece(choice.text or "", used, length)

    try:
        forced = await drive_forcing(forcing, step, spec.max_tokens, spec.stop)
    except (RequestFailed, OutOfReserve) as exc:
        message = exc.message if isinstance(exc, RequestFailed) else str(exc)
        extra_prompt = exc.prompt_tokens if isinstance(exc, RequestFailed) else 0
        extra_completion = exc.completion_tokens if isinstance(exc, RequestFailed) else 0
        p, c = tally.prompt_tokens + extra_prompt, tally.completion_tokens + extra_completion
        latency = tally.latency + (exc.latency if isinstance(exc, RequestFailed) else 0.0)
        failed = Completion(prompt_tokens=p, completion_tokens=c, cost=spec.cost(p, c), latency=latency, error=message)
        return _with_timeouts(spec, failed, tally, bill_timeouts)
    drawn = Completion(
        text=forced.text,
        prompt_tokens=tally.prompt_tokens,
        completion_tokens=tally.completion_tokens,
        cost=spec.cost(tally.prompt_tokens, tally.completion_tokens),
        latency=tally.latency,
        logprob=tally.logprob_sum / tally.logprob_tokens if tally.logprob_tokens else None,
        details={**forced.trace.details(), "requests": tally.requests},
    )
    return _with_timeouts(spec, drawn, tally, bill_timeouts)


def _with_timeouts(spec: ConfigSpec, completion: Completion, tally: _Tally, bill_timeouts: bool) -> Completion:
    if not bill_timeouts or not tally.timed_out:
        return completion
    return estimated(spec, completion, tally.timed_out, tally.timed_out_prompt, tally.timed_out_completion)


def prompt_with_suffix(spec: ConfigSpec, prompt: str) -> str:
    """The prompt a forced sample starts from."""
    assert spec.forcing is not None
    return prompt + ForcingTrace(spec.forcing).prompt_suffix()
