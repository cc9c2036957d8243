"""A stopping rule at a price: the cost of one more sample, in accuracy, is the pacer's price
times what a sample spends."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from budgetlab.errors import InputError

__all__ = ["priced"]

# Costs are rounded to a log grid of this many steps a decade, so that the stop tables of nearby
# prices are computed once and reused (policies cache a table per cost).
_STEPS_PER_DECADE = 40
_MAX_COST = 0.99  # a sample that must buy more accuracy than this is never worth drawing


def priced(stopping: Any, price: float, per_sample: float = 1.0) -> Any:
    """``stopping`` with ``cost = price * per_sample`` (a :class:`budgetlab.policies.BayesStopping`
    or any frozen dataclass stopping rule with a ``cost`` in accuracy per sample)."""
    if not dataclasses.is_dataclass(stopping) or "cost" not in {f.name for f in dataclasses.fields(stopping)}:
        raise InputError(
            f"pacing needs a stopping rule that weighs accuracy against a cost per sample, got {type(stopping).__name__}; "
            "use budgetlab.policies.BayesStopping (fit one with fit_bayes_stopping)"
        )
    cost = price * per_sample
    if cost > 0:
        cost = 10 ** (round(_STEPS_PER_DECADE * math.log10(cost)) / _STEPS_PER_DECADE)
    return dataclasses.replace(stopping, cost=min(max(cost, 0.0), _MAX_COST))
