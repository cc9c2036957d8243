"""Bugs found by acceptance testing of the verifiers: numbers too large for a float (or to
print) crashed a run, algebra read as a number with a unit, scientific notation, System V
shared memory outliving a program at the ``uid`` level, and a duplicate sample charged the
verification seconds of the one it waited for."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path

import pytest

from budgetlab.core import Completion, Problem
from budgetlab.verifiers import answers_match, make_verifier, math_equal, vote_form


# ---- numbers a model may write ---------------------------------------------------------------------
@pytest.mark.parametrize("text", ["The answer is 1e5000", "The answer is 1.5e99999", "The answer is 1e999999999",
                                  "The answer is 1e400", "The answer is " + "9" * 400 + ".5",
                                  "\\boxed{\\frac{" + "9" * 5000 + "}{1}}"])
def test_huge_numbers_are_judged_not_raised(text: str) -> None:
    pytest.importorskip("math_verify")
    math = make_verifier("math")
    started = time.monotonic()
    for reference in ("5", "2.5"):
        verdict = math.verify(Problem("p", reference=reference), Completion(text=text))
        assert verdict.correct is False
    assert time.monotonic() - started < 5  # 1e999999999 is not expanded to a billion digits


def test_exact_and_votes_on_huge_numbers() -> None:
    long = "9" * 400 + ".5"
    assert answers_match(long, "2.5") is False
    assert answers_match(long, long) is True
    assert make_verifier("exact").verify(Problem("p", reference="2.5"), Completion(text=f"The answer is {long}")).correct is False
    assert vote_form("1" * 4000 + "." + "1" * 4000)  # no ValueError


def test_a_glued_letter_is_algebra_not_a_unit() -> None:
    pytest.importorskip("math_verify")
    assert math_equal("3x", "3y")[0] is False
    assert math_equal("5i", "5")[0] is False
    assert math_equal("2x^2", "2")[0] is False
    for with_unit in ("18 cm", "18cm", "18 m", "18 cm^2", "18\\text{ cm}^2", "18 square meters", "18^\\circ"):
        assert math_equal(with_unit, "18") == (True, "numeric"), with_unit


@pytest.mark.parametrize("answer", ["6.02 \\times 10^{23}", "6.02\\times10^{23}", "6.02 \\cdot 10^{23}", "6.02E23"])
def test_scientific_notation(answer: str) -> None:
    pytest.importorskip("math_verify")
    assert math_equal(answer, "6.02e23") == (True, "numeric")
    assert math_equal(answer, "6.02 \\times 10^{23}")[0] is True
    assert math_equal(answer, "6.03 \\times 10^{23}")[0] is False


@pytest.mark.parametrize("latex,value", [("\\frac{3}{-4}", "-0.75"), ("-\\frac{3}{-4}", "0.75"), ("-\\frac{3}{4}", "-0.75"),
                                         ("\\frac{-3}{4}", "-0.75"), ("-\\frac34", "-0.75")])
def test_signs_of_fractions(latex: str, value: str) -> None:
    pytest.importorskip("math_verify")
    verdict = make_verifier("math").verify(Problem("p", reference=value), Completion(text=f"\\boxed{{{latex}}}"))
    assert verdict.correct is True and verdict.answer == value


# ---- the code sandbox -------------------------------------------------------------------------------
def _linux_with(level: str) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    from budgetlab.verifiers import available_isolation

    return level in available_isolation()


SHARED_MEMORY = """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
for _ in range(2):
    assert libc.shmget(0, 1 << 20, 0o1000 | 0o600) >= 0, ctypes.get_errno()
"""


@pytest.mark.skipif(not _linux_with("uid"), reason="needs the uid isolation level (root without namespaces)")
def test_system_v_shared_memory_does_not_outlive_the_program() -> None:
    from budgetlab.verifiers._code._sandbox import sandbox_uid

    def segments() -> list[str]:
        mine = range(sandbox_uid(0), sandbox_uid(0) + 64)
        rows = Path("/proc/sysvipc/shm").read_text().splitlines()
        head = rows[0].split()
        return [r for r in rows[1:] if int(r.split()[head.index("cuid")]) in mine]

    verifier = make_verifier("code", {"isolation": "uid", "timeout": 5})
    verdict = verifier.verify(Problem("p", prompt="", metadata={"test": "pass\n"}), Completion(text=SHARED_MEMORY))
    assert verdict.correct is True, verdict
    assert segments() == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the code sandbox needs Linux")
def test_a_duplicate_in_flight_costs_only_the_lookup() -> None:
    verifier = make_verifier("code", {"timeout": 5, "workers": 2})
    problem = Problem("p", prompt="", metadata={"test": "pass\n"})
    slow = Completion(text="import time\ntime.sleep(1)\n")

    async def both():
        return await asyncio.gather(verifier.averify(problem, slow), verifier.averify(problem, slow))

    first, second = asyncio.run(both())
    assert first.correct and second.correct
    assert first.seconds >= 1.0
    assert second.details["cached"] is True and second.seconds < 0.5, second
    assert os.getpid() > 0


def test_a_function_named_check_is_tested_not_replaced_by_the_tests_own_check() -> None:
    """MBPP has a problem whose function is named check: the test's def check(candidate) used to
    replace it, and check(check) recursed until RecursionError."""
    from budgetlab.core import Problem
    from budgetlab.verifiers._code._program import build_program

    problem = Problem(id="m56", prompt="", metadata={
        "entry_point": "check",
        "test": "def check(candidate):\n    assert candidate(3) == 4\n",
    })  # fmt: skip
    program = build_program(problem, "def check(n):\n    return n + 1\n")
    namespace: dict = {}
    exec(compile(program.source, "<program>", "exec"), namespace)  # passes: no RecursionError, no AssertionError
    wrong = build_program(problem, "def check(n):\n    return n\n")
    with pytest.raises(AssertionError):
        exec(compile(wrong.source, "<program>", "exec"), {})
