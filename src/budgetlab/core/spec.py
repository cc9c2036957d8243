"""Parse the ``NAME:key=value,...`` strings that name a policy or verifier with its arguments."""

from __future__ import annotations

from typing import Any

from budgetlab.errors import InputError

__all__ = ["parse_spec", "parse_value"]


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
        args[key.strip()] = parse_value(value)
    return name, args
