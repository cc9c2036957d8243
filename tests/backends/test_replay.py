"""The replay backend: both JSONL formats, draw order (file order, seeded permutation, counts
without replacement), gzip, estimates, and an actionable InputError for every bad input."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
from pathlib import Path

import pytest

from budgetlab.backends import Backend, DrawRequest, ReplayBackend, make_backend, read_recorded
from budgetlab.core import Budget, Problem, Sample, SampleState, SamplingConfig, Spend, derive_seed
from budgetlab.core.run import RunSpec, RunState
from budgetlab.errors import InputError
from budgetlab.policies import FixedK
from budgetlab.runner import execute
from budgetlab.stores import SQLiteStore
from budgetlab.verifiers import make_verifier

FORMAT_HINT = "each line must be a samples record"


def _write(path: Path, records: list) -> Path:
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    if path.suffix == ".gz":
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def _samples_records(problems=("q1", "q2"), configs=("m1", "m2"), per_pair=6) -> list[dict]:
    out = []
    for p in problems:
        for c in configs:
            for i in range(per_pair):
                out.append({
                    "problem": p, "config": c, "answer": f"{p}-{c}-{i}", "correct": i % 3 == 0,
                    "score": i / 10, "text": f"text {i}", "prompt_tokens": 10 + i, "completion_tokens": 100 * (i + 1),
                    "logprob": -float(i), "cost": (i + 1) / 256,
                })  # fmt: skip
    return out


def _draw(backend: ReplayBackend, problem: str, config: str, indexes) -> list:
    cfg = SamplingConfig(model=config, backend="replay")
    samples = tuple(Sample("r", problem, cfg.id, i, derive_seed(0, problem, cfg.id, i)) for i in indexes)
    return asyncio.run(backend.draw(DrawRequest(Problem(problem), cfg, samples)))


def _request(problem: str, config: str, indexes) -> DrawRequest:
    cfg = SamplingConfig(model=config, backend="replay")
    return DrawRequest(Problem(problem), cfg, tuple(Sample("r", problem, cfg.id, i, 0) for i in indexes))


# ---- samples format ----------------------------------------------------------------------------
def test_samples_format_draws_in_file_order_by_default(tmp_path: Path) -> None:
    records = _samples_records()
    backend = ReplayBackend(_write(tmp_path / "s.jsonl", records))
    assert isinstance(backend, Backend)
    assert backend.seed is None
    assert [p.id for p in backend.problems()] == ["q1", "q2"]
    assert [c.model for c in backend.configs()] == ["m1", "m2"]
    assert all(c.backend == "replay" for c in backend.configs())
    out = _draw(backend, "q2", "m1", range(6))
    expected = [r for r in records if r["problem"] == "q2" and r["config"] == "m1"]
    for got, rec in zip(out, expected, strict=True):
        assert got.error is None
        assert (got.answer, got.correct, got.score, got.text) == (rec["answer"], rec["correct"], rec["score"], rec["text"])
        assert (got.prompt_tokens, got.completion_tokens, got.logprob, got.cost) == (
            rec["prompt_tokens"], rec["completion_tokens"], rec["logprob"], rec["cost"],
        )  # fmt: skip
    # Sample i is the i-th recording whatever the request it comes in: a re-issued sample
    # returns the same recording.
    assert [c.answer for c in _draw(backend, "q2", "m1", [4, 1])] == ["q2-m1-4", "q2-m1-1"]


def test_interleaved_file_keeps_per_pair_file_order_and_optional_fields(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.jsonl", [
        {"problem": "b", "config": "m", "answer": 7},
        {"problem": "a", "config": "m", "answer": "x", "correct": None},
        "",
        {"problem": "b", "config": "m", "answer": 2.5, "correct": False},
        {"problem": 3, "config": "m"},
    ])  # fmt: skip
    backend = ReplayBackend(path)
    assert [p.id for p in backend.problems()] == ["b", "a", "3"]
    assert [(c.answer, c.correct) for c in _draw(backend, "b", "m", [0, 1])] == [("7", None), ("2.5", False)]
    bare = _draw(backend, "3", "m", [0])[0]
    assert (bare.answer, bare.correct, bare.text, bare.prompt_tokens, bare.cost) == (None, None, None, 0, 0.0)


def test_seeded_shuffle_is_deterministic_and_differs_across_seeds(tmp_path: Path) -> None:
    records = _samples_records(problems=("q1",), configs=("m1",), per_pair=20)
    path = _write(tmp_path / "s.jsonl", records)

    def order(seed):
        return [c.answer for c in _draw(ReplayBackend(path, seed=seed), "q1", "m1", range(20))]

    file_order = [r["answer"] for r in records]
    assert order(None) == file_order
    assert order(1) == order(1)
    assert sorted(order(1)) == sorted(file_order)  # a permutation: without replacement
    assert order(1) != file_order
    assert order(1) != order(2)
    assert len({tuple(order(s)) for s in range(6)}) == 6
    # Drawing in pieces gives the same permutation as drawing at once.
    b = ReplayBackend(path, seed=1)
    assert [c.answer for i in range(20) for c in _draw(b, "q1", "m1", [i])] == order(1)
    # Through make_backend, as the CLI's --replay-seed passes it.
    assert [c.answer for c in _draw(make_backend(f"replay:{path}", {"seed": 1}), "q1", "m1", range(20))] == order(1)


# ---- counts format -----------------------------------------------------------------------------
@pytest.mark.parametrize("n,correct", [(10, 3), (8, 0), (8, 8), (1, 1), (37, 20)])
def test_counts_draw_without_replacement(tmp_path: Path, n: int, correct: int) -> None:
    path = _write(tmp_path / "c.jsonl", [{"problem": "q", "config": "m", "n": n, "correct": correct}])
    backend = ReplayBackend(path)
    out = _draw(backend, "q", "m", range(n))
    assert sum(c.correct for c in out) == correct  # exactly `correct` successes over n draws
    assert all(c.error is None and c.answer is None for c in out)
    extra = _draw(backend, "q", "m", [n])[0]
    assert extra.error is not None and "replay exhausted" in extra.error


def test_counts_order_is_permuted_and_seeded(tmp_path: Path) -> None:
    path = _write(tmp_path / "c.jsonl", [{"problem": f"q{i}", "config": "m", "n": 12, "correct": 4} for i in range(8)])

    def flags(seed=None):
        b = ReplayBackend(path) if seed is None else ReplayBackend(path, seed=seed)
        return [[c.correct for c in _draw(b, f"q{i}", "m", range(12))] for i in range(8)]

    default = flags()
    assert default == flags() == flags(0)
    sorted_first = [True] * 4 + [False] * 8
    assert any(f != sorted_first for f in default)  # successes are not all drawn first
    assert flags(5) != default
    assert all(sum(f) == 4 for f in flags(5))


def test_read_recorded_reports_counts(tmp_path: Path) -> None:
    samples = _write(tmp_path / "s.jsonl", _samples_records(per_pair=2))
    counts = _write(tmp_path / "c.jsonl", [{"problem": "q", "config": "m", "n": 3, "correct": 1}])
    recs, has_counts = read_recorded(samples)
    assert not has_counts and len(recs) == 4 and all(len(v) == 2 for v in recs.values())
    recs, has_counts = read_recorded(counts)
    assert has_counts and [r.correct for r in recs[("q", "m")]].count(True) == 1


# ---- gzip, estimates -----------------------------------------------------------------------------
def test_gzip_input_reads_like_plain(tmp_path: Path) -> None:
    records = _samples_records()
    plain = ReplayBackend(_write(tmp_path / "s.jsonl", records))
    gz = ReplayBackend(_write(tmp_path / "s.jsonl.gz", records))
    assert gz.records == plain.records
    assert _draw(gz, "q1", "m2", range(6)) == _draw(plain, "q1", "m2", range(6))
    counts = ReplayBackend(_write(tmp_path / "c.jsonl.gz", [{"problem": "q", "config": "m", "n": 5, "correct": 2}]))
    assert sum(c.correct for c in _draw(counts, "q", "m", range(5))) == 2


@pytest.mark.parametrize("seed", [None, 3])
def test_estimate_equals_the_real_spend(tmp_path: Path, seed) -> None:
    records = _samples_records()
    backend = ReplayBackend(_write(tmp_path / "s.jsonl", records), seed=seed)
    for p in ("q1", "q2"):
        for c in ("m1", "m2"):
            req = _request(p, c, range(7))
            est = backend.estimate(req)
            out = asyncio.run(backend.draw(req))
            for e, comp in zip(est[:6], out[:6], strict=True):
                assert e == Spend(1, comp.prompt_tokens + comp.completion_tokens, comp.cost)
            assert est[6] == Spend(samples=1) and out[6].error is not None  # past the recordings


def test_a_replayed_run_spends_exactly_the_estimates(tmp_path: Path) -> None:
    records = _samples_records()
    path = _write(tmp_path / "s.jsonl", records)
    backend = ReplayBackend(path)
    with SQLiteStore(tmp_path / "store.db") as store:
        store.create_run(RunSpec(name="r", backend=f"replay:{path}"), backend.problems(), backend.configs())
        outcome = asyncio.run(execute(store, "r", backend, FixedK(k=6), make_verifier("auto"), Budget(), concurrency=5))
        samples = store.samples("r")
    assert outcome.state is RunState.DONE
    assert all(s.state is SampleState.DONE for s in samples)
    assert outcome.spent.samples == len(records) == len(samples)
    assert outcome.spent.tokens == sum(r["prompt_tokens"] + r["completion_tokens"] for r in records)
    assert outcome.spent.dollars == sum(r["cost"] for r in records)
    estimated = Spend()
    for p in ("q1", "q2"):
        for c in ("m1", "m2"):
            for e in backend.estimate(_request(p, c, range(6))):
                estimated = estimated + e
    assert (estimated.samples, estimated.tokens, estimated.dollars) == (
        outcome.spent.samples, outcome.spent.tokens, outcome.spent.dollars,
    )  # fmt: skip


# ---- bad input -----------------------------------------------------------------------------------
GOOD = '{"problem": "q1", "config": "m", "answer": "1", "correct": true}'

BAD_LINES = {
    "invalid-json": ([GOOD, '{"problem": "q2", "config": "m", "answer": '], 2, "not valid JSON"),
    "not-an-object": ([GOOD, "[1, 2]"], 2, "expected a JSON object, got list"),
    "missing-problem": ([GOOD, "", '{"config": "m", "answer": "1"}'], 3, "field 'problem' is missing"),
    "missing-config": (['{"problem": "q1", "answer": "1"}'], 1, "field 'config' is missing"),
    "problem-wrong-type": (['{"problem": ["q1"], "config": "m"}'], 1, "field 'problem' must be a string"),
    "correct-wrong-type": ([GOOD, '{"problem": "q1", "config": "m", "correct": "yes"}'], 2, "field 'correct' has the wrong type: 'yes'"),
    "tokens-wrong-type": (['{"problem": "q1", "config": "m", "prompt_tokens": 1.5}'], 1, "field 'prompt_tokens' has the wrong type: 1.5"),
    "tokens-bool": (['{"problem": "q1", "config": "m", "completion_tokens": true}'], 1, "field 'completion_tokens' has the wrong type"),
    "counts-correct-gt-n": (['{"problem": "q1", "config": "m", "n": 3, "correct": 4}'], 1, "'correct' must be an integer between 0 and n=3, got 4"),
    "counts-negative-n": (['{"problem": "q1", "config": "m", "n": -1, "correct": 0}'], 1, "'n' must be a non-negative integer, got -1"),
    "counts-correct-missing": (['{"problem": "q1", "config": "m", "n": 3}'], 1, "'correct' must be an integer between 0 and n=3, got None"),
    "duplicate-counts": (
        ['{"problem": "q1", "config": "m", "n": 3, "correct": 1}', '{"problem": "q2", "config": "m", "n": 3, "correct": 1}',
         '{"problem": "q1", "config": "m", "n": 5, "correct": 2}'],
        3, "a second record for problem 'q1', config 'm'",
    ),  # fmt: skip
}


@pytest.mark.parametrize("lines,lineno,problem", BAD_LINES.values(), ids=BAD_LINES.keys())
@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz"])
def test_bad_line_gives_input_error_naming_file_line_problem_and_fix(
    tmp_path: Path, lines: list[str], lineno: int, problem: str, suffix: str
) -> None:
    path = _write(tmp_path / f"bad{suffix}", lines)
    with pytest.raises(InputError) as info:
        ReplayBackend(path)
    msg = str(info.value)
    assert msg.startswith(f"{path}:{lineno}: ")  # the file and line
    assert problem in msg  # the problem
    assert FORMAT_HINT in msg and '"n": int' in msg  # the fix: what a line must look like
    assert "\n" not in msg
    with pytest.raises(InputError):  # the CLI's path too
        make_backend(f"replay:{path}")


def test_empty_file_gives_input_error(tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(InputError, match="holds no records; give a JSONL file with one record per line") as info:
        ReplayBackend(path)
    assert str(path) in str(info.value)


def test_missing_file_gives_input_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(InputError, match="does not exist; give the path of a samples or counts JSONL file") as info:
        ReplayBackend(path)
    assert str(path) in str(info.value)
    with pytest.raises(InputError, match="is a directory"):
        ReplayBackend(tmp_path)  # a directory is not a replay file


def test_non_utf8_file_gives_input_error(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"problem": "q1", "config": "m", "answer": "caf\xe9"}\n')
    with pytest.raises(InputError, match=re.escape(f"{path}:1")):
        ReplayBackend(path)


def test_samples_record_after_counts_record_of_the_same_pair_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "mixed.jsonl", [
        '{"problem": "q1", "config": "m", "n": 3, "correct": 1}',
        '{"problem": "q1", "config": "m", "answer": "1", "correct": true}',
    ])  # fmt: skip
    with pytest.raises(InputError, match=re.escape(f"{path}:2: a second record for problem 'q1', config 'm'")):
        ReplayBackend(path)


def test_counts_record_after_samples_records_of_the_same_pair_is_rejected(tmp_path: Path) -> None:
    path = _write(tmp_path / "mixed.jsonl", [GOOD, '{"problem": "q1", "config": "m", "n": 3, "correct": 1}'])
    with pytest.raises(InputError, match=re.escape(f"{path}:2: a second record for problem 'q1', config 'm'")):
        ReplayBackend(path)


@pytest.mark.parametrize("field,value", [("prompt_tokens", -5), ("completion_tokens", -1), ("cost", -0.5)])
def test_negative_spend_fields_give_input_error(tmp_path: Path, field: str, value) -> None:
    path = _write(tmp_path / "neg.jsonl", [{"problem": "q1", "config": "m", "correct": True, field: value}])
    with pytest.raises(InputError, match=re.escape(f"{path}:1: ") + f".*{field}"):
        ReplayBackend(path)


# ---- check() and make_backend ----------------------------------------------------------------------
def test_check_rejects_unknown_config_and_problem(tmp_path: Path) -> None:
    path = _write(tmp_path / "s.jsonl", _samples_records())
    backend = ReplayBackend(path)
    backend.check(backend.problems(), backend.configs())
    backend.check([Problem("q2")], [SamplingConfig(model="m2")])
    with pytest.raises(InputError) as info:
        backend.check(backend.problems(), [SamplingConfig(model="m1"), SamplingConfig(model="gpt-9")])
    msg = str(info.value)
    assert "configuration 'gpt-9' is not in replay file" in msg and str(path) in msg and "it has: m1, m2" in msg
    with pytest.raises(InputError, match=r"problem 'zz' \(and 1 more\) is not in replay file"):
        backend.check([Problem("q1"), Problem("zz"), Problem("yy")], backend.configs())


def test_make_backend_errors() -> None:
    with pytest.raises(InputError, match="unknown backend 'nosuch'.*replay:"):
        make_backend("nosuch:gpt")
    with pytest.raises(InputError, match="needs a target after the colon"):
        make_backend("replay")
    with pytest.raises(InputError, match=r"does not take.*temperature"):
        make_backend("replay:x.jsonl", {"temperature": 0.5})


def test_samples_records_keep_file_order_in_a_file_that_also_has_counts(tmp_path: Path) -> None:
    records = _samples_records(problems=("q1",), configs=("m1",), per_pair=12)
    path = _write(tmp_path / "mixed.jsonl", [*records, {"problem": "q9", "config": "m1", "n": 4, "correct": 1}])
    backend = ReplayBackend(path)
    assert [c.answer for c in _draw(backend, "q1", "m1", range(12))] == [r["answer"] for r in records]
