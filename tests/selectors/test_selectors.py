"""Each selector on hand-made samples, plus the contract every selector keeps.

To add a selector to the contract suite, add one entry to ``SELECTORS``.
"""

from __future__ import annotations

import math

import pytest

from budgetlab.core import Sample, SampleState
from budgetlab.errors import InputError
from budgetlab.selectors import SELECTORS as REGISTRY
from budgetlab.selectors import BestOfN, FirstVerified, MajorityVote, Selection, Selector, WeightedVote, make_selector

SELECTORS = [
    pytest.param("majority", {}, id="majority"),
    pytest.param("weighted", {"source": "score"}, id="weighted-score"),
    pytest.param("weighted", {"source": "logprob", "calibrator": {"kind": "platt", "a": 4.0, "b": -2.0}}, id="weighted-logprob-platt"),
    pytest.param("best_of_n", {}, id="best-of-n"),
    pytest.param("first_verified", {}, id="first-verified"),
]


def smp(i: int, answer, correct=None, score=None, logprob=None, tokens=0, state=SampleState.DONE) -> Sample:
    return Sample("r", "p", "c", i, 0, state=state, answer=answer, correct=correct, score=score,
                  logprob=logprob, completion_tokens=tokens)  # fmt: skip


def test_every_registered_selector_is_in_the_suite() -> None:
    assert set(REGISTRY) == {p.values[0] for p in SELECTORS}


@pytest.mark.parametrize("name,args", SELECTORS)
def test_contract(name: str, args: dict) -> None:
    selector = make_selector(name, args)
    assert isinstance(selector, Selector) and selector.name == name
    assert selector.select([]) == Selection(None, None, None)
    # Only done samples count: pending, running and failed ones never win.
    ghosts = [smp(0, "x", True, 0.99, -0.01, 1, state=s) for s in (SampleState.PENDING, SampleState.RUNNING, SampleState.FAILED)]
    assert selector.select(ghosts).answer is None
    real = [smp(0, "7", True, 0.9, -0.1, 2), smp(1, "7", True, 0.8, -0.2, 2), smp(2, "8", False, 0.1, -3.0, 2)]
    chosen = selector.select(ghosts + real)
    assert chosen.answer == "7" and chosen.correct is True
    assert chosen.confidence is None or 0.0 <= chosen.confidence <= 1.0
    assert selector.select(list(reversed(ghosts + real))) == selector.select(list(reversed(ghosts + real)))  # deterministic


def test_majority_breaks_ties_by_first_to_reach_the_top_count() -> None:
    samples = [smp(0, "a"), smp(1, "b"), smp(2, "b"), smp(3, "a"), smp(4, None), smp(5, None)]
    chosen = MajorityVote().select(samples)
    assert chosen.answer == "b"  # b reached 2 votes first
    assert chosen.confidence == pytest.approx(0.5)  # None casts no vote
    assert MajorityVote().select([smp(0, None)]) == Selection(None, None, None)


def test_majority_correctness_is_the_groups_majority_verdict() -> None:
    assert MajorityVote().select([smp(0, "a", True), smp(1, "a", False), smp(2, "a", True)]).correct is True
    assert MajorityVote().select([smp(0, "a", True), smp(1, "a", False)]).correct is None  # even split
    assert MajorityVote().select([smp(0, "a"), smp(1, "a")]).correct is None  # unjudged


def test_weighted_vote_follows_confidence_not_counts() -> None:
    samples = [smp(0, "a", False, 0.2), smp(1, "a", False, 0.2), smp(2, "b", True, 0.9)]
    chosen = WeightedVote(source="score").select(samples)
    assert (chosen.answer, chosen.correct) == ("b", True)
    assert chosen.confidence == pytest.approx(0.9 / 1.3)
    assert MajorityVote().select(samples).answer == "a"


def test_weighted_vote_from_mean_token_logprob_and_calibrator() -> None:
    # exp(mean token logprob): a is 2 samples of exp(-2) = 0.135 each, b one of exp(-0.1) = 0.905.
    samples = [smp(0, "a", logprob=-2.0, tokens=10), smp(1, "a", logprob=-2.0, tokens=10), smp(2, "b", logprob=-0.1, tokens=10)]
    assert WeightedVote(source="logprob").select(samples).answer == "b"
    # A calibrator that maps every confidence to the same probability turns it into a plain vote.
    flat = {"kind": "isotonic", "x": [0.0, 1.0], "y": [0.5, 0.5]}
    assert WeightedVote(source="logprob", calibrator=flat).select(samples).answer == "a"


def test_weighted_vote_without_confidences_is_a_majority_vote() -> None:
    samples = [smp(0, "a"), smp(1, "b"), smp(2, "b")]
    assert WeightedVote().select(samples) == MajorityVote().select(samples)


def test_weighted_vote_skips_samples_without_confidence() -> None:
    samples = [smp(0, "a"), smp(1, "a"), smp(2, "b", score=0.3)]
    assert WeightedVote(source="score").select(samples).answer == "b"


def test_weighted_vote_of_logits_on_the_exp_scale_and_a_clear_error_on_the_linear_one() -> None:
    # Reward-model logits, all negative: clipped to 0 they would elect nothing (or anything).
    samples = [smp(0, "a", False, -3.0), smp(1, "a", False, -3.0), smp(2, "b", True, -0.5)]
    chosen = WeightedVote(source="score", scale="exp").select(samples)
    shares = [math.exp(-3.0), math.exp(-3.0), math.exp(-0.5)]
    assert (chosen.answer, chosen.correct) == ("b", True)
    assert chosen.confidence == pytest.approx(shares[2] / sum(shares))
    with pytest.raises(InputError, match=r"confidence is -3, below 0.*weighted:scale=exp"):
        WeightedVote(source="score").select(samples)
    with pytest.raises(InputError, match="scale must be one of linear, exp"):
        make_selector("weighted:scale=log")


def test_weighted_vote_with_every_weight_zero_counts_votes() -> None:
    samples = [smp(0, "a", score=0.0), smp(1, "b", score=0.0), smp(2, "b", score=0.0)]
    assert WeightedVote(source="score").select(samples).answer == "b"


def test_best_of_n_takes_the_top_score_and_that_samples_verdict() -> None:
    samples = [smp(0, "a", True, 0.4), smp(1, "b", False, 0.95), smp(2, "b", True, 0.95), smp(3, "c", True, None)]
    chosen = BestOfN().select(samples)
    assert (chosen.answer, chosen.correct, chosen.confidence) == ("b", False, 0.95)  # first of the tied top
    calibrated = BestOfN(calibrator={"kind": "platt", "a": 0.0, "b": 0.0}).select(samples)
    assert calibrated.confidence == pytest.approx(0.5)
    assert BestOfN().select([smp(0, "a", True)]) == Selection(None, None, None)  # nothing scored


def test_first_verified_and_its_fallback() -> None:
    samples = [smp(0, "a", False), smp(1, "b", True), smp(2, "c", True)]
    assert FirstVerified().select(samples) == Selection("b", True, 1.0)
    fallback = FirstVerified().select([smp(0, "a", False), smp(1, "a", False), smp(2, "b", None)])
    assert (fallback.answer, fallback.correct, fallback.confidence) == ("a", False, 0.0)


def test_make_selector_errors() -> None:
    with pytest.raises(InputError, match=r"unknown selector 'vote'; use one of: .*majority"):
        make_selector("vote")
    with pytest.raises(InputError, match=r"selector majority does not take 'k'"):
        make_selector("majority", {"k": 3})
    with pytest.raises(InputError, match=r"source must be one of auto, score, logprob, got source='tokens'"):
        make_selector("weighted", {"source": "tokens"})
    with pytest.raises(InputError, match=r"bad calibrator: unknown calibrator kind 'spline'"):
        make_selector("best_of_n", {"calibrator": {"kind": "spline"}})
    assert math.isclose(make_selector("weighted").select([smp(0, "a", score=0.5)]).confidence, 1.0)
