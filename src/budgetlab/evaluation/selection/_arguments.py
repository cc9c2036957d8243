"""Checks of the arguments an algorithm is named with (``--algorithm ucbe:a=1,batch=4``): the
spec parser hands over whatever the user wrote (``a=abc`` arrives as the text ``'abc'``), so
each argument's type is checked here, once for every algorithm, with a one-line error."""

from __future__ import annotations

import math
import numbers
from typing import Any

from budgetlab.errors import InvalidArgument

__all__ = ["check_count", "check_positive", "is_whole"]


def is_whole(value: Any) -> bool:
    """An integer, numpy's included (``np.int64(4)`` from arithmetic on arrays is as whole as
    ``4``, and isinstance(x, int) refuses it); never a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_count(value: Any, name: str, meaning: str, example: str) -> None:
    """``value`` must be a whole number >= 1 (``meaning`` says what it counts)."""
    if not is_whole(value) or value < 1:
        raise InvalidArgument(f"{name} must be a whole number >= 1 ({meaning}), got {name}={value!r}; e.g. {example}")


def check_positive(value: Any, name: str, meaning: str, example: str) -> None:
    """``value`` must be a finite number > 0."""
    # numbers.Real takes numpy's floats and ints (np.float32(0.5)), which are as good as float.
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (0 < value < math.inf):
        raise InvalidArgument(f"{name} must be finite and {name} > 0 ({meaning}), got {name}={value!r}; e.g. {example}")
