"""Spend that is an estimate: requests that timed out after they were sent, which a hosted API
may have run to the end and billed. The openai backend counts each such attempt at its upper
bound and says so in the sample's details (``billed_estimate``, with ``bill_timeouts``); this
sums them for the report, so that the spend shown says how much of it is a guess."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from budgetlab.core import BILLED_ESTIMATE, Sample, SampleState, Spend

__all__ = ["timed_out_note", "timed_out_spend"]


def timed_out_spend(samples: Iterable[Sample], spent: Spend | None = None) -> dict[str, Any] | None:
    """What of ``samples``' spend is an estimate for timed-out attempts: the samples that carry one
    (``samples``; ``failed``: those of them that failed), and the ``tokens`` and ``dollars``
    counted for those attempts. ``None`` when no sample carries one.

    With ``spent``, the run's spend (``samples`` then being its settled ones): a failure whose
    whole spend was such an estimate is drawn again by the next invocation, which clears the
    sample but keeps the estimate in the run's spend (the one spend a store holds beyond its
    samples'). That part is counted too, and also given as ``earlier`` (``tokens``, ``dollars``)."""
    samples = list(samples)
    earlier = _beyond_samples(samples, spent) if spent is not None else None
    count = failed = tokens = 0
    dollars = 0.0
    for s in samples:
        counted = s.details.get(BILLED_ESTIMATE) if s.details else None
        if not isinstance(counted, Mapping):
            continue
        count += 1
        failed += s.state is SampleState.FAILED
        tokens += int(counted.get("prompt_tokens", 0)) + int(counted.get("completion_tokens", 0))
        dollars += float(counted.get("cost", 0.0))
    if not count and earlier is None:
        return None
    if earlier is not None:
        return {"samples": count, "failed": failed, "tokens": tokens + earlier["tokens"],
                "dollars": dollars + earlier["dollars"], "earlier": earlier}  # fmt: skip
    return {"samples": count, "failed": failed, "tokens": tokens, "dollars": dollars}


def _beyond_samples(samples: list[Sample], spent: Spend) -> dict[str, Any] | None:
    """The tokens and dollars ``spent`` holds beyond ``samples``' own (``None`` when none: float
    sums of dollars drift by a few ulps)."""
    own = sum((s.spend for s in samples), Spend())
    tokens, dollars = spent.tokens - own.tokens, spent.dollars - own.dollars
    if tokens <= 0 and dollars <= 1e-9 * max(1.0, spent.dollars):
        return None
    return {"tokens": max(tokens, 0), "dollars": max(dollars, 0.0)}


def timed_out_note(report: Mapping[str, Any]) -> str | None:
    """One line for a report (the dict of :func:`~budgetlab.analysis.build_report` with its
    ``timed_out`` entry from :func:`timed_out_spend`): how much of the spend is an estimate for
    timed-out requests; ``None`` when none is."""
    counted = report.get("timed_out")
    if not counted:
        return None
    spent = report.get("spent") or {}
    plural = "" if counted["samples"] == 1 else "s"
    whose = f"{counted['samples']:,} sample{plural} whose request{plural} timed out after they were sent"
    if counted.get("earlier"):  # their samples were drawn again: only the run's spend still holds it
        drawn = "the timed-out attempts of samples drawn again since"
        whose = f"{whose} and for {drawn}" if counted["samples"] else drawn
    if counted["dollars"] > 0:
        amount = f"of the ${spent.get('dollars', 0.0):.4f} spent, up to ${counted['dollars']:.4f}"
    else:  # an unpriced model: its tokens still count
        amount = f"of the {spent.get('tokens', 0):,} tokens spent, up to {counted['tokens']:,}"
    return f"{amount} is an estimate for {whose}, which the provider may have billed"
