"""Backends draw samples: replay of recorded samples (built in); live model backends plug in here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from budgetlab.backends._base import Backend, DrawRequest
from budgetlab.backends._llama import EmbeddedBackend
from budgetlab.backends import _multi
from budgetlab.backends._multi import MultiBackend
from budgetlab.backends._openai import OpenAIBackend
from budgetlab.backends._ray import RayBackend
from budgetlab.backends._replay import ReplayBackend, read_recorded
from budgetlab.backends._transformers import TransformersBackend
from budgetlab.core.spec import check_arguments
from budgetlab.errors import InputError

__all__ = [
    "BACKENDS",
    "Backend",
    "DrawRequest",
    "EmbeddedBackend",
    "MultiBackend",
    "OpenAIBackend",
    "RayBackend",
    "ReplayBackend",
    "TransformersBackend",
    "canonical_backend",
    "make_backend",
    "read_recorded",
]

_FILE_BACKENDS = {"replay"}
_NEEDS_TARGET = {"replay"}

# name -> factory(target, **options). ``target`` is what follows "name:" in the backend spec.
# Every module here imports its heavy dependency (llama_cpp, httpx, ray, torch) only when a
# backend is built, so importing budgetlab stays light.
BACKENDS: dict[str, Callable[..., Backend]] = {
    "replay": ReplayBackend,
    "embedded": EmbeddedBackend,
    "openai": OpenAIBackend,
    "multi": MultiBackend,
    "ray": RayBackend,
    "transformers": TransformersBackend,
}


def canonical_backend(spec: str) -> str:
    """The spec as it is stored with a run: file targets made absolute, so the run resumes from
    any directory."""
    name, _, target = spec.partition(":")
    if name in _FILE_BACKENDS and target:
        return f"{name}:{Path(target).expanduser().resolve()}"
    if name == "multi" and target:
        return "multi:" + _multi.SEPARATOR.join(canonical_backend(part) for part in _multi.split_specs(target))
    if name == "ray" and target:
        return "ray:" + canonical_backend(target)
    return spec


def make_backend(spec: str, options: Mapping[str, Any] | None = None) -> Backend:
    """Build a backend from ``"NAME:TARGET"``, e.g. ``"replay:samples.jsonl"``."""
    name, _, target = spec.partition(":")
    factory = BACKENDS.get(name)
    if factory is None:
        raise InputError(
            f"unknown backend {name!r} in {spec!r}; use one of: "
            + ", ".join(f"{n}:..." for n in sorted(BACKENDS))
            + " (e.g. --backend replay:samples.jsonl)"
        )
    if not target and name in _NEEDS_TARGET:
        raise InputError(f"backend {spec!r} needs a target after the colon, e.g. {name}:PATH")
    check_arguments(factory, options, f"backend {name}", f"{name}:{target}")
    return factory(target or None, **dict(options or {}))
