"""maj@k against brute-force enumeration of every k-subset, with the fractional tie rule."""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from collections.abc import Hashable, Sequence
from fractions import Fraction

import pytest

from budgetlab.analysis import maj_at_k, majority_answer


Answers = Sequence[Hashable | None]
Flags = Sequence[bool | None]


def group_weight(answers: Answers, correct: Flags, a: Hashable) -> Fraction:
    flags = [ok for ans, ok in zip(answers, correct) if ans == a and ok is not None]
    yes, no = flags.count(True), flags.count(False)
    if yes > no:
        return Fraction(1)
    return Fraction(1, 2) if yes == no > 0 else Fraction(0)


def brute_maj_at_k(answers: Answers, correct: Flags, k: int) -> Fraction:
    total, count = Fraction(0), 0
    for subset in itertools.combinations(range(len(answers)), k):
        count += 1
        votes = Counter(answers[i] for i in subset if answers[i] is not None)
        if not votes:
            continue
        top = max(votes.values())
        tied = [a for a, v in votes.items() if v == top]
        total += sum(group_weight(answers, correct, a) for a in tied) / len(tied)
    return total / count


def random_case(rng: random.Random) -> tuple[list[str | None], list[bool | None]]:
    n = rng.randint(1, 9)
    values: list[str | None] = ["a", "b", "c", "d"][: rng.randint(1, 4)] + [None]
    answers = [rng.choice(values) for _ in range(n)]
    truth = {v: rng.random() < 0.4 for v in values}
    correct: list[bool | None] = []
    for a in answers:
        roll = rng.random()
        # Mostly consistent judgements, some flipped or missing, so mixed groups occur.
        correct.append(None if roll < 0.1 else (not truth[a]) if roll < 0.25 else truth[a])
    return answers, correct


def test_matches_enumeration_on_random_small_cases() -> None:
    rng = random.Random(20240607)
    for _ in range(400):
        answers, correct = random_case(rng)
        for k in range(1, len(answers) + 1):
            want = brute_maj_at_k(answers, correct, k)
            got = maj_at_k(answers, correct, k)
            assert abs(got - float(want)) <= 1e-12, (answers, correct, k)
            assert got == float(want)  # one rounding of the exact rational


def test_all_none_and_single_sample() -> None:
    assert maj_at_k([None, None, None], [True, True, True], 2) == 0.0
    assert maj_at_k(["x"], [True], 1) == 1.0
    assert maj_at_k(["x"], [False], 1) == 0.0
    assert maj_at_k([None], [True], 1) == 0.0


def test_k_equals_n_is_the_full_vote_with_random_ties() -> None:
    answers = ["a", "b", "a", "b", "c", None]
    assert maj_at_k(answers, [True, False, True, False, False, True], 6) == 0.5
    assert maj_at_k(["a", "a", "b"], [True, True, False], 3) == 1.0
    assert maj_at_k(["a", "b", "c"], [True, False, False], 3) == pytest.approx(1 / 3, rel=1e-15)


def test_several_correct_answers_add_up() -> None:
    answers = ["1/2", "0.5", "1/3", "1/3"]
    correct = [True, True, False, False]
    # k = 4: "1/3" has 2 votes and wins outright; k = 2: enumerate by hand.
    assert maj_at_k(answers, correct, 4) == 0.0
    # pairs: {1/2,0.5}: 1, {1/2,1/3}x2: 1/2, {0.5,1/3}x2: 1/2, {1/3,1/3}: 0 -> 3/6
    assert maj_at_k(answers, correct, 2) == 0.5


def test_mixed_judgement_uses_the_group_majority() -> None:
    assert maj_at_k(["a", "a", "a"], [True, False, True], 3) == 1.0
    assert maj_at_k(["a", "a", "a"], [False, False, True], 3) == 0.0
    assert maj_at_k(["a", "a"], [True, False], 2) == 0.5  # even split scores 1/2
    assert maj_at_k(["a", "a"], [None, None], 2) == 0.0  # never judged: incorrect
    assert maj_at_k(["a", "a", "a"], [None, None, True], 1) == 1.0


def test_maj_at_1_is_the_share_of_correct_votes() -> None:
    answers = ["a", "b", None, "a", "c", "a"]
    correct = [True, False, True, True, False, True]
    assert maj_at_k(answers, correct, 1) == pytest.approx(3 / 6, rel=1e-15)


def test_errors() -> None:
    with pytest.raises(ValueError, match=r"k <= n samples, got k=4, n=3; draw more samples"):
        maj_at_k(["a", "b", "c"], [True, False, False], 4)
    with pytest.raises(ValueError, match=r"k >= 1, got k=0"):
        maj_at_k(["a"], [True], 0)
    with pytest.raises(ValueError, match="same length"):
        maj_at_k(["a", "b"], [True], 1)


def test_fast_for_n_40_k_40_with_ten_groups() -> None:
    rng = random.Random(7)
    answers = [rng.choice([*range(10), None]) for _ in range(40)]
    correct = [a is not None for a in answers]  # every group scores: the slowest case
    for k in (20, 40):
        start = time.perf_counter()
        maj_at_k(answers, correct, k)
        assert time.perf_counter() - start < 0.05


def test_majority_answer_tie_goes_to_first_to_reach_the_top() -> None:
    assert majority_answer(["a", "b", "b", "a"]) == "b"  # b reached 2 first
    assert majority_answer(["a", "b", "a", "b"]) == "a"
    assert majority_answer([None, "x", None]) == "x"
    assert majority_answer([None, None]) is None
    assert majority_answer([]) is None
    assert majority_answer(["a", "b", "b", "a", "a"]) == "a"


def test_a_nan_flag_is_refused_not_counted_as_correct() -> None:
    # pandas marks a missing verdict NaN, which is truthy: it used to count as correct (1.0).
    nan = float("nan")
    with pytest.raises(ValueError, match=r"correct\[1\] must be True, False or None \(unjudged\), got nan"):
        maj_at_k(["a", "b"], [True, nan], 1)
    # Swapped or mis-paired inputs (answers where the flags go) are refused too.
    with pytest.raises(ValueError, match=r"correct\[0\] must be True, False or None"):
        maj_at_k(["a"], ["b"], 1)


def test_zero_one_and_numpy_flags_are_verdicts() -> None:
    np = pytest.importorskip("numpy")
    assert maj_at_k(["a", "b"], [1, 0], 1) == 0.5
    assert maj_at_k(["a", "b"], np.array([True, False]), 1) == 0.5
    assert maj_at_k(["a", "b"], [1.0, None], 1) == 0.5  # b is unjudged: counts as incorrect
