"""The backend contract: draw samples of one problem under one configuration.

A backend is anything with these methods (a Protocol: no base class to inherit). One request
carries several samples of the same prompt, so a backend can share the prompt's work between
them (one prompt evaluation and k parallel sequences, or ``n=k`` in one HTTP request).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from budgetlab.core import Completion, Problem, Sample, SamplingConfig, Spend

__all__ = ["Backend", "DrawRequest"]


@dataclass(frozen=True)
class DrawRequest:
    """Draw one completion for each of ``samples`` (all of ``problem`` under ``config``); each
    sample carries its index and seed, so a re-issued request draws the same thing."""

    problem: Problem
    config: SamplingConfig
    samples: tuple[Sample, ...]


@runtime_checkable
class Backend(Protocol):
    """Where samples come from: ``draw`` turns a request for some samples of one problem under
    one configuration into completions (text, tokens, cost, log-probabilities). Built by
    :func:`budgetlab.backends.make_backend` from a spec such as ``"replay:FILE"``, ``"embedded"``
    or ``"openai:http://127.0.0.1:8000/v1"``; write your own as any class with these methods."""

    @property
    def name(self) -> str: ...  # read-only: an attribute, a field or a property all satisfy it

    def check(self, problems: Sequence[Problem], configs: Sequence[SamplingConfig]) -> None:
        """Raise :class:`budgetlab.errors.InputError` for a configuration or problem this backend
        cannot serve (unknown model, no prompt, ...), before anything is paid for."""

    def estimate(self, request: DrawRequest) -> list[Spend]:
        """An upper bound on each sample's spend, reserved before the request is sent."""

    async def draw(self, request: DrawRequest) -> list[Completion]:
        """One completion per sample, in order. A failure of one sample is a completion with
        ``error`` set; raise only for errors that make every further request futile."""

    async def aclose(self) -> None:
        """Release connections, models and threads."""
