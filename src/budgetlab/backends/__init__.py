"""Backends draw samples: replay of recorded samples (built in); live model backends plug in here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from budgetlab.backends._base import Backend, DrawRequest
from budgetlab.backends._replay import ReplayBackend, read_recorded
from budgetlab.errors import InputError

__all__ = ["Backend", "DrawRequest", "ReplayBackend", "make_backend", "BACKENDS", "read_recorded"]

# name -> factory(target, **options). ``target`` is what follows "name:" in the backend spec.
BACKENDS: dict[str, Callable[..., Backend]] = {
    "replay": lambda target, **opts: ReplayBackend(target, **opts),
}


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
    if not target:
        raise InputError(f"backend {spec!r} needs a target after the colon, e.g. {name}:PATH")
    try:
        return factory(target, **dict(options or {}))
    except TypeError as exc:
        raise InputError(f"backend {name!r} does not take the options {dict(options or {})}: {exc}") from None
