"""Spend that is an estimate: requests that timed out after they were sent, which a hosted API
may have run to the end and billed. The openai backend counts each such attempt at its upper
bound and says so in the sample's details (``billed_estimate``, with ``bill_timeouts``); this
sums them for the report, so that the spend shown says how much of it is a guess."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from budgetlab.core import BILLED_ESTIMATE, Sample, SampleState

__all__ = ["timed_out_note", "timed_out_spend"]


def timed_out_spend(samples: Iterable[Sample]) -> dict[str, Any] | None:
    """What of ``samples``' spend is an estimate for timed-out attempts: the samples that carry one
    (``samples``; ``failed``: those of them that failed), and the ``tokens`` and ``dollars``
    counted for those attempts. ``None`` when no sample carries one."""
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
    if not count:
        return None
    return {"samples": count, "failed": failed, "tokens": tokens, "dollars": dollars}


def timed_out_note(report: Mapping[str, Any]) -> str | None:
    """One line for a report (the dict of :func:`~budgetlab.analysis.build_report` with its
    ``timed_out`` entry from :func:`timed_out_spend`): how much of the spend is an estimate for
    timed-out requests; ``None`` when none is."""
    counted = report.get("timed_out")
    if not counted:
        return None
    spent = report.get("spent") or {}
    one = counted["samples"] == 1
    whose = f"{counted['samples']:,} sample{'' if one else 's'} whose request{'' if one else 's'} timed out"
    if counted["dollars"] > 0:
        amount = f"of the ${spent.get('dollars', 0.0):.4f} spent, up to ${counted['dollars']:.4f}"
    else:  # an unpriced model: its tokens still count
        amount = f"of the {spent.get('tokens', 0):,} tokens spent, up to {counted['tokens']:,}"
    return f"{amount} is an estimate for {whose} after they were sent, which the provider may have billed"
