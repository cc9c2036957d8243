"""Checks of the arguments an algorithm is named with (``--algorithm ucbe:a=1,batch=4``): the
spec parser hands over whatever the user wrote (``a=abc`` arrives as the text ``'abc'``), so
each argument's type is checked here, once for every algorithm, with a one-line error."""

from __future__ import annotations

import math
from typing import Any

from budgetlab.errors import InputError

__all__ = ["check_count", "check_positive"]


def check_count(value: Any, name: str, meaning: str, example: str) -> None:
    """``value`` must be a whole number >= 1 (``meaning`` says what it counts)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"{name} must be a whole number >= 1 ({meaning}), got {name}={value!r}; e.g. {example}")


def check_positive(value: Any, name: str, meaning: str, example: str) -> None:
    """``value`` must be a finite number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (0 < value < math.inf):
        raise InputError(f"{name} must be finite and {name} > 0 ({meaning}), got {name}={value!r}; e.g. {example}")
