"""Core types shared by every layer: problems, configurations, samples, budgets."""

from budgetlab.core.budget import LIMIT_NAMES, Budget, Spend
from budgetlab.core.types import (
    BILLED_ESTIMATE,
    JUDGED_BY,
    Completion,
    Problem,
    Sample,
    SampleKey,
    SampleState,
    SamplingConfig,
    Verdict,
    content_id,
    derive_seed,
    drawn_again,
    with_distinct_names,
)

__all__ = [
    "BILLED_ESTIMATE",
    "JUDGED_BY",
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
    "drawn_again",
    "with_distinct_names",
]
