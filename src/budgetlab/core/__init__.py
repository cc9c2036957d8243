"""Core types shared by every layer: problems, configurations, samples, budgets."""

from budgetlab.core.budget import LIMIT_NAMES, Budget, Spend
from budgetlab.core.types import (
    Completion,
    Problem,
    Sample,
    SampleKey,
    SampleState,
    SamplingConfig,
    Verdict,
    content_id,
    derive_seed,
    with_distinct_names,
)

__all__ = [
    "LIMIT_NAMES",
    "Budget",
    "Completion",
    "Problem",
    "Sample",
    "SampleKey",
    "SampleState",
    "SamplingConfig",
    "Spend",
    "Verdict",
    "content_id",
    "derive_seed",
    "with_distinct_names",
]
