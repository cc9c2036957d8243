"""Budgets and spend.

A budget limits any of four quantities: samples drawn, tokens (prompt + completion), dollars and
seconds spent verifying. Spend is *reserved* before a request is sent, from the backend's upper
bound for it, and *settled* with the real figures afterwards, so a budget is never overspent
even with many requests in flight.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

from budgetlab.errors import InputError

__all__ = ["Spend", "Budget", "LIMIT_NAMES", "format_amount"]

LIMIT_NAMES = ("samples", "tokens", "dollars", "verify_seconds")
# Counted in whole units: a fractional limit would only round down unseen.
_WHOLE_LIMITS = ("samples", "tokens")


def format_amount(value: float) -> str:
    """A limit as the user could type it back: ``2e6`` rather than ``2e+06``, ``22049`` in full."""
    if (isinstance(value, float) and not value.is_integer()) or abs(value) >= 1e15:
        return f"{value:.10g}"
    whole = str(abs(int(value)))
    significant = whole.rstrip("0")
    if len(whole) < 6 or len(significant) > 3:
        return str(int(value))
    mantissa = significant[0] + ("." + significant[1:] if len(significant) > 1 else "")
    return ("-" if value < 0 else "") + f"{mantissa}e{len(whole) - 1}"


@dataclass(frozen=True)
class Spend:
    """An amount of each budgeted quantity."""

    samples: int = 0
    tokens: int = 0
    dollars: float = 0.0
    verify_seconds: float = 0.0

    def __add__(self, other: Spend) -> Spend:
        return Spend(
            self.samples + other.samples,
            self.tokens + other.tokens,
            self.dollars + other.dollars,
            self.verify_seconds + other.verify_seconds,
        )

    def __sub__(self, other: Spend) -> Spend:
        return Spend(
            self.samples - other.samples,
            self.tokens - other.tokens,
            self.dollars - other.dollars,
            self.verify_seconds - other.verify_seconds,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spend:
        return cls(**{f.name: data.get(f.name, 0) for f in fields(cls)})


# Float sums of dollars and seconds drift by a few ulps; a limit hit exactly must still count as met.
_EPS = 1e-9


@dataclass(frozen=True)
class Budget:
    """Limits on spend; ``None`` means unlimited for that quantity."""

    samples: int | None = None
    tokens: int | None = None
    dollars: float | None = None
    verify_seconds: float | None = None

    def __post_init__(self) -> None:
        for name in LIMIT_NAMES:
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
                raise InputError(f"budget {name}={value!r} is not a number; give e.g. {name}=100")
            if value <= 0:
                raise InputError(
                    f"budget {name}={value!r} must be positive; give a limit above 0 or leave {name} out for no limit"
                )
            if name in _WHOLE_LIMITS and not math.isinf(value) and not float(value).is_integer():
                raise InputError(
                    f"budget {name}={value!r} must be a whole number of {name}; give e.g. {name}={max(1, round(value))}"
                )

    @property
    def unlimited(self) -> bool:
        return all(getattr(self, name) is None for name in LIMIT_NAMES)

    def limits(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in LIMIT_NAMES if getattr(self, name) is not None}

    def first_exceeded(self, spend: Spend) -> str | None:
        """The first limit that ``spend`` goes over, or ``None`` when it fits."""
        for name, limit in self.limits().items():
            if getattr(spend, name) > limit + _EPS:
                return name
        return None

    def exhausted(self, spend: Spend) -> str | None:
        """The first limit that ``spend`` has reached (nothing more can be drawn under it)."""
        for name, limit in self.limits().items():
            if getattr(spend, name) >= limit - _EPS:
                return name
        return None

    def to_dict(self) -> dict[str, Any]:
        return self.limits()

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Budget:
        data = dict(data or {})
        # A fractional count stored by an older version acted as its whole part: keep that meaning.
        for name in _WHOLE_LIMITS:
            value = data.get(name)
            if isinstance(value, float) and math.isfinite(value) and not value.is_integer():
                data[name] = max(1, math.floor(value))
        return cls(**data)

    @classmethod
    def parse(cls, text: str) -> Budget:
        """Parse ``"samples=1000,tokens=2e6,dollars=5"``.

        ``"none"`` (or ``"unlimited"``) means no limit; the policy alone then bounds the run.
        """
        text = text.strip()
        if text.lower() in ("none", "unlimited"):
            return cls()
        if not text:
            raise InputError(
                "budget is empty; give limits such as --budget samples=1000,tokens=2e6 or --budget none"
            )
        values: dict[str, Any] = {}
        for part in text.split(","):
            name, sep, raw = part.partition("=")
            name = name.strip().replace("-", "_")
            if not sep or name not in LIMIT_NAMES:
                raise InputError(
                    f"budget part {part.strip()!r} is not NAME=VALUE with NAME one of {', '.join(LIMIT_NAMES)}; "
                    "write e.g. --budget samples=1000,dollars=2.5"
                )
            if name in values:  # a silent last-wins would hide which limit the user meant
                raise InputError(
                    f"budget {text!r} gives {name} twice; give each limit once, e.g. --budget {name}={raw.strip()}"
                )
            try:
                number = float(raw)
                if math.isnan(number):
                    raise ValueError
            except ValueError:
                raise InputError(f"budget {name}={raw.strip()!r} is not a number; write e.g. {name}=100") from None
            # Checked here, on what the user typed, not in __post_init__: budgets stored by older
            # versions must still load.
            if math.isinf(number):
                raise InputError(
                    f"budget {name}={raw.strip()} is not a finite number; give e.g. {name}=100, or leave {name} out for no limit"
                )
            if name in _WHOLE_LIMITS and not number.is_integer():
                raise InputError(
                    f"budget {name}={raw.strip()} must be a whole number of {name}; give e.g. {name}={max(1, round(number))}"
                )
            values[name] = int(number) if name in _WHOLE_LIMITS else number
        return cls(**values)

    def describe(self) -> str:
        limits = self.limits()
        return ", ".join(f"{k}={format_amount(v)}" for k, v in limits.items()) if limits else "unlimited"
