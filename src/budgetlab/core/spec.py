"""Parse the ``NAME:key=value,...`` strings that name a policy or verifier with its arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from budgetlab.core.types import SamplingConfig

from budgetlab.errors import InputError

__all__ = ["check_arguments", "parse_config", "parse_spec", "parse_value"]


def parse_value(raw: str) -> Any:
    text = raw.strip()
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_spec(text: str, what: str) -> tuple[str, dict[str, Any]]:
    """``"fixed:k=8"`` -> ``("fixed", {"k": 8})``."""
    name, _, rest = text.strip().partition(":")
    if not name:
        raise InputError(f"{what} {text!r} has no name; write e.g. NAME or NAME:key=value")
    args: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in rest.split(","))):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise InputError(f"{what} argument {part!r} in {text!r} is not key=value; write e.g. {name}:k=8")
        if key.strip() in args:
            raise InputError(f"{what} {text!r} gives {key.strip()} twice; give each argument once")
        args[key.strip()] = parse_value(value)
    return name, args


def check_arguments(factory: Callable[..., Any], args: Mapping[str, Any] | None, what: str, example: str) -> None:
    """Raise a one-line :class:`InputError` for arguments ``factory`` does not take."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if n not in ("self", "name") and p.kind is not inspect.Parameter.VAR_POSITIONAL]
    unknown = [k for k in (args or {}) if k not in params or k == "name"]
    if unknown:
        takes = [n for n in accepted if n != "target"]
        raise InputError(
            f"{what} does not take {', '.join(map(repr, unknown))}; it takes: {', '.join(takes) or 'no arguments'} "
            f"(e.g. {_own_example(what, params, takes) or example})"
        )


def _own_example(what: str, params: Mapping[str, inspect.Parameter], takes: list[str]) -> str | None:
    """``NAME:arg=default`` for the first argument with a plain default: an example of the very
    thing being configured ("policy planner" gets a planner example, not another policy's)."""
    name = what.split()[-1]
    for arg in takes:
        default = params[arg].default
        if isinstance(default, (int, float, str)) and not isinstance(default, bool) and default != "":
            return f"{name}:{arg}={default}"
    return None


_CONFIG_KEYS = ("model", "label", "template")
# Text a shell cannot easily carry in one argument: written as \n, \t or \r in a --config.
_ESCAPED_TEXT = ("stop", "system", "template")
_ESCAPES = {"\\n": "\n", "\\t": "\t", "\\r": "\r", "\\\\": "\\"}


def _unescape(text: str) -> str:
    import re

    return re.sub(r"\\[ntr\\]", lambda m: _ESCAPES[m.group()], text)


def parse_config(text: str, backend: str) -> "SamplingConfig":
    """``"model=smollm2,temperature=0.7,max_tokens=64,label=smol"`` -> a :class:`SamplingConfig`
    of ``backend``; keys other than model, label and template are sampling parameters. In
    ``stop``, ``system`` and ``template``, ``\\n``, ``\\t`` and ``\\r`` stand for a newline, tab and
    carriage return (``stop=\\n`` ends a sample at its first line break)."""
    from budgetlab.core.types import SamplingConfig

    _, args = parse_spec("config:" + text, "configuration")
    args = {k: _unescape(v) if k in _ESCAPED_TEXT and isinstance(v, str) else v for k, v in args.items()}
    if "model" not in args:
        raise InputError(f"configuration {text!r} names no model; write e.g. --config model=smollm2,temperature=0.7")
    params = {k: v for k, v in args.items() if k not in _CONFIG_KEYS}
    return SamplingConfig(
        model=str(args["model"]),
        backend=backend,
        params=params,
        template=args.get("template"),
        label=None if args.get("label") is None else str(args["label"]),
    )
