"""Dollar prices of hosted models: input and output dollars per million tokens.

The built-in table holds a few well-known hosted models at their list prices (standard tier, no
batch or cached-input discount) as published by the vendors in 2025; prices change, so check them
and override what you use. A price comes from, first to last:

1. the configuration's own ``price_in`` / ``price_out`` parameters (dollars per million tokens);
2. a price file given by the backend option ``prices`` or the environment variable
   ``BUDGETLAB_PRICES`` (both may be given; the option wins);
3. the built-in table.

A model with no price costs $0 (right for a local server; give a price for a hosted one, or a
dollar budget is not enforced).

A price file is JSON or TOML (by its suffix: ``.json`` or ``.toml``), one entry per model::

    # prices.toml
    ["my-org/my-model"]
    input = 0.20     # dollars per million prompt tokens
    output = 0.60    # dollars per million completion tokens

    {"my-org/my-model": {"input": 0.2, "output": 0.6}}   # the same as JSON

Model names match exactly, then by the name after the last ``/`` (``openai/gpt-4o`` is
``gpt-4o``), then by the longest known name that the model's name starts with followed by ``-``
(``gpt-4o-2024-08-06`` is ``gpt-4o``; ``gpt-4o-mini-2024-07-18`` is ``gpt-4o-mini``).
"""

from __future__ import annotations

import json
import math
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from budgetlab.errors import InputError

__all__ = ["BUILTIN_PRICES", "PRICES_ENV", "Price", "load_prices", "lookup_price", "price_table"]

PRICES_ENV = "BUDGETLAB_PRICES"


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens."""

    input: float
    output: float

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        return (prompt_tokens * self.input + completion_tokens * self.output) / 1_000_000


# List prices, dollars per million tokens (input, output), standard tier, 2025.
BUILTIN_PRICES: dict[str, Price] = {
    name: Price(i, o)
    for name, (i, o) in {
        "gpt-5": (1.25, 10.00),
        "gpt-5-mini": (0.25, 2.00),
        "gpt-5-nano": (0.05, 0.40),
        "gpt-4.1": (2.00, 8.00),
        "gpt-4.1-mini": (0.40, 1.60),
        "gpt-4.1-nano": (0.10, 0.40),
        "gpt-4o": (2.50, 10.00),
        "gpt-4o-mini": (0.15, 0.60),
        "gpt-4-turbo": (10.00, 30.00),
        "gpt-3.5-turbo": (0.50, 1.50),
        "o1": (15.00, 60.00),
        "o3": (2.00, 8.00),
        "o3-mini": (1.10, 4.40),
        "o4-mini": (1.10, 4.40),
    }.items()
}


def _price_entry(where: str, name: str, value: Any) -> Price:
    if isinstance(value, Mapping):
        unknown = set(value) - {"input", "output"}
        raw_in, raw_out = value.get("input"), value.get("output")
    elif isinstance(value, (list, tuple)) and len(value) == 2:
        unknown, (raw_in, raw_out) = set(), value
    else:
        unknown, raw_in, raw_out = set(), None, None
    numbers = []
    for raw in (raw_in, raw_out):
        ok = isinstance(raw, (int, float)) and not isinstance(raw, bool) and math.isfinite(raw) and raw >= 0
        numbers.append(float(raw) if ok else None)
    if unknown or None in numbers:
        raise InputError(
            f"price file {where}: entry {name!r} = {value!r} is not a price; write "
            f'{{"input": DOLLARS, "output": DOLLARS}} per million tokens, both non-negative numbers'
        )
    return Price(numbers[0], numbers[1])  # type: ignore[arg-type]


def load_prices(path: str | Path) -> dict[str, Price]:
    """Read a JSON or TOML price file (see the module docstring)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InputError(
            f"price file {path} does not exist; give a JSON or TOML file of "
            '{"MODEL": {"input": ..., "output": ...}} (dollars per million tokens)'
        )
    try:
        text = path.read_text(encoding="utf-8")
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        else:
            data = json.loads(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"price file {path} cannot be read ({type(exc).__name__}: {exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"price file {path} is not valid TOML ({exc}); see the format in budgetlab.backends._prices") from None
    except json.JSONDecodeError as exc:
        raise InputError(
            f"price file {path} is not valid JSON ({exc.msg} at line {exc.lineno}); name it *.toml for TOML"
        ) from None
    if not isinstance(data, Mapping):
        raise InputError(f"price file {path} must hold a table of models, got {type(data).__name__}")
    return {str(name): _price_entry(str(path), str(name), value) for name, value in data.items()}


def price_table(path: str | Path | None = None) -> dict[str, Price]:
    """The built-in prices, overridden by the file in ``$BUDGETLAB_PRICES``, then by ``path``."""
    table = dict(BUILTIN_PRICES)
    env = os.environ.get(PRICES_ENV)
    if env:
        table.update(load_prices(env))
    if path:
        table.update(load_prices(path))
    return table


def lookup_price(model: str, table: Mapping[str, Price] | None = None) -> Price | None:
    """The price of ``model`` in ``table`` (default: the built-in one), or ``None``."""
    table = BUILTIN_PRICES if table is None else table
    for name in (model, model.rsplit("/", 1)[-1]):
        if name in table:
            return table[name]
    for name in (model, model.rsplit("/", 1)[-1]):
        matches = [known for known in table if name.startswith(known + "-")]
        if matches:
            return table[max(matches, key=len)]
    return None
