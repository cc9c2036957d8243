"""Row <-> object conversion shared by the SQL stores (rows are positional, in the column orders below)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from budgetlab.core import Sample, SampleState, Spend
from budgetlab.core.run import RunInfo, RunSpec, RunState
from budgetlab.stores._schema import SAMPLE_RESULT_COLUMNS, VERDICT_COLUMNS

__all__ = ["RUN_COLUMNS", "SAMPLE_COLUMNS", "result_values", "run_info", "sample", "verdict_values"]

RUN_COLUMNS = (
    "spec", "state", "stopped_because", "created_at", "updated_at",
    "spent_samples", "spent_tokens", "spent_dollars", "spent_verify",
    "reserved_samples", "reserved_tokens", "reserved_dollars", "reserved_verify",
)  # fmt: skip
SAMPLE_COLUMNS = ("run", "problem", "config", "idx", "seed", "state", *SAMPLE_RESULT_COLUMNS)


def run_info(row: Sequence) -> RunInfo:
    """A :class:`RunInfo` from a row of :data:`RUN_COLUMNS`."""
    return RunInfo(
        spec=RunSpec.from_dict(json.loads(row[0])),
        state=RunState(row[1]),
        stopped_because=row[2],
        created_at=row[3],
        updated_at=row[4],
        spent=Spend(row[5], row[6], row[7], row[8]),
        reserved=Spend(row[9], row[10], row[11], row[12]),
    )


def sample(row: Sequence) -> Sample:
    """A :class:`Sample` from a row of :data:`SAMPLE_COLUMNS`."""
    return Sample(
        run=row[0],
        problem=row[1],
        config=row[2],
        index=row[3],
        seed=row[4],
        state=SampleState(row[5]),
        text=row[6],
        answer=row[7],
        correct=None if row[8] is None else bool(row[8]),
        score=row[9],
        prompt_tokens=row[10],
        completion_tokens=row[11],
        cost=row[12],
        latency=row[13],
        verify_seconds=row[14],
        logprob=row[15],
        error=row[16],
        details=json.loads(row[17]) if row[17] else {},
    )


def result_values(s: Sample) -> tuple:
    """The values of :data:`SAMPLE_RESULT_COLUMNS` for ``s``."""
    return (
        s.text,
        s.answer,
        None if s.correct is None else int(s.correct),
        s.score,
        s.prompt_tokens,
        s.completion_tokens,
        s.cost,
        s.latency,
        s.verify_seconds,
        s.logprob,
        s.error,
        json.dumps(dict(s.details), sort_keys=True, default=str) if s.details else None,
    )


def verdict_values(s: Sample) -> dict[str, object]:
    """The values of :data:`VERDICT_COLUMNS` for ``s``, by column name."""
    values = dict(zip(SAMPLE_RESULT_COLUMNS, result_values(s)))
    return {c: values[c] for c in VERDICT_COLUMNS}
