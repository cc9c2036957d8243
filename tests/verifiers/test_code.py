"""The ``code`` verifier: program assembly, verdicts and reasons, the cache, the sandbox's
options; on real HumanEval problems when the shared data is there."""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import sys
from pathlib import Path

import pytest

from budgetlab.core import Completion, Problem
from budgetlab.errors import InputError
from budgetlab.verifiers import CodeVerifier, Limits, Sandbox, make_verifier
from budgetlab.verifiers._code import build_program, extract_code

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the code sandbox needs Linux")

_REPO = Path(__file__).resolve().parents[2]
DATA = next(
    (p for p in [Path(os.environ.get("BUDGETLAB_BENCH_DATA", "/nonexistent")), _REPO / "shared/data/benchmarks",
                 _REPO.parent / "shared/data/benchmarks"] if (p / "HumanEval.jsonl.gz").is_file()),
    None,
)

ADD = Problem(
    "add",
    prompt='def add(a, b):\n    """Return a + b."""\n',
    metadata={"entry_point": "add", "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(-1, 1) == 0\n"},
)


@pytest.fixture(scope="module")
def verifier() -> CodeVerifier:
    return CodeVerifier(timeout=5, workers=2)


# ---- programs ------------------------------------------------------------------------------------------
def test_program_is_prompt_completion_test_and_check() -> None:
    program = build_program(ADD, "    return a + b\n")
    assert program.source.startswith(ADD.prompt + "    return a + b\n")
    assert program.source.rstrip().endswith("check(add)")
    assert program.test_error is None
    # lines are placed in their part
    test_line = program.source.splitlines().index("    assert candidate(-1, 1) == 0") + 1
    assert program.locate(test_line) == "line 3 of the test"
    assert program.locate(3) == "line 1 of the completion"


def test_a_whole_function_replaces_the_stub() -> None:
    text = "Here you go:\n```python\nfrom math import fsum\n\ndef add(a, b):\n    return a + b\n```\nDone."
    assert extract_code(text, "add").startswith("from math import fsum")
    program = build_program(ADD, text)
    assert "def add(a, b):\n    return a + b" in program.source and "Here you go" not in program.source


def test_extract_code_prefers_the_block_that_defines_the_entry_point() -> None:
    text = "```\nprint('example')\n```\n```python\ndef add(a, b):\n    return a + b\n```\n```bash\npip install x\n```"
    assert extract_code(text, "add").startswith("def add")
    assert extract_code("no fences at all", "add") == "no fences at all"
    assert extract_code("```python\nx = 1\n", None) == "x = 1\n"  # an unclosed block


def test_a_problem_without_a_test_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"problem 'p' has no unit test.*metadata 'test'"):
        build_program(Problem("p", prompt="def f(): pass"), "x")
    with pytest.raises(InputError, match=r"entry_point 'not a name'"):
        build_program(Problem("p", metadata={"test": "assert 1", "entry_point": "not a name"}), "x")


# ---- verdicts ------------------------------------------------------------------------------------------
def test_pass_and_fail_with_reasons(verifier: CodeVerifier) -> None:
    good = verifier.verify(ADD, Completion(text="    return a + b\n"))
    assert good.correct is True and good.answer == "passed"
    assert good.details["isolation"] == verifier.isolation and good.seconds > 0
    bad = verifier.verify(ADD, Completion(text="    return a - b\n"))
    assert bad.correct is False and bad.answer == "failed: AssertionError (at line 2 of the test)"
    syntax = verifier.verify(ADD, Completion(text="    return a +\n"))
    assert syntax.correct is False and syntax.answer.startswith("failed: SyntaxError")
    name = verifier.verify(ADD, Completion(text="    return c\n"))
    assert name.answer == "failed: NameError: name 'c' is not defined (at line 1 of the completion)"
    slow = CodeVerifier(timeout=1).verify(ADD, Completion(text="    while True: pass\n"))
    assert slow.correct is False and "timed out after 1 s" in slow.answer
    empty = verifier.verify(ADD, Completion(text="  "))
    assert empty == empty.__class__("failed: the completion is empty", False, seconds=empty.seconds)


def test_exiting_early_is_not_a_pass(verifier: CodeVerifier) -> None:
    for exit_now in ("import sys; sys.exit(0)", "import os; os._exit(0)", "raise SystemExit", "exit()"):
        verdict = verifier.verify(ADD, Completion(text=f"    return a + b\n{exit_now}\n"))  # before the tests run
        assert verdict.correct is False, exit_now
        assert "before its tests finished" in verdict.answer


def test_a_test_that_does_not_compile_fails_the_sample_not_the_run(verifier: CodeVerifier) -> None:
    broken = Problem("broken", prompt=ADD.prompt, metadata={"entry_point": "add", "test": "def check(c):\n    assert c(1, 2) ==\n"})
    verdict = verifier.verify(broken, Completion(text="    return a + b\n"))
    assert verdict.correct is False
    assert verdict.answer.startswith("failed: the test of problem 'broken' does not compile (SyntaxError")
    assert verdict.answer.endswith("fix the task file")


def test_plain_asserts_without_an_entry_point(verifier: CodeVerifier) -> None:
    problem = Problem("mbpp-like", prompt="", metadata={"test": "assert square(3) == 9\n"})
    assert verifier.verify(problem, Completion(text="def square(x):\n    return x * x\n")).correct is True
    assert verifier.verify(problem, Completion(text="def square(x):\n    return x + x\n")).correct is False


# ---- cache ---------------------------------------------------------------------------------------------
def test_the_cache_judges_duplicates_once(tmp_path: Path) -> None:
    v = CodeVerifier(timeout=5, workers=2, cache=str(tmp_path / "cache.sqlite"))
    runs = []
    real = v.sandbox.arun

    async def counting(program: str):
        runs.append(program)
        return await real(program)

    v.sandbox.arun = counting  # type: ignore[method-assign]
    completions = [Completion(text="    return a + b\n")] * 4 + [Completion(text="    return b + a\n")] * 3

    async def judge_all():
        return await asyncio.gather(*[v.averify(ADD, c) for c in completions])

    first = asyncio.run(judge_all())
    assert [x.correct for x in first] == [True] * 7
    assert len(runs) == 2  # duplicates in flight wait for the first judgement
    second = asyncio.run(judge_all())
    assert len(runs) == 2 and all(x.details["cached"] for x in second)
    assert sum(x.seconds for x in second) < 0.05 * sum(x.seconds for x in first)
    # a new verifier reads the verdicts from the file
    again = CodeVerifier(timeout=5, cache=str(tmp_path / "cache.sqlite"))
    hit = again.verify(ADD, Completion(text="    return b + a\n"))
    assert hit.correct is True and hit.details["cached"] is True
    # other limits are another key
    other = CodeVerifier(timeout=6, cache=str(tmp_path / "cache.sqlite"))
    assert other.verify(ADD, Completion(text="    return b + a\n")).details["cached"] is False


# ---- options -------------------------------------------------------------------------------------------
def test_options_and_errors() -> None:
    v = make_verifier("code:timeout=3,memory_mb=256,isolation=auto,workers=1")
    assert isinstance(v, CodeVerifier) and v.limits.timeout == 3 and v.max_seconds >= 3
    with pytest.raises(InputError, match=r"unknown sandbox isolation 'docker'"):
        CodeVerifier(isolation="docker")
    with pytest.raises(InputError, match=r"sandbox limit timeout=-1 must be a positive number"):
        CodeVerifier(timeout=-1)
    with pytest.raises(InputError, match=r"memory_mb=10 is too small"):
        Limits(memory_mb=10)
    with pytest.raises(InputError, match=r"workers=99"):
        Sandbox(workers=99)


@pytest.mark.skipif(os.geteuid() != 0, reason="the rlimits level is refused only to root")
def test_root_never_runs_programs_at_the_rlimits_level() -> None:
    with pytest.raises(InputError, match=r"'rlimits' would run untrusted code as root"):
        Sandbox("rlimits").run("pass")


def test_auto_picks_the_strongest_level_and_works_without_bubblewrap() -> None:
    from budgetlab.verifiers._code import available_isolation

    levels = available_isolation()
    assert Sandbox().isolation == levels[0]
    without = Sandbox(bwrap="")
    assert without.isolation != "bwrap"
    assert without.run("import json\nassert json.loads('[1]') == [1]\n").passed
    if os.geteuid() == 0 and "namespaces" not in levels:
        pytest.skip("running as root, but unshare(2) is refused here (a container without CAP_SYS_ADMIN?): "
                    "programs run at the 'uid' level, without network or /tmp isolation")


# ---- HumanEval -----------------------------------------------------------------------------------------
@pytest.mark.skipif(DATA is None, reason="the shared HumanEval copy (shared/data/benchmarks) is absent")
def test_humaneval_canonical_solutions_pass_and_mutants_fail(verifier: CodeVerifier) -> None:
    from budgetlab.tasks import humaneval_problems

    assert DATA is not None
    problems = humaneval_problems(str(DATA / "HumanEval.jsonl.gz"), n=12)
    with gzip.open(DATA / "HumanEval.jsonl.gz", "rt") as fh:
        canonical = {r["task_id"]: r["canonical_solution"] for r in map(json.loads, fh)}

    async def judge_all():
        good = [verifier.averify(p, Completion(text=canonical[p.id])) for p in problems]
        bad = [verifier.averify(p, Completion(text="    return None\n")) for p in problems]
        return await asyncio.gather(*good), await asyncio.gather(*bad)

    good, bad = asyncio.run(judge_all())
    assert [v.correct for v in good] == [True] * len(problems), [v.answer for v in good]
    assert [v.correct for v in bad] == [False] * len(problems)
