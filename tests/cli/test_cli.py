"""The ``budgetlab`` command line, end to end: run, report, runs, import, demo, and bad input.

Commands run in-process through :func:`budgetlab.cli._main.main` (output captured with capsys);
two tests go through ``python -m budgetlab`` in a subprocess to prove the entry point.

Every bad-input case must exit with code 2, print exactly one line to stderr naming the
offending file/line/value and a fix, and leave the store exactly as it was (every table,
compared through ``sqlite3``'s ``iterdump``).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rich.console import Console

from budgetlab.cli._main import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# A hand-computable case: 2 problems x 1 config ("m") x 4 recorded samples, in draw order.
#   p1: answers a a b c, correct T T F F  -> n=4, c=2
#   p2: answers x y y z, correct T F F F  -> n=4, c=1
RECORDS = [
    ("p1", "a", True), ("p1", "a", True), ("p1", "b", False), ("p1", "c", False),
    ("p2", "x", True), ("p2", "y", False), ("p2", "y", False), ("p2", "z", False),
]  # fmt: skip
# pass@k = 1 - C(n-c, k) / C(n, k), averaged over the two problems:
#   pass@1 = (2/4 + 1/4) / 2                              = 0.375
#   pass@2 = ((1 - C(2,2)/C(4,2)) + (1 - C(3,2)/C(4,2))) / 2 = (5/6 + 1/2) / 2 = 2/3
#   pass@4 = (1 + 1) / 2                                  = 1.0
# maj@k = expected correctness of the majority answer of k of the 4 samples (ties split evenly):
#   maj@1 = per-sample accuracy                                   = 0.375
#   maj@2: p1 over the 6 pairs: aa -> 1, ab ab ac ac -> 1/2 each, bc -> 0: 3/6 = 1/2
#          p2: xy xy xz -> 1/2 each, yy yz yz -> 0:                 1.5/6 = 1/4   -> 0.375
#   maj@4: p1: a (2 votes) wins -> 1; p2: y (2 votes) wins -> 0                   -> 0.5
PASS = {"1": 0.375, "2": 2 / 3, "4": 1.0}
MAJ = {"1": 0.375, "2": 0.375, "4": 0.5}
TOKENS_PER_SAMPLE = 15  # 10 prompt + 5 completion
COST_PER_SAMPLE = 0.001


# ---- helpers ---------------------------------------------------------------------------------


def write_samples(path: Path) -> Path:
    with open(path, "w", encoding="utf-8") as fh:
        for problem, answer, correct in RECORDS:
            fh.write(
                json.dumps(
                    {
                        "problem": problem,
                        "config": "m",
                        "answer": answer,
                        "correct": correct,
                        "prompt_tokens": 10,
                        "completion_tokens": 5,
                        "cost": COST_PER_SAMPLE,
                    }
                )
                + "\n"
            )
    return path


def cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    """Run ``budgetlab ARGS`` in-process; a wide console keeps rich from wrapping or dropping columns."""
    capsys.readouterr()  # drop anything printed before
    console = Console(width=400, no_color=True, highlight=False)
    rc = main([str(a) for a in args], console=console)
    out, err = capsys.readouterr()
    return rc, out, err


def report_json(capsys: pytest.CaptureFixture[str], store: Path, name: str | None = None) -> dict:
    rc, out, err = cli(capsys, "report", *([name] if name else []), "--store", store, "--json")
    assert rc == 0, err
    return json.loads(out)


def drawn_now(out: str) -> int:
    match = re.search(r"([\d,]+) samples drawn now", out)
    assert match, out
    return int(match.group(1).replace(",", ""))


def dump(path: Path) -> str | None:
    """Every table of an SQLite file as SQL text (None if there is no file)."""
    if not path.exists():
        return None
    con = sqlite3.connect(path)
    try:
        return "\n".join(con.iterdump())
    finally:
        con.close()


def sample_rows(store: Path) -> int:
    con = sqlite3.connect(store)
    try:
        return con.execute("SELECT COUNT(*) FROM samples").fetchone()[0]
    finally:
        con.close()


def assert_one_line_error(rc: int, err: str, *needles: str) -> str:
    assert rc == 2, err
    lines = err.splitlines()
    assert len(lines) == 1, f"expected exactly one line on stderr, got {len(lines)}:\n{err}"
    line = lines[0]
    assert line.startswith("budgetlab: error: "), line
    assert "Traceback" not in err
    for needle in needles:
        assert needle in line, f"{needle!r} not in error line: {line}"
    return line


# ---- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def samples(tmp_path: Path) -> Path:
    return write_samples(tmp_path / "samples.jsonl")


@pytest.fixture
def store(tmp_path: Path) -> Path:
    return tmp_path / "store.db"


@pytest.fixture
def finished_store(capsys: pytest.CaptureFixture[str], samples: Path, store: Path) -> Path:
    """A store holding the finished run ``tiny`` (k=4 over the two problems)."""
    rc, _, err = cli(capsys, "run", "--backend", f"replay:{samples}", "--name", "tiny", "-k", "4", "--no-progress", "--store", store)
    assert rc == 0, err
    return store


# ---- run / report / runs ---------------------------------------------------------------------


def check_tiny_report(report: dict, name: str) -> None:
    assert isinstance(report["run"], str) and report["run"] == name
    assert isinstance(report["samples"], int) and report["samples"] == 8
    assert isinstance(report["stopped_because"], str) and report["stopped_because"]
    assert set(report["configs"]) == {"m"}
    entry = report["configs"]["m"]
    assert set(entry["pass_at_k"]) == set(PASS) and set(entry["maj_at_k"]) == set(MAJ)
    for k, value in PASS.items():
        assert isinstance(entry["pass_at_k"][k], float)
        assert entry["pass_at_k"][k] == pytest.approx(value, abs=1e-12), k
    for k, value in MAJ.items():
        assert isinstance(entry["maj_at_k"][k], float)
        assert entry["maj_at_k"][k] == pytest.approx(value, abs=1e-12), k
    # the exactly representable ones are exact
    assert entry["pass_at_k"]["1"] == 0.375 and entry["pass_at_k"]["4"] == 1.0
    assert entry["maj_at_k"]["4"] == 0.5
    spent = report["spent"]
    assert spent["samples"] == 8
    assert spent["tokens"] == 8 * TOKENS_PER_SAMPLE
    assert spent["dollars"] == pytest.approx(8 * COST_PER_SAMPLE)


def test_run_then_report_json_has_the_hand_computed_numbers(capsys, samples: Path, store: Path) -> None:
    rc, out, err = cli(capsys, "run", "--backend", f"replay:{samples}", "--name", "tiny", "-k", "4", "--no-progress", "--store", store)
    assert rc == 0, err
    assert err == ""
    assert drawn_now(out) == 8
    report = report_json(capsys, store, "tiny")
    check_tiny_report(report, "tiny")
    assert report["state"] == "done"
    assert report["stopped_because"].startswith("complete")


def test_run_json_prints_the_same_report(capsys, samples: Path, store: Path) -> None:
    rc, out, err = cli(capsys, "run", "--backend", f"replay:{samples}", "--name", "tiny", "-k", "4", "--json", "--store", store)
    assert rc == 0, err
    from_run = json.loads(out)  # stdout holds the JSON only
    check_tiny_report(from_run, "tiny")
    assert from_run == report_json(capsys, store, "tiny")


def test_run_with_progress_bar_and_human_report(capsys, samples: Path, store: Path) -> None:
    rc, out, err = cli(capsys, "run", "--backend", f"replay:{samples}", "--name", "tiny", "-k", "4", "--store", store)
    assert rc == 0, err
    assert "pass@1" in out and "37.5" in out and "66.7" in out and "100.0" in out
    assert drawn_now(out) == 8


def test_report_plot_writes_png_and_defaults_to_latest_run(capsys, finished_store: Path, tmp_path: Path) -> None:
    png = tmp_path / "plots" / "out.png"
    rc, out, err = cli(capsys, "report", "--store", finished_store, "--plot", png)
    assert rc == 0, err
    assert "run tiny" in out and "pass@1" in out
    data = png.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
    for extra in ("out-budget.png", "out-frontier.png"):  # every file written is named
        assert (png.parent / extra).read_bytes().startswith(PNG_MAGIC) and extra in " ".join(out.split())


def test_runs_lists_the_run_with_state_and_spend(capsys, finished_store: Path) -> None:
    rc, out, err = cli(capsys, "runs", "--store", finished_store)
    assert rc == 0, err
    row = next(line for line in out.splitlines() if " tiny " in line)
    assert "done" in row and "fixed:k=4" in row
    assert re.search(r"\b8\b", row) and "120" in row and "0.0080" in row

    rc, out, err = cli(capsys, "runs", "--store", finished_store, "--json")
    assert rc == 0, err
    (run,) = json.loads(out)
    assert run["name"] == "tiny" and run["state"] == "done"
    assert run["spent"]["samples"] == 8 and run["spent"]["tokens"] == 120
    assert run["spent"]["dollars"] == pytest.approx(0.008)
    assert run["spec"]["policy"] == "fixed" and run["spec"]["policy_args"] == {"k": 4}
    assert run["stopped_because"].startswith("complete")


def test_import_loads_a_finished_run_whose_report_matches_the_file(capsys, samples: Path, store: Path) -> None:
    rc, out, err = cli(capsys, "import", samples, "--store", store)
    assert rc == 0, err
    assert "samples" in out  # default name: the file name without extensions
    report = report_json(capsys, store, "samples")
    check_tiny_report(report, "samples")
    assert report["state"] == "done"
    assert report["spec"]["policy"] == "imported"

    # the same numbers as drawing the file through a run
    rc, _, err = cli(capsys, "run", "--backend", f"replay:{samples}", "--name", "drawn", "-k", "4", "--no-progress", "--store", store)
    assert rc == 0, err
    drawn = report_json(capsys, store, "drawn")
    for key in ("pass_at_k", "maj_at_k", "samples", "problems"):
        assert report["configs"]["m"][key] == drawn["configs"]["m"][key]

    rc, _, err = cli(capsys, "import", samples, "--name", "again", "--store", store)
    assert rc == 0, err
    assert report_json(capsys, store, "again")["configs"]["m"]["pass_at_k"] == report["configs"]["m"]["pass_at_k"]


def test_running_the_same_command_twice_resumes_and_draws_nothing(capsys, samples: Path, store: Path) -> None:
    args = ("run", "--backend", f"replay:{samples}", "-k", "4", "--no-progress", "--store", store)  # name derived
    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    assert drawn_now(out) == 8
    before = report_json(capsys, store)
    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    assert drawn_now(out) == 0
    assert sample_rows(store) == 8
    rc, out, _ = cli(capsys, "runs", "--store", store, "--json")
    assert len(json.loads(out)) == 1
    after = report_json(capsys, store)
    assert after["configs"] == before["configs"] and after["spent"] == before["spent"]


def test_the_same_command_with_config_resumes_and_another_config_is_refused(capsys, samples: Path, store: Path) -> None:
    args = ("run", "--backend", f"replay:{samples}", "-k", "4", "--config", "model=m", "--no-progress", "--store", store)
    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    assert drawn_now(out) == 8
    rc, out, err = cli(capsys, *args)
    assert rc == 0, err
    assert drawn_now(out) == 0 and sample_rows(store) == 8
    name = json.loads(cli(capsys, "runs", "--store", store, "--json")[1])[0]["name"]
    rc, _, err = cli(capsys, "run", "--name", name, "--backend", f"replay:{samples}", "--config", "model=other", "--store", store)
    assert rc == 2 and "exists with other configurations than those asked for (new: other; not asked for: m)" in err and err.count("\n") == 1
    # Resuming by name, the run's own backend reads --config: no need to say --backend again.
    rc, out, err = cli(capsys, "run", "--name", name, "--config", "model=m", "--no-progress", "--store", store)
    assert rc == 0 and drawn_now(out) == 0, err
    rc, _, err = cli(capsys, "run", "--name", "fresh", "--config", "model=m", "--store", store)
    assert rc == 2 and "--config needs --backend" in err


def test_failed_samples_are_counted_and_explained(capsys, samples: Path, store: Path) -> None:
    args = ("run", "--backend", f"replay:{samples}", "-k", "6", "--no-progress", "--store", store)
    rc, out, err = cli(capsys, *args)  # 4 recorded per problem: samples 5 and 6 fail (replay exhausted)
    assert rc == 1, err  # a script or CI job must see that samples failed
    assert "12 samples drawn now (4 of them failed: see why above)" in out
    assert "4 of the 12 samples settled now failed (first: replay exhausted" in out
    assert "ask for no more samples per problem than the file holds" in out  # running again would not help


def test_a_weighted_vote_with_nothing_to_weigh_says_it_is_a_majority_vote(capsys, finished_store: Path) -> None:
    rc, out, err = cli(capsys, "report", "tiny", "--store", finished_store, "--selector", "weighted:source=logprob")
    assert rc == 0, err
    assert "no sample has a logprob confidence, so weighted is a plain majority vote here" in out
    rc, out, _ = cli(capsys, "report", "tiny", "--store", finished_store, "--selector", "weighted:source=logprob", "--json")
    assert "plain majority vote" in json.loads(out)["configs"]["m"]["selection"]["note"]


def test_raising_the_budget_on_resume_draws_more(capsys, samples: Path, store: Path) -> None:
    base = ("run", "--backend", f"replay:{samples}", "--name", "b", "-k", "4", "--no-progress", "--store", store)
    rc, out, err = cli(capsys, *base, "--budget", "samples=3")
    assert rc == 0, err
    assert drawn_now(out) == 3
    report = report_json(capsys, store, "b")
    assert report["state"] == "stopped" and report["spent"]["samples"] == 3
    assert "samples" in report["stopped_because"]

    rc, out, err = cli(capsys, *base)  # same budget (stored): nothing more
    assert rc == 0, err
    assert drawn_now(out) == 0

    rc, out, err = cli(capsys, *base, "--budget", "samples=6")
    assert rc == 0, err
    assert drawn_now(out) == 3
    report = report_json(capsys, store, "b")
    assert report["spent"]["samples"] == 6 and report["budget"] == {"samples": 6}

    rc, out, err = cli(capsys, "run", "--name", "b", "--budget", "none", "--no-progress", "--store", store)
    assert rc == 0, err
    assert drawn_now(out) == 2
    report = report_json(capsys, store, "b")
    assert report["state"] == "done"
    check_tiny_report(report, "b")  # same samples as drawing it in one go


def test_demo_works_end_to_end(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    rc, out, err = cli(capsys, "demo", "--simulated", "--dir", folder)
    assert rc == 0, err
    assert "SIMULATED" in out
    assert (folder / "simulated-samples.jsonl").is_file()
    assert (folder / "coverage.png").read_bytes().startswith(PNG_MAGIC)
    report = report_json(capsys, folder / "budgetlab.db", "demo-simulated")
    assert report["state"] == "done"
    assert report["samples"] == 3 * 120 * 16
    assert set(report["configs"]) == {"sim-small-t0.2", "sim-small-t0.8", "sim-large-t0.7"}
    for entry in report["configs"].values():
        curve = [entry["pass_at_k"][k] for k in ("1", "2", "4", "8", "16")]
        assert curve == sorted(curve) and 0 < curve[0] < curve[-1] <= 1


# ---- the entry point, out of process ------------------------------------------------------------


def test_python_m_budgetlab_runs_and_reports(samples: Path, store: Path, tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "budgetlab", "run", "--backend", f"replay:{samples}", "--name", "sub", "-k", "4", "--json", "--store", str(store)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    check_tiny_report(json.loads(proc.stdout), "sub")


def test_python_m_budgetlab_exits_2_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    cmd = [sys.executable, "-m", "budgetlab", "report", "--store", str(missing)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert_one_line_error(proc.returncode, proc.stderr, str(missing), "--store")
    assert not missing.exists()


# ---- bad input: exit 2, one line, store unchanged ---------------------------------------------


def _bad_replay(tmp: Path, samples: Path) -> Path:
    path = tmp / "bad.jsonl"
    lines = samples.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1], '{"problem": "p1", "config": ', *lines[2:]]) + "\n")
    return path


def _bad_problems(tmp: Path) -> Path:
    path = tmp / "problems.jsonl"
    path.write_text('{"id": "p1"}\n{"id": "p2"}\n{"id": \n')
    return path


Case = Callable[[Path, Path], tuple[list[str], list[str]]]  # (tmp, samples) -> (argv without --store, needles)

BAD_INPUT: dict[str, Case] = {
    "malformed replay line": lambda tmp, s: (
        ["run", "--backend", f"replay:{_bad_replay(tmp, s)}", "--name", "new"],
        [f"{tmp / 'bad.jsonl'}:3", "not valid JSON", "each line must be"],
    ),
    "unknown backend": lambda tmp, s: (
        ["run", "--backend", f"nope:{s}", "--name", "new"],
        ["'nope'", "replay:"],
    ),
    "unknown policy": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--policy", "nope", "--name", "new"],
        ["'nope'", "fixed:k=8"],
    ),
    "policy k=0": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--policy", "fixed:k=0", "--name", "new"],
        ["k=0", "fixed:k=8"],
    ),
    "-k 0": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "-k", "0", "--name", "new"],
        ["k=0", "fixed:k=8"],
    ),
    "policy argument not k=value": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--policy", "fixed:8", "--name", "new"],
        ["'8'", "fixed:k=8"],
    ),
    "-k and --policy": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "-k", "4", "--policy", "fixed:k=4", "--name", "new"],
        ["-k", "--policy"],
    ),
    "budget -1": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--budget", "-1", "--name", "new"],
        ["'-1'", "samples=1000"],
    ),
    "budget samples=0": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--budget", "samples=0", "--name", "new"],
        ["samples=0", "above 0"],
    ),
    "budget samples=-5": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--budget", "samples=-5", "--name", "new"],
        ["samples=-5", "above 0"],
    ),
    "budget empty": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--budget", "", "--name", "new"],
        ["empty", "--budget samples="],
    ),
    "budget tokens=abc": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--budget", "tokens=abc", "--name", "new"],
        ["'abc'", "tokens=100"],
    ),
    "budget unknown limit": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--budget", "minutes=3", "--name", "new"],
        ["'minutes=3'", "samples=1000"],
    ),
    "problems file missing": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--problems", str(tmp / "nowhere.jsonl"), "--name", "new"],
        [str(tmp / "nowhere.jsonl"), "JSONL"],
    ),
    "problems file malformed": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--problems", str(_bad_problems(tmp)), "--name", "new"],
        [f"{tmp / 'problems.jsonl'}:3", "each line must be"],
    ),
    "problem not in replay file": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--problems", str(_write(tmp / "p.jsonl", '{"id": "p9"}\n')), "--name", "new"],
        ["'p9'", "replay file"],
    ),
    "resume with conflicting --policy": lambda tmp, s: (
        ["run", "--name", "tiny", "--policy", "esc"],
        ["'tiny'", "policy='fixed', not 'esc'", "another --name"],
    ),
    "resume with conflicting -k": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--name", "tiny", "-k", "2"],
        ["'tiny'", "fixed:k=4; k may only grow", "another --name"],
    ),
    "unknown configuration": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--configs", "m,zz", "--name", "new"],
        ["'zz'", "choose from: m"],
    ),
    "another --config on an existing run": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--config", "model=other", "--name", "tiny"],
        ["'tiny'", "new: other", "--name"],
    ),
    "new run without backend": lambda tmp, s: (
        ["run", "--name", "new"],
        ["'new'", "--backend replay:"],
    ),
    "concurrency 0": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--concurrency", "0", "--name", "new"],
        ["0", "--concurrency 64"],
    ),
    "report of a run that does not exist": lambda tmp, s: (
        ["report", "nosuch"],
        ["'nosuch'", "tiny", "budgetlab runs"],
    ),
    "import of a malformed file": lambda tmp, s: (
        ["import", str(_bad_replay(tmp, s)), "--name", "imp"],
        [f"{tmp / 'bad.jsonl'}:3", "each line must be"],
    ),
    "import under a taken name": lambda tmp, s: (
        ["import", str(s), "--name", "tiny"],
        ["'tiny'", "another --name"],
    ),
    "budget samples=1.5": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--budget", "samples=1.5", "--name", "new"],
        ["samples=1.5", "whole number", "samples=2"],
    ),
    "budget limit given twice": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--budget", "samples=10,samples=20", "--name", "new"],
        ["samples twice", "each limit once"],
    ),
    "budget samples=1e400": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--budget", "samples=1e400", "--name", "new"],
        ["samples=1e400", "not a finite number"],
    ),
    "--backend-arg not KEY=VALUE": lambda tmp, s: (
        ["run", "--backend", f"replay:{s}", "--backend-arg", "nonsense", "--name", "new"],
        ["--backend-arg 'nonsense'", "KEY=VALUE", "--backend-arg timeout=300"],
    ),
    "import of a directory": lambda tmp, s: (
        ["import", str(tmp), "--name", "imp"],
        [str(tmp), "is a directory", "JSONL file"],
    ),
}

BAD_INPUT["policy unknown argument"] = lambda tmp, s: (
    ["run", "--backend", f"replay:{s}", "--policy", "fixed:x=1", "--name", "new"],
    ["'x'", "fixed:k="],
)
BAD_INPUT_PARAMS = [pytest.param(name, id=name) for name in BAD_INPUT]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize("case", BAD_INPUT_PARAMS)
def test_bad_input_exits_2_with_one_line_and_leaves_the_store_unchanged(
    capsys, case: str, finished_store: Path, samples: Path, tmp_path: Path
) -> None:
    argv, needles = BAD_INPUT[case](tmp_path, samples)
    before = dump(finished_store)
    rc, _, err = cli(capsys, *argv, "--store", finished_store)
    assert_one_line_error(rc, err, *needles)
    assert dump(finished_store) == before


@pytest.mark.parametrize("command", ["run", "report", "runs", "import"])
def test_a_text_file_is_not_a_store(capsys, command: str, samples: Path, tmp_path: Path) -> None:
    text = tmp_path / "notes.db"
    text.write_text("not a database\n")
    argv = {
        "run": ["run", "--backend", f"replay:{samples}", "--name", "new"],
        "report": ["report", "tiny"],
        "runs": ["runs"],
        "import": ["import", str(samples)],
    }[command]
    rc, _, err = cli(capsys, *argv, "--store", text)
    assert_one_line_error(rc, err, str(text), "not a budgetlab store", "--store")
    assert text.read_text() == "not a database\n"


def _foreign_sqlite(path: Path) -> Path:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("INSERT INTO customers (name) VALUES ('ada')")
    con.commit()
    con.close()
    return path


@pytest.mark.parametrize("command", ["run", "report", "runs", "import"])
def test_an_sqlite_file_with_other_tables_is_not_a_store(capsys, command: str, samples: Path, tmp_path: Path) -> None:
    other = _foreign_sqlite(tmp_path / "other.db")
    argv = {
        "run": ["run", "--backend", f"replay:{samples}", "--name", "new"],
        "report": ["report", "tiny"],
        "runs": ["runs"],
        "import": ["import", str(samples)],
    }[command]
    before = dump(other)
    rc, _, err = cli(capsys, *argv, "--store", other)
    assert_one_line_error(rc, err, str(other), "not a budgetlab store", "customers", "--store")
    assert dump(other) == before


def test_refusing_a_foreign_sqlite_file_leaves_its_bytes_unchanged(capsys, tmp_path: Path) -> None:
    other = _foreign_sqlite(tmp_path / "other.db")
    before = other.read_bytes()
    rc, _, err = cli(capsys, "runs", "--store", other)
    assert_one_line_error(rc, err, "not a budgetlab store")
    con = sqlite3.connect(other)
    try:
        mode = con.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        con.close()
    assert mode == "delete"
    assert other.read_bytes() == before


@pytest.mark.parametrize("command", ["run", "report", "runs", "import"])
def test_a_store_with_a_newer_schema_is_refused(capsys, command: str, finished_store: Path, samples: Path) -> None:
    con = sqlite3.connect(finished_store)
    con.execute("UPDATE budgetlab_schema SET version = 99")
    con.commit()
    con.close()
    argv = {
        "run": ["run", "--backend", f"replay:{samples}", "--name", "tiny", "-k", "4"],
        "report": ["report", "tiny"],
        "runs": ["runs"],
        "import": ["import", str(samples), "--name", "imp"],
    }[command]
    before = dump(finished_store)
    rc, _, err = cli(capsys, *argv, "--store", finished_store)
    assert_one_line_error(rc, err, str(finished_store), "99", "pip install -U budgetlab")
    assert dump(finished_store) == before


@pytest.mark.parametrize("command", ["report", "runs"])
def test_report_and_runs_on_a_store_that_does_not_exist(capsys, command: str, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "store.db"
    rc, _, err = cli(capsys, command, "--store", missing)
    assert_one_line_error(rc, err, str(missing), "--store")
    assert not missing.exists() and not missing.parent.exists()


def test_report_on_an_empty_store(capsys, store: Path, samples: Path) -> None:
    from budgetlab.stores import open_store

    open_store(str(store)).close()  # a fresh store without runs
    rc, _, err = cli(capsys, "report", "--store", store)
    assert_one_line_error(rc, err, str(store), "no runs", "budgetlab run")


# Errors raised before the store is opened leave a missing store missing...
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(["--budget", "samples=0"], id="budget"),
        pytest.param(["--problems", "/nonexistent/problems.jsonl"], id="problems"),
    ],
)
def test_early_errors_do_not_create_the_store(capsys, argv: list[str], samples: Path, store: Path) -> None:
    rc, _, err = cli(capsys, "run", "--backend", f"replay:{samples}", "--name", "new", *argv, "--store", store)
    assert rc == 2, err
    assert not store.exists()


# ... but errors found after it is opened leave an empty store behind.
@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(lambda s: ["--backend", f"nope:{s}"], id="unknown backend"),
        pytest.param(lambda s: ["--backend", f"replay:{s}", "--policy", "nope"], id="unknown policy"),
        pytest.param(lambda s: ["--backend", f"replay:{s}", "--configs", "zz"], id="unknown configuration"),
    ],
)
def test_late_errors_do_not_create_the_store(capsys, argv, samples: Path, store: Path) -> None:
    rc, _, err = cli(capsys, "run", "--name", "new", *argv(samples), "--store", store)
    assert_one_line_error(rc, err)
    assert not store.exists()


def test_failed_resume_with_a_new_budget_leaves_the_store_unchanged(capsys, samples: Path, store: Path, tmp_path: Path) -> None:
    replay = tmp_path / "replay.jsonl"
    shutil.copy(samples, replay)
    rc, _, err = cli(capsys, "run", "--backend", f"replay:{replay}", "--name", "b", "-k", "4", "--budget", "samples=3", "--no-progress", "--store", store)
    assert rc == 0, err
    replay.write_text(replay.read_text() + "{broken\n")
    before = dump(store)
    rc, _, err = cli(capsys, "run", "--name", "b", "--budget", "samples=6", "--no-progress", "--store", store)
    assert_one_line_error(rc, err, f"{replay}:9")
    assert dump(store) == before


def test_a_store_in_a_missing_folder_is_a_one_line_error(capsys, samples: Path, tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder" / "runs.db"
    rc, _, err = cli(capsys, "run", "--backend", f"replay:{samples}", "--name", "new", "--store", missing)
    assert_one_line_error(rc, err, str(missing.parent), "does not exist", "mkdir -p")
    assert not missing.parent.exists()


# ---- findings of the acceptance test: odd input refused, numbers never made up ---------------


def test_resuming_an_imported_run_is_refused_before_the_run_header(capsys, samples: Path, store: Path) -> None:
    rc, _, err = cli(capsys, "import", samples, "--name", "imp", "--store", store)
    assert rc == 0, err
    before = dump(store)
    rc, out, err = cli(capsys, "run", "--name", "imp", "--store", store)
    assert_one_line_error(rc, err, "'imp' was imported", "no policy to draw more", "budgetlab report imp")
    assert out == ""  # no run header, no progress bar
    assert dump(store) == before
    assert report_json(capsys, store, "imp")["state"] == "done"


def test_a_budget_is_shown_as_it_could_be_typed(capsys, samples: Path, store: Path) -> None:
    rc, out, err = cli(capsys, "run", "--backend", f"replay:{samples}", "--name", "b", "-k", "4",
                       "--budget", "tokens=2e6,dollars=5", "--no-progress", "--store", store)  # fmt: skip
    assert rc == 0, err
    assert "budget: tokens=2e6, dollars=5" in out and "e+06" not in out
    assert report_json(capsys, store, "b")["budget"] == {"tokens": 2_000_000, "dollars": 5.0}


def test_one_sample_is_not_called_samples(capsys, samples: Path, store: Path) -> None:
    rc, out, err = cli(capsys, "run", "--backend", f"replay:{samples}", "--name", "one", "-k", "4",
                       "--budget", "samples=1", "--no-progress", "--store", store)  # fmt: skip
    assert rc == 0, err
    assert "1 sample drawn now" in out and "1 samples" not in out


def test_best_of_n_without_scores_reports_no_accuracy_instead_of_zero(capsys, finished_store: Path) -> None:
    rc, out, err = cli(capsys, "report", "tiny", "--selector", "best_of_n", "--store", finished_store)
    assert rc == 0, err
    line = next(line for line in out.splitlines() if line.startswith("selected answer"))
    assert "n/a for 2 problems" in line and "no sample has a score" in line and "0.0%" not in line
    rc, out, err = cli(capsys, "report", "tiny", "--selector", "best_of_n", "--json", "--store", finished_store)
    assert rc == 0, err
    selection = json.loads(out)["configs"]["m"]["selection"]
    assert selection["judged"] == 0 and selection["accuracy"] is None and selection["ci"] is None
    assert "no sample has a score" in selection["unjudged_because"]
    # the same run under majority still has its accuracy (p1: a is right, p2: y is wrong)
    assert report_json(capsys, finished_store, "tiny")["configs"]["m"]["selection"]["accuracy"] == 0.5


def test_an_imported_sample_without_a_verdict_is_not_reported_as_wrong(capsys, store: Path, tmp_path: Path) -> None:
    unchecked = _write(tmp_path / "unchecked.jsonl", '{"problem": "a", "config": "c", "answer": "4"}\n')
    rc, out, err = cli(capsys, "import", unchecked, "--store", store)
    assert rc == 0, err
    assert "imported run unchecked" in out
    rc, out, err = cli(capsys, "report", "unchecked", "--store", store)
    assert rc == 0, err
    line = next(line for line in out.splitlines() if line.startswith("selected answer"))
    assert "n/a for 1 problem:" in line and "no sample has a verdict" in line and "0.0%" not in line
    selection = report_json(capsys, store, "unchecked")["configs"]["c"]["selection"]
    assert selection["accuracy"] is None and "no sample has a verdict" in selection["unjudged_because"]


@pytest.mark.parametrize("simulated", [False, True], ids=["embedded", "simulated"])
def test_demo_k_0_is_refused_like_run_k_0(capsys, simulated: bool, tmp_path: Path) -> None:
    folder = tmp_path / "dk0"
    rc, out, err = cli(capsys, "demo", "-k", "0", "--dir", folder, *(["--simulated"] if simulated else []))
    assert_one_line_error(rc, err, "a whole number >= 1", "k=0")
    assert not folder.exists() and "drawing" not in out


def test_demo_with_another_k_in_the_same_folder_names_dir_not_name(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    rc, _, err = cli(capsys, "demo", "--simulated", "-k", "2", "--dir", folder)
    assert rc == 0, err
    before = dump(folder / "budgetlab.db")
    rc, _, err = cli(capsys, "demo", "--simulated", "-k", "4", "--dir", folder)
    line = assert_one_line_error(rc, err, "k=2", "not k=4", "-k 2", "--dir")
    assert "--name" not in line
    assert dump(folder / "budgetlab.db") == before


def test_runs_on_an_empty_store_says_so(capsys, store: Path) -> None:
    from budgetlab.stores import open_store

    open_store(str(store)).close()
    rc, out, err = cli(capsys, "runs", "--store", store)
    assert rc == 0, err
    assert f"store {store} has no runs; start one with: budgetlab run --backend" in out
    rc, out, err = cli(capsys, "runs", "--json", "--store", store)
    assert rc == 0 and json.loads(out) == []


def test_runs_in_an_80_column_terminal_keeps_the_whole_name_and_numbers(capsys, samples: Path, store: Path) -> None:
    name = "embedded-arithmetic-fixed-k-8-5be1c2"
    rc, _, err = cli(capsys, "run", "--backend", f"replay:{samples}", "--name", name, "-k", "4", "--no-progress", "--store", store)
    assert rc == 0, err
    capsys.readouterr()
    assert main(["runs", "--store", str(store)], console=Console(width=80, no_color=True)) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if name in line)  # on one line, not cut
    assert "…" not in out and re.search(r"\b8\b", row) and "120" in row
    assert max(len(line) for line in out.splitlines()) <= 80
    assert "policy left out to fit the terminal" in out


def test_the_progress_bar_in_80_columns_keeps_the_sample_count(capsys, samples: Path, store: Path) -> None:
    capsys.readouterr()
    argv = ["run", "--backend", f"replay:{samples}", "--name", "embedded-arithmetic-fixed-k-8-5be1c2", "-k", "4", "--store", str(store)]
    assert main(argv, console=Console(width=80, no_color=True)) == 0
    bar = next(line for line in capsys.readouterr().out.splitlines() if "tokens ·" in line)
    assert "8/8 samples · 120 tokens" in bar and "…" not in bar


@pytest.mark.parametrize("command", [["runs", "--json"], ["report", "tiny", "--json"], ["runs"]], ids=["runs", "report", "table"])
def test_a_reader_that_stops_early_gets_no_traceback(command: list[str], finished_store: Path, tmp_path: Path) -> None:
    """``budgetlab runs --json | head -1``: the reader's end of the pipe closes before we write."""
    proc = subprocess.Popen([sys.executable, "-m", "budgetlab", *command, "--store", str(finished_store)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)  # fmt: skip
    proc.stdout.close()  # type: ignore[union-attr]
    err = proc.stderr.read().decode()  # type: ignore[union-attr]
    assert proc.wait(timeout=120) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err and err == ""


def test_report_tables_fit_an_80_column_terminal_without_cutting_a_figure_or_header(tmp_path: Path) -> None:
    from budgetlab.analysis import build_report
    from budgetlab.cli._render import print_report
    from budgetlab.runner import run
    from budgetlab.stores import open_store

    replay = tmp_path / "samples.jsonl"
    with replay.open("w") as f:
        for p in range(6):
            for config in ("llama-3.1-8b-instruct@t1.0-with-a-long-prompt", "gpt-3.5-turbo-0125@t0.7"):
                for i in range(8):
                    f.write(json.dumps({"problem": f"p{p}", "config": config, "answer": "ab"[(i + p) % 3 == 0],
                                        "correct": (i + p) % 3 != 0, "completion_tokens": 1200}) + "\n")  # fmt: skip
    run("r", f"replay:{replay}", store=str(tmp_path / "s.db"), policy="fixed:k=8")
    with open_store(str(tmp_path / "s.db")) as store:
        report = build_report(store, "r")
    console = Console(width=80, record=True, file=io.StringIO())
    print_report(console, report)
    text = console.export_text()
    assert "…" not in text and max(len(line) for line in text.splitlines()) <= 80
    assert "pass@8" in text and "maj@8" in text and "100.0" in text


def test_a_report_warns_when_samples_come_back_empty(capsys, tmp_path: Path) -> None:
    replay = tmp_path / "empty.jsonl"
    replay.write_text("".join(json.dumps({"problem": f"p{i}", "config": "m", "text": "" if i else "4", "answer": None if i else "4",
                                          "correct": i == 0}) + "\n" for i in range(4)))  # fmt: skip
    store = tmp_path / "s.db"
    rc, out, err = cli(capsys, "run", "--backend", f"replay:{replay}", "-k", "1", "--no-progress", "--store", store)
    assert rc == 0, err
    assert "warning: 3 of m's samples are empty text: the model stopped before writing anything; check stop= and chat=" in out
    assert report_json(capsys, store)["configs"]["m"]["empty"] == 3
