"""Reading a configuration's sampling parameters for a local backend: every key must be one the
backend knows, and every value what its table says, else a one-line error that names both."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from budgetlab.core import SamplingConfig
from budgetlab.errors import InputError

__all__ = ["ParamReader"]


class ParamReader:
    """``allowed`` maps each parameter the ``backend`` takes to what its value may be (the text of
    the error for a bad one)."""

    def __init__(self, config: SamplingConfig, allowed: Mapping[str, str], backend: str) -> None:
        self.config, self.allowed, self.backend = config, allowed, backend
        self.params = dict(config.params)
        unknown = [k for k in self.params if k not in allowed]
        if unknown:
            raise InputError(
                f"configuration {config.name!r}: unknown parameter {unknown[0]!r} for the {backend} backend; "
                f"use {', '.join(allowed)}"
            )

    def bad(self, key: str, value: Any) -> InputError:
        return InputError(
            f"configuration {self.config.name!r}: parameter {key}={value!r} must be {self.allowed[key]} for the {self.backend} backend"
        )

    def number(self, key: str, default: Any, ok: Callable[[Any], bool], integral: bool = False) -> Any:
        value = self.params.get(key)
        if value is None:
            return default
        kinds = (int,) if integral else (int, float)
        if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value) or not ok(value):
            raise self.bad(key, value)
        return value

    def flag(self, key: str, default: bool | None) -> bool | None:
        value = self.params.get(key, default)
        if value is not None and not isinstance(value, bool):
            raise self.bad(key, value)
        return value

    def text(self, key: str) -> str | None:
        value = self.params.get(key)
        if value is not None and not isinstance(value, str):
            raise self.bad(key, value)
        return value

    def stop(self) -> tuple[str, ...]:
        """``stop``: one string or a list of non-empty strings, duplicates dropped."""
        stop = self.params.get("stop") or ()
        if isinstance(stop, str):
            stop = (stop,)
        if not isinstance(stop, (list, tuple)) or not all(isinstance(s, str) and s for s in stop):
            raise self.bad("stop", self.params.get("stop"))
        return tuple(dict.fromkeys(stop))
