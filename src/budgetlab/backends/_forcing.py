"""Budget forcing for models that think between delimiters (s1, Muennighoff et al. 2025).

A configuration asks for it with the sampling parameter ``budget_forcing``: a mapping of the
fields of :class:`BudgetForcing`, ``true`` for the defaults, or on the command line a string
``"max_thinking_tokens=64;min_thinking_tokens=16"``. Then a sample is drawn in two phases:

1. **thinking**: ``think_start`` is appended to the prompt and the model writes its thoughts.
   When it tries to end them (it writes ``think_end`` or an end-of-sequence token) before
   ``min_thinking_tokens`` thinking tokens, the end is suppressed and ``wait`` is appended
   instead, at most ``max_waits`` times; when it reaches ``max_thinking_tokens``, the thinking is
   cut there. Either way the thinking ends with ``think_end`` + ``answer_prefix`` (written by
   budgetlab, whether the model ended it or not, so every sample's answer starts the same way);
2. **answering**: the model continues for at most the configuration's ``max_tokens``, with its
   ``stop`` strings (which do not apply while thinking).

The completion's text is everything after the prompt: the thoughts, every forced string, and
the answer; its ``completion_tokens`` count every token the model read or wrote after the prompt
(thinking tokens included), and ``details`` says how the thinking went (:meth:`ForcingTrace.details`).
``thinking_tokens`` counts the tokens the model sampled while thinking, not the forced strings:
in the embedded backend only those kept in the text (not a refused end delimiter); over HTTP,
where the server counts the tokens, what the thinking requests generated (an end delimiter the
model wrote included, as servers count it; from a server that ignores the stop string and
writes on, the share of its tokens up to the delimiter).

The rules live here, once, as a small state machine (:class:`ForcingTrace`) that each backend
feeds at its own grain: the embedded backend token by token in the same sequence, an HTTP
backend request by request (:func:`drive_forcing`, continuing the text).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from budgetlab.core import SamplingConfig
from budgetlab.errors import InputError

__all__ = [
    "ANSWERING",
    "FORCING_PARAM",
    "THINKING",
    "BudgetForcing",
    "ForcedText",
    "ForcingTrace",
    "Piece",
    "drive_forcing",
    "forcing_of",
    "split_thinking",
]

FORCING_PARAM = "budget_forcing"
_EXAMPLE = 'budget_forcing={"max_thinking_tokens": 64, "min_thinking_tokens": 16, "max_waits": 2}'
_CLI_EXAMPLE = "budget_forcing=max_thinking_tokens=64;min_thinking_tokens=16"
DEFAULT_MAX_THINKING = 1024


@dataclass(frozen=True)
class BudgetForcing:
    """How long a sample may think; see the module docstring."""

    think_start: str = "<think>"
    think_end: str = "</think>"
    min_thinking_tokens: int = 0
    max_thinking_tokens: int = DEFAULT_MAX_THINKING
    wait: str = "Wait"
    max_waits: int = 2
    answer_prefix: str = "\nFinal answer:"

    @property
    def end_text(self) -> str:
        """What closes the thinking: the end delimiter and the answer prefix."""
        return self.think_end + self.answer_prefix

    @classmethod
    def parse(cls, value: Any, config: str) -> BudgetForcing:
        """From a configuration's ``budget_forcing`` value; :class:`InputError` names what is wrong."""
        where = f"configuration {config!r}: parameter {FORCING_PARAM}"
        if value is True:
            return cls()
        if isinstance(value, str):
            value = _parse_text(value, where)
        if not isinstance(value, Mapping):
            raise InputError(f"{where}={value!r} must be a mapping of its fields, true, or a 'key=value;key=value' string; write e.g. {_EXAMPLE}")
        known = {f.name for f in fields(cls)}
        unknown = [k for k in value if k not in known]
        if unknown:
            raise InputError(f"{where} has no field {unknown[0]!r}; its fields are {', '.join(sorted(known))} (e.g. {_EXAMPLE})")
        for key in ("think_start", "think_end", "wait", "answer_prefix"):
            if key in value and not isinstance(value[key], str):
                raise InputError(f"{where}: {key}={value[key]!r} must be a string (e.g. {key}={getattr(cls(), key)!r})")
        value = dict(value)
        for key in ("min_thinking_tokens", "max_thinking_tokens", "max_waits"):
            v = value.get(key)
            if isinstance(v, float) and v.is_integer():  # 1e3, as a --budget takes it
                value[key] = v = int(v)
            if key in value and (isinstance(v, bool) or not isinstance(v, int) or v < 0):
                raise InputError(f"{where}: {key}={v!r} must be a whole number >= 0 (e.g. {_EXAMPLE})")
        forcing = cls(**value)
        if not forcing.think_end:
            raise InputError(f"{where}: think_end must not be empty; give the delimiter that closes the thinking, e.g. '</think>'")
        if forcing.think_start and forcing.think_start == forcing.think_end:
            # The end could not be told from the start: every thinking would read as ended at once.
            raise InputError(f"{where}: think_start and think_end are both {forcing.think_end!r}; give two different "
                             "delimiters, e.g. think_start='<think>' and think_end='</think>'")  # fmt: skip
        if forcing.min_thinking_tokens > forcing.max_thinking_tokens:
            raise InputError(
                f"{where}: min_thinking_tokens={forcing.min_thinking_tokens} exceeds max_thinking_tokens="
                f"{forcing.max_thinking_tokens}; lower the minimum or raise the maximum"
            )
        if forcing.min_thinking_tokens and forcing.max_waits and not forcing.wait:
            raise InputError(f"{where}: wait must not be empty when min_thinking_tokens > 0; e.g. wait='Wait'")
        if forcing.think_end in forcing.wait:
            raise InputError(f"{where}: wait={forcing.wait!r} contains think_end={forcing.think_end!r}; it would end the thinking it extends")
        return forcing


def _parse_text(text: str, where: str) -> dict[str, Any]:
    from budgetlab.core.spec import parse_value

    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        key, sep, raw = part.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{where}: {part!r} in {text!r} is not key=value; write e.g. {_CLI_EXAMPLE}")
        value = parse_value(raw)
        key = key.strip()
        out[key] = raw if key in ("think_start", "think_end", "wait", "answer_prefix") else value
    return out


def forcing_of(config: SamplingConfig) -> BudgetForcing | None:
    """The configuration's budget forcing, or ``None`` when it asks for none."""
    value = config.params.get(FORCING_PARAM)
    if value is None or value is False:
        return None
    return BudgetForcing.parse(value, config.name)


# ---- the rules ----------------------------------------------------------------------------------
THINKING = "thinking"
ANSWERING = "answering"


@dataclass
class ForcingTrace:
    """One sample's way through the thinking: the backend reports what the model did and
    appends what the trace returns."""

    forcing: BudgetForcing
    phase: str = THINKING
    thinking_tokens: int = 0  # sampled while thinking and kept in the text
    waits: int = 0
    cut: bool = False  # the thinking reached max_thinking_tokens
    ended_by_model: bool = False

    def __post_init__(self) -> None:
        if self.forcing.max_thinking_tokens == 0:  # no thinking at all: the prompt closes it
            self.phase = ANSWERING
            self.cut = True

    @property
    def room(self) -> int:
        """Thinking tokens the model may still write."""
        return max(self.forcing.max_thinking_tokens - self.thinking_tokens, 0)

    def prompt_suffix(self) -> str:
        """Appended to the prompt: the start delimiter (and the end too when no thinking is allowed)."""
        return self.forcing.think_start + (self.forcing.end_text if self.phase == ANSWERING else "")

    def count(self, tokens: int = 1) -> str | None:
        """The model wrote ``tokens`` more thinking tokens (kept); the end text to append when
        that exhausts the thinking budget, else ``None``."""
        self.thinking_tokens += tokens
        if self.phase == THINKING and self.thinking_tokens >= self.forcing.max_thinking_tokens:
            self.cut = True
            self.phase = ANSWERING
            return self.forcing.end_text
        return None

    def end_attempt(self) -> str:
        """The model tried to end its thinking: what to append instead (``wait``, while under
        the minimum and waits are left) or after it (the end text: the answer starts)."""
        if self.thinking_tokens < self.forcing.min_thinking_tokens and self.waits < self.forcing.max_waits:
            self.waits += 1
            return self.forcing.wait
        self.phase = ANSWERING
        self.ended_by_model = True
        return self.forcing.end_text

    def details(self) -> dict[str, Any]:
        return {
            "thinking_tokens": self.thinking_tokens,
            "waits": self.waits,
            "thinking_cut": self.cut,
            "thinking_ended_by_model": self.ended_by_model,
        }


def split_thinking(text: str | None, forcing: BudgetForcing) -> tuple[str, str]:
    """A forced completion's text as (thinking, answer): around the last end text (with
    ``max_thinking_tokens=0`` the prompt holds it, and the whole text is the answer)."""
    if not text:
        return "", ""
    if forcing.max_thinking_tokens == 0:
        return "", text
    at = text.rfind(forcing.end_text)
    if at < 0:
        return text, ""
    return text[:at], text[at + len(forcing.end_text) :]


# ---- request by request (HTTP completions) ------------------------------------------------------
@dataclass(frozen=True)
class Piece:
    """What one continuation gave: its text, the tokens it generated, and whether it stopped
    because it ran out of ``max_tokens`` (``length``) or on its own (a stop string or the end)."""

    text: str
    tokens: int
    length: bool


@dataclass
class ForcedText:
    text: str
    trace: ForcingTrace
    pieces: list[Piece] = field(default_factory=list)


def _tokens_through(piece: Piece, end: int) -> int:
    """The tokens of ``piece`` that wrote its text up to ``end`` (its end delimiter included).
    A server that honours the stop string generated just those; one that ignores it went on
    into the answer, whose tokens are no thinking (counted, they would satisfy
    ``min_thinking_tokens`` for a model that closed its thinking at once). Without the tokens,
    the share of the text is the estimate, rounded up."""
    if end >= len(piece.text) or not piece.text:
        return piece.tokens
    return min(piece.tokens, -(-piece.tokens * end // len(piece.text)))


Continue = Callable[[str, int, tuple[str, ...] | None, bool], Awaitable[Piece]]


async def drive_forcing(forcing: BudgetForcing, step: Continue, max_tokens: int, stop: tuple[str, ...] | None) -> ForcedText:
    """Draw one forced sample with ``step(generated, max_tokens, stop, thinking)``, which
    continues the prompt (already ending in :meth:`ForcingTrace.prompt_suffix`) followed by
    ``generated``. The thinking steps stop at ``think_end``; the answer step gets ``max_tokens``
    and ``stop``. A thinking step may give less than asked (``length`` with fewer tokens, e.g.
    when its spend would not fit): the thinking is then cut there."""
    trace = ForcingTrace(forcing)
    out = ForcedText("", trace)
    while trace.phase == THINKING:
        piece = await step(out.text, trace.room, (forcing.think_end,), True)
        out.pieces.append(piece)
        chunk = piece.text
        at = chunk.find(forcing.think_end)  # a server that ignores stop strings goes on past it
        ended = at >= 0 or not piece.length
        tokens = piece.tokens
        if at >= 0:
            chunk = chunk[:at]
            tokens = _tokens_through(piece, at + len(forcing.think_end))
        out.text += chunk
        if ended:
            # The model ended it, even on the budget's last token: counted without the cut that
            # count() would report, like the embedded backend, which sees the delimiter first.
            trace.thinking_tokens += min(tokens, trace.room)
            forced = trace.end_attempt()
        else:
            forced = trace.count(min(tokens, trace.room))
        if forced is None:  # stopped for length with room left (the step had less to give)
            trace.cut, trace.phase, forced = True, ANSWERING, forcing.end_text
        out.text += forced
    piece = await step(out.text, max_tokens, stop, False)
    out.pieces.append(piece)
    out.text += piece.text
    return out
