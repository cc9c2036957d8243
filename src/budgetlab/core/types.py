"""The nouns of budgetlab: problems, sampling configurations, samples and their states."""

from __future__ import annotations

import enum
import functools
import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from budgetlab.core.budget import Spend

__all__ = [
    "BILLED_ESTIMATE",
    "JUDGED_BY",
    "Problem",
    "SamplingConfig",
    "SampleState",
    "SampleKey",
    "Sample",
    "Completion",
    "Verdict",
    "derive_seed",
    "content_id",
    "with_distinct_names",
    "drawn_again",
]


def content_id(payload: Mapping[str, Any], length: int = 12) -> str:
    """A short, stable hash of a JSON-serialisable mapping (key order does not matter)."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:length]


def derive_seed(run_seed: int, problem: str, config: str, index: int) -> int:
    """The seed of one sample: a pure function of its identity, so a re-issued request after a
    crash draws with exactly the seed it had the first time."""
    digest = hashlib.blake2b(f"{run_seed}\x1f{problem}\x1f{config}\x1f{index}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big") >> 1  # 63 bits: fits a signed SQL integer


@dataclass(frozen=True)
class Problem:
    """One question to sample answers for."""

    id: str
    prompt: str | None = None
    messages: tuple[Mapping[str, str], ...] | None = None
    reference: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id}
        if self.prompt is not None:
            out["prompt"] = self.prompt
        if self.messages is not None:
            out["messages"] = [dict(m) for m in self.messages]
        if self.reference is not None:
            out["reference"] = self.reference
        if self.metadata:
            out["metadata"] = dict(self.metadata)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Problem:
        messages = data.get("messages")
        return cls(
            id=str(data["id"]),
            prompt=data.get("prompt"),
            messages=tuple(messages) if messages is not None else None,
            reference=None if data.get("reference") is None else str(data["reference"]),
            metadata=dict(data.get("metadata") or {}),
        )


@dataclass(frozen=True)
class SamplingConfig:
    """How samples are drawn: backend, model, sampling parameters and prompt template.

    ``id`` is a hash of the content, so the same configuration gets the same id in every run and
    store; ``name`` is the human label used in reports.
    """

    model: str
    backend: str = "replay"
    params: Mapping[str, Any] = field(default_factory=dict)
    template: str | None = None
    label: str | None = None

    @functools.cached_property
    def id(self) -> str:
        return content_id(
            {"backend": self.backend, "model": self.model, "params": dict(self.params), "template": self.template}
        )

    @property
    def name(self) -> str:
        return self.label or self.model

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "backend": self.backend,
            "params": dict(self.params),
            "template": self.template,
            "label": self.label,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SamplingConfig:
        return cls(
            model=str(data["model"]),
            backend=str(data.get("backend", "replay")),
            params=dict(data.get("params") or {}),
            template=data.get("template"),
            label=data.get("label"),
        )


def with_distinct_names(configs: Sequence[SamplingConfig]) -> list[SamplingConfig]:
    """``configs`` with a label for each one whose name another shares (the same model at two
    temperatures, or with two prompt templates): its name plus what sets it apart, e.g.
    ``smollm2 temperature=0.2`` or ``smollm2 template='Q: {question}'``, so that reports never
    merge two configurations under one name. Labels are not part of a configuration's id: a run
    resumes whatever its configurations are called."""
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(configs):
        groups.setdefault(c.name, []).append(i)
    out = list(configs)
    for name, members in groups.items():
        if len(members) > 1:
            for i, label in zip(members, _labels_apart(name, [configs[i] for i in members])):
                out[i] = replace(configs[i], label=label)
    names = [c.name for c in out]
    if len(set(names)) < len(names):  # still alike (or a label built above met a given one): number them
        seen: dict[str, int] = {}
        for i, c in enumerate(out):
            if names.count(c.name) > 1:
                seen[c.name] = seen.get(c.name, 0) + 1
                out[i] = replace(c, label=f"{c.name} #{seen[c.name]}")
    return out


def _labels_apart(name: str, group: Sequence[SamplingConfig]) -> list[str]:
    """Each configuration's name plus what it sets that the others in ``group`` set otherwise:
    its backend, its parameters (those it leaves at their defaults are not named) and its prompt
    template (shortened)."""
    keys = sorted({k for c in group for k in c.params})
    differing = [k for k in keys if len({repr(c.params.get(k)) for c in group}) > 1]
    labels = []
    for c in group:
        parts = [f"backend={c.backend}"] if len({g.backend for g in group}) > 1 else []
        parts += [f"{k}={c.params[k]}" for k in differing if k in c.params]
        if len({g.template for g in group}) > 1:
            parts.append("no template" if c.template is None else f"template={_short(c.template)}")
        labels.append(" ".join([name, *parts]) if parts else f"{name} (defaults)")
    return labels


def _short(text: str, width: int = 24) -> str:
    shown = repr(text)
    return shown if len(shown) <= width else shown[: width - 4] + "...'"


class SampleState(str, enum.Enum):
    """The life of a sample: ``pending -> running -> done | failed``.

    ``running -> pending`` is allowed only to release the claim of a worker that died or was
    interrupted; the sample is then re-drawn with the same seed.
    """

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (SampleState.DONE, SampleState.FAILED)


@dataclass(frozen=True, order=True)
class SampleKey:
    """The identity of a sample within a run."""

    problem: str
    config: str
    index: int


@dataclass(frozen=True)
class Completion:
    """What a backend returns for one sample, before judging.

    Replayed samples may carry the verdict they were recorded with (``answer``, ``correct``,
    ``score``); a live backend leaves those ``None``. ``details`` says how the backend drew it
    (e.g. budget forcing's thinking tokens and waits); the run keeps it in the sample's
    ``details``. It does not take part in comparisons.
    """

    text: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency: float = 0.0
    logprob: float | None = None
    answer: str | None = None
    correct: bool | None = None
    score: float | None = None
    error: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Verdict:
    """A verifier's judgement of one completion.

    ``seconds`` is what judging took (counted against a ``verify_seconds`` budget); a verifier
    that pays for judging (a judge model) reports its tokens and dollars, which the run adds to
    the sample's spend. ``details`` says how it was judged (e.g. the sandbox's isolation level);
    it does not take part in comparisons.
    """

    answer: str | None = None
    correct: bool | None = None
    score: float | None = None
    seconds: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    details: Mapping[str, Any] = field(default_factory=dict, compare=False)


# The sample detail that says how much of its spend is an estimate: attempts that timed out after
# the request was sent, which a hosted API may have run to the end and billed (the openai backend
# counts them at their upper bound with ``bill_timeouts``).
BILLED_ESTIMATE = "billed_estimate"
# The sample detail that names the verifier (spec) whose verdict a sample carries when
# ``budgetlab judge`` gave it; a sample without it carries the run's verifier's.
JUDGED_BY = "judged_by"


@dataclass(frozen=True)
class Sample:
    """One sample as recorded in the store."""

    run: str
    problem: str
    config: str
    index: int
    seed: int
    state: SampleState = SampleState.PENDING
    text: str | None = None
    answer: str | None = None
    correct: bool | None = None
    score: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float = 0.0
    latency: float = 0.0
    verify_seconds: float = 0.0
    logprob: float | None = None
    error: str | None = None
    # How the sample was drawn and judged (the completion's and the verdict's details, JSON values).
    details: Mapping[str, Any] = field(default_factory=dict, hash=False)

    @property
    def key(self) -> SampleKey:
        return SampleKey(self.problem, self.config, self.index)

    @property
    def spend(self) -> Spend:
        """What this sample cost. A failed sample is not counted as a sample drawn, but any
        tokens and dollars it used (a server may bill a request that failed) are counted."""
        if not self.state.finished:
            return Spend()
        return Spend(
            samples=1 if self.state is SampleState.DONE else 0,
            tokens=self.prompt_tokens + self.completion_tokens,
            dollars=self.cost,
            verify_seconds=self.verify_seconds,
        )


def drawn_again(sample: Sample) -> bool:
    """Whether a new invocation draws failed ``sample`` again: it cost nothing (a refused or
    dropped request), or all it cost is the estimate for attempts that timed out (nothing came
    back, and the estimate stays in the run's spend). A failure the server billed stays failed."""
    if sample.state is not SampleState.FAILED:
        return False
    if not (sample.prompt_tokens or sample.completion_tokens or sample.cost):
        return True
    counted = sample.details.get(BILLED_ESTIMATE) if sample.details else None
    if not isinstance(counted, Mapping):
        return False
    tokens = int(counted.get("prompt_tokens", 0)) + int(counted.get("completion_tokens", 0))
    return sample.prompt_tokens + sample.completion_tokens == tokens and math.isclose(
        sample.cost, float(counted.get("cost", 0.0)), rel_tol=1e-9, abs_tol=1e-12
    )
