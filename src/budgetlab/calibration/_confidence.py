"""The raw confidence of one sample, read from what the backend and verifier recorded."""

from __future__ import annotations

import math

from budgetlab.core import Sample
from budgetlab.errors import InvalidArgument

__all__ = ["CONFIDENCE_SOURCES", "sample_confidence"]

CONFIDENCE_SOURCES = ("auto", "score", "logprob")


def sample_confidence(sample: Sample, source: str = "auto") -> float | None:
    """``score``: the sample's score (a self-certainty or verifier score), as recorded.
    ``logprob``: the geometric-mean token probability ``exp(logprob)`` (backends record
    ``Sample.logprob`` as the mean log-probability of the generated tokens). ``auto``: the score
    when there is one, else the log-probability. ``None`` when the sample carries neither (a NaN
    counts as none)."""
    if source not in CONFIDENCE_SOURCES:
        raise InvalidArgument(f"unknown confidence source {source!r}; use one of: {', '.join(CONFIDENCE_SOURCES)}")
    # A NaN is no confidence: min(0.0, nan) is 0.0, which read a NaN log-probability as certainty.
    if source in ("auto", "score") and sample.score is not None and not math.isnan(sample.score):
        return float(sample.score)
    if source in ("auto", "logprob") and sample.logprob is not None and not math.isnan(sample.logprob):
        return math.exp(min(0.0, float(sample.logprob)))
    return None
