"""The report's note on spend that is an estimate for requests that timed out after being sent
(the openai backend's ``billed_estimate`` detail)."""

from __future__ import annotations

import pytest

from budgetlab.analysis._timeouts import timed_out_note, timed_out_spend
from budgetlab.core import Sample, SampleState, Spend


def _sample(index: int, state: SampleState, tokens: int, cost: float, estimate: dict | None) -> Sample:
    details = {"billed_estimate": estimate} if estimate is not None else {}
    return Sample("r", "p", "c", index, index, state=state, prompt_tokens=tokens, cost=cost, details=details)


def test_only_the_estimated_part_of_the_spend_is_named() -> None:
    samples = [
        _sample(0, SampleState.DONE, 120, 0.5, None),  # answered at once: all of it billed for sure
        _sample(1, SampleState.DONE, 300, 0.9, {"timed_out_attempts": 1, "prompt_tokens": 100, "completion_tokens": 80,
                                               "cost": 0.4}),  # fmt: skip
        _sample(2, SampleState.FAILED, 360, 0.8, {"timed_out_attempts": 2, "prompt_tokens": 200, "completion_tokens": 160,
                                                 "cost": 0.8}),  # fmt: skip
    ]
    counted = timed_out_spend(samples)
    assert counted == {"samples": 2, "failed": 1, "tokens": 540, "dollars": pytest.approx(1.2)}
    spent = Spend(samples=2, tokens=780, dollars=2.2).to_dict()
    assert timed_out_note({"spent": spent, "timed_out": counted}) == (
        "of the $2.2000 spent, up to $1.2000 is an estimate for 2 samples whose requests timed out after they were "
        "sent, which the provider may have billed"
    )


def test_an_unpriced_model_names_the_tokens_and_a_run_without_timeouts_says_nothing() -> None:
    samples = [_sample(0, SampleState.FAILED, 1500, 0.0, {"timed_out_attempts": 3, "prompt_tokens": 1500,
                                                          "completion_tokens": 0, "cost": 0.0})]  # fmt: skip
    counted = timed_out_spend(samples)
    note = timed_out_note({"spent": Spend(tokens=2000).to_dict(), "timed_out": counted})
    assert note == ("of the 2,000 tokens spent, up to 1,500 is an estimate for 1 sample whose request timed out after "
                    "they were sent, which the provider may have billed")
    assert timed_out_spend([_sample(0, SampleState.DONE, 10, 0.1, None)]) is None
    assert timed_out_note({"spent": Spend().to_dict(), "timed_out": None}) is None
    assert timed_out_note({"spent": Spend().to_dict()}) is None  # a report built before the note existed
