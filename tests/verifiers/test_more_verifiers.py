"""The regex, callable and judge verifiers, ``auto``'s dispatch on ``metadata["verifier"]``, and
the registry: every verifier through one list."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

import pytest

from budgetlab.core import Completion, Problem, Verdict
from budgetlab.errors import BudgetlabError, InputError
from budgetlab.testing import FaultyServer
from budgetlab.verifiers import (
    VERIFIERS,
    AutoVerifier,
    CallableVerifier,
    JudgeVerifier,
    RegexVerifier,
    Verifier,
    make_verifier,
    parse_grade,
)

Q = Problem("q", prompt="What is 6 * 7?", reference="42")


# ---- registry ------------------------------------------------------------------------------------------
def _checks_module(tmp_path: Path) -> str:
    module = tmp_path / "my_checks.py"
    module.write_text(
        textwrap.dedent(
            """
            from budgetlab.core import Verdict

            def is_42(problem, completion):
                return "42" in (completion.text or "")

            def score(problem, completion):
                return len(completion.text or "") / 10

            def pair(problem, completion):
                return (completion.text, completion.text == problem.reference)

            def verdict(problem, completion):
                return Verdict(answer="v", correct=True, score=0.5)

            async def later(problem, completion):
                return completion.text == "yes"

            def broken(problem, completion):
                raise ZeroDivisionError("oops")

            def weird(problem, completion):
                return {"no": "thanks"}

            NOT_A_FUNCTION = 3
            """
        )
    )
    return str(module)


# Every verifier in the registry, built from a spec: a new one is tested by adding one line.
SPECS = {
    "auto": "auto",
    "exact": "exact:rel_tol=0.01",
    "recorded": "recorded",
    "math": "math:extract=boxed+last_number",
    "code": "code:timeout=5",
    "regex": r"regex:pattern=answer: (\d+)",
    "callable": "callable:path={checks}:is_42",
    "judge": "judge:backend=openai:http://127.0.0.1:9/v1,model=grader",
}


def test_every_registered_verifier_has_a_spec_here() -> None:
    assert set(SPECS) == set(VERIFIERS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_every_verifier_builds_from_its_spec(name: str, tmp_path: Path) -> None:
    if name == "math":
        pytest.importorskip("math_verify")
    if name == "judge":
        pytest.importorskip("httpx")
    verifier = make_verifier(SPECS[name].format(checks=_checks_module(tmp_path)))
    assert isinstance(verifier, Verifier)
    assert verifier.name == name and verifier.max_seconds >= 0


def test_registry_errors() -> None:
    with pytest.raises(InputError, match=r"verifier regex needs pattern=\.\.\.; e\.g\. --verifier 'regex:pattern="):
        make_verifier("regex")
    with pytest.raises(InputError, match=r"verifier code does not take 'colour'; it takes: timeout, memory_mb"):
        make_verifier("code:colour=red")
    with pytest.raises(InputError, match=r"unknown verifier 'nope'; use one of: auto, callable, code, exact, judge"):
        make_verifier("nope:x=1")


# ---- regex ---------------------------------------------------------------------------------------------
def test_regex_with_a_group_compares_with_the_reference() -> None:
    v = RegexVerifier(r"answer: (\d+)")
    assert v.verify(Q, Completion(text="answer: 41\nanswer: 42")) == Verdict("42", True)
    assert v.verify(Q, Completion(text="answer: 41")) == Verdict("41", False)
    assert v.verify(Q, Completion(text="no match")) == Verdict(None, False)
    assert v.verify(Problem("q"), Completion(text="answer: 7")) == Verdict("7", None)
    assert RegexVerifier(r"ANSWER: (\d+)", flags="i").verify(Q, Completion(text="answer: 42")).correct is True


def test_regex_without_a_group_must_match_the_whole_completion() -> None:
    v = RegexVerifier(r"[A-Z][a-z]+ [A-Z][a-z]+")
    assert v.verify(Q, Completion(text="  Ada Lovelace \n")).correct is True
    assert v.verify(Q, Completion(text="Ada Lovelace was here")).correct is False


def test_regex_errors() -> None:
    with pytest.raises(InputError, match=r"is not a valid regular expression"):
        RegexVerifier("(unclosed")
    with pytest.raises(InputError, match=r"unknown flags \['q'\]"):
        RegexVerifier("x", flags="q")


# ---- callable ------------------------------------------------------------------------------------------
def test_callable_reads_what_the_function_returns(tmp_path: Path) -> None:
    checks = _checks_module(tmp_path)
    assert CallableVerifier(f"{checks}:is_42").verify(Q, Completion(text="it is 42")) == Verdict(correct=True)
    scored = CallableVerifier(f"{checks}:score", threshold=0.5)
    assert scored.verify(Q, Completion(text="123456")) == Verdict(correct=True, score=0.6)
    assert CallableVerifier(f"{checks}:score").verify(Q, Completion(text="1")).correct is None
    assert CallableVerifier(f"{checks}:pair").verify(Q, Completion(text="42")) == Verdict("42", True)
    assert CallableVerifier(f"{checks}:verdict").verify(Q, Completion(text="")) == Verdict("v", True, 0.5)
    later = CallableVerifier(f"{checks}:later")
    assert later.verify(Q, Completion(text="yes")).correct is True
    assert asyncio.run(later.averify(Q, Completion(text="no"))).correct is False


def test_callable_by_module_path(tmp_path: Path, monkeypatch) -> None:
    _checks_module(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    assert make_verifier("callable:path=my_checks:is_42").verify(Q, Completion(text="42")).correct is True
    assert make_verifier("callable:path=my_checks.is_42").verify(Q, Completion(text="41")).correct is False


def test_callable_errors(tmp_path: Path) -> None:
    checks = _checks_module(tmp_path)
    with pytest.raises(InputError, match=r"cannot import 'no_such_module_xyz'.*PYTHONPATH"):
        CallableVerifier("no_such_module_xyz:f")
    with pytest.raises(InputError, match=r"has no function 'NOT_A_FUNCTION'"):
        CallableVerifier(f"{checks}:NOT_A_FUNCTION")
    with pytest.raises(InputError, match=r"names no function"):
        CallableVerifier("justaname")
    with pytest.raises(BudgetlabError, match=r"my_checks.py:broken raised ZeroDivisionError: oops on problem 'q'; fix"):
        CallableVerifier(f"{checks}:broken").verify(Q, Completion(text=""))
    with pytest.raises(BudgetlabError, match=r"returned dict for problem 'q'; return a Verdict"):
        CallableVerifier(f"{checks}:weird").verify(Q, Completion(text=""))


# ---- judge ---------------------------------------------------------------------------------------------
def _grader(prompt: str, seed: int) -> str:
    submitted = prompt.split("[Submission]")[1].split("Reason briefly")[0]
    if "no grade" in submitted:
        return "I cannot decide."
    return "It matches the reference. GRADE: C" if "42" in submitted else "It does not. GRADE: I"


@pytest.mark.parametrize("text,grade", [("GRADE: C", True), ("grade: i", False), ("GRADE: **C**", True),
                                        ("GRADE: C ... no wait GRADE: I", False), ("looks fine", None)])
def test_parse_grade(text: str, grade) -> None:
    assert parse_grade(text) is grade


def test_judge_grades_and_returns_its_cost() -> None:
    pytest.importorskip("httpx")
    with FaultyServer(models=["grader"], answer=_grader) as server:
        judge = make_verifier(f"judge:backend=openai:{server.url},model=grader,price_in=1e6,price_out=2e6")
        assert isinstance(judge, JudgeVerifier)
        good = judge.verify(Q, Completion(text="6 * 7 = 42"))
        assert good.correct is True and good.answer == "judge: correct"
        assert good.prompt_tokens > 0 and good.completion_tokens > 0
        assert good.cost == pytest.approx(good.prompt_tokens * 1.0 + good.completion_tokens * 2.0)
        bad = asyncio.run(judge.averify(Q, Completion(text="6 * 7 = 41")))
        assert bad.correct is False and bad.cost > 0
        unsure = judge.verify(Q, Completion(text="no grade"))
        assert unsure.correct is None and unsure.answer == "judge: no grade"
        sent = server.requests[-1].body["messages"][0]["content"]
        assert "What is 6 * 7?" in sent and "[Reference answer]\n42" in sent


def test_judge_failure_is_an_unknown_verdict() -> None:
    pytest.importorskip("httpx")
    with FaultyServer(models=["grader"], answer=_grader) as server:
        judge = JudgeVerifier(f"openai:{server.url}", "fault/400")  # a request the server refuses
        failed = judge.verify(Q, Completion(text="42"))
        assert failed.correct is None and failed.answer.startswith("judge failed:")


def test_judge_template_errors() -> None:
    pytest.importorskip("httpx")
    with pytest.raises(InputError, match=r"judge template must contain \{answer\}"):
        JudgeVerifier("openai:http://127.0.0.1:9/v1", "m", template="Grade this.")
    with pytest.raises(InputError, match=r"unknown backend 'nope'"):
        JudgeVerifier("nope:x", "m")


# ---- auto ----------------------------------------------------------------------------------------------
def test_auto_follows_the_problem_s_verifier() -> None:
    auto = AutoVerifier()
    math_problem = Problem("m", prompt="?", reference="\\frac{1}{2}", metadata={"verifier": "math"})
    plain = Problem("p", prompt="?", reference="\\frac{1}{2}")
    text = Completion(text="The answer is 0.5.")
    if "math_verify" in sys.modules or pytest.importorskip("math_verify"):
        assert auto.verify(math_problem, text).correct is True
    assert auto.verify(plain, text).correct is False  # exact comparison: "0.5" is not "\frac{1}{2}"
    code_problem = Problem(
        "c", prompt="def f(x):\n", metadata={"verifier": "code", "entry_point": "f",
                                             "test": "def check(f):\n    assert f(2) == 4\n"}
    )
    verdict = asyncio.run(auto.averify(code_problem, Completion(text="    return x * 2\n")))
    assert verdict.correct is True and verdict.answer == "passed"
    with pytest.raises(InputError, match=r"unknown verifier 'telepathy'"):
        auto.verify(Problem("t", metadata={"verifier": "telepathy"}), text)


def test_auto_without_math_verify_compares_exactly(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "math_verify", None)
    auto = AutoVerifier()
    problem = Problem("m", prompt="?", reference="42", metadata={"verifier": "math"})
    assert auto.verify(problem, Completion(text="so 42")).correct is True
