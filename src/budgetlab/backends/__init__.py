"""Backends draw samples: replay of recorded samples (built in); live model backends plug in here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from budgetlab.backends._base import Backend, DrawRequest
from budgetlab.backends._replay import ReplayBackend, read_recorded
from budgetlab.core.spec import check_arguments
from budgetlab.errors import InputError

__all__ = ["Backend", "DrawRequest", "ReplayBackend", "make_backend", "BACKENDS", "canonical_backend", "read_recorded"]

_FILE_BACKENDS = {"replay"}
_NEEDS_TARGET = {"replay"}

# name -> factory(target, **options). ``target`` is what follows "name:" in the backend spec.
BACKENDS: dict[str, Callable[..., Backend]] = {
    "replay": ReplayBackend,
}


def canonical_backend(spec: str) -> str:
    """The spec as it is stored with a run: file targets made absolute, so the run resumes from
    any directory."""
    name, sep, target = spec.partition(":")
    if name in _FILE_BACKENDS and target:
        return f"{name}:{Path(target).expanduser().resolve()}"
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
