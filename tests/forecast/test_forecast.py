"""``budgetlab forecast`` over the replay backend: the pilot is part of the run, the prediction
is close to what the full run then spends, and bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from budgetlab.cli._main import main
from budgetlab.errors import InputError
from budgetlab.forecast import (
    PilotResult,
    Scenario,
    choose_pilot_problems,
    forecast,
    parse_scenarios,
)
from budgetlab.runner import run
from budgetlab.stores import open_store

N_PROBLEMS = 120
K = 6


def _write(tmp_path: Path, solvable: bool = True) -> tuple[Path, Path]:
    """Problems whose prompt length drives their token counts, and their recorded samples."""
    rng = np.random.default_rng(0)
    problems, samples = tmp_path / "problems.jsonl", tmp_path / "samples.jsonl"
    with open(problems, "w") as pf, open(samples, "w") as sf:
        for i in range(N_PROBLEMS):
            words = int(rng.integers(5, 60))
            pid = f"q{i:03d}"
            pf.write(json.dumps({"id": pid, "prompt": "word " * words, "reference": "42"}) + "\n")
            p = rng.beta(0.5, 1.5) if solvable else 0.0
            for _ in range(K):
                ok = bool(rng.random() < p)
                sf.write(json.dumps({
                    "problem": pid, "config": "m", "answer": "42" if ok else str(int(rng.integers(0, 5))),
                    "correct": ok, "prompt_tokens": 2 * words + 3, "completion_tokens": int(rng.integers(5, 40)),
                    "cost": 1e-5 * (2 * words + 40),
                }) + "\n")
    return problems, samples


def test_pilot_predicts_the_full_run_and_the_full_run_reuses_it(tmp_path: Path) -> None:
    problems_path, samples_path = _write(tmp_path)
    from budgetlab.tasks import load_problems

    problems = load_problems(str(problems_path))
    with open_store(str(tmp_path / "s.db")) as store:
        fc, pilot = forecast("r", f"replay:{samples_path}", store=store, pilot=0.1, problems=problems,
                             policy="fixed", policy_args={"k": K}, verifier="recorded",
                             scenarios=[Scenario("k=3", k=3), Scenario("samples=240", limit=("samples", 240))], n_boot=60)
        assert len(pilot.problems) == 12 and pilot.drawn == 12 * K
        assert store.get_run("r").state.value == "stopped"
        assert "pilot" in (store.get_run("r").stopped_because or "")

        outcome = run("r", store=store)
        info = store.get_run("r")
        assert outcome.drawn == N_PROBLEMS * K - pilot.drawn  # not one pilot sample drawn again
        assert len(store.samples("r")) == N_PROBLEMS * K

    planned = fc.rows[0]
    assert planned.k == K and planned.samples == N_PROBLEMS * K
    assert abs(planned.tokens.value / info.spent.tokens - 1) < 0.10
    assert abs(planned.dollars.value / info.spent.dollars - 1) < 0.10
    rows = {r.label: r for r in fc.rows}
    assert rows["k=3"].tokens.value == pytest.approx(planned.tokens.value / 2)
    assert rows["samples=240"].k == 2  # 240 samples over 120 problems
    assert rows[f"k={4 * K}"].extrapolated and not planned.extrapolated
    assert set(planned.pass_at_k) == {"m"} and "m" in planned.maj_at_k
    assert planned.seconds is not None and planned.seconds.value > 0


def test_token_intervals_hold_the_truth_about_as_often_as_they_say(tmp_path: Path) -> None:
    """Many 10% pilots of one finished run: the 90% interval of total tokens holds the truth in
    about 90% of them (one pilot is one draw of this)."""
    from budgetlab.forecast import predict
    from budgetlab.tasks import load_problems

    problems_path, samples_path = _write(tmp_path)
    problems = load_problems(str(problems_path))
    with open_store(str(tmp_path / "s.db")) as store:
        run("all", f"replay:{samples_path}", store=store, problems=problems, policy="fixed",
            policy_args={"k": K}, verifier="recorded")
        samples, configs, total = store.samples("all"), store.configs("all"), store.get_run("all").spent.tokens
    rng = np.random.default_rng(1)
    ids = [p.id for p in problems]
    held = []
    for _ in range(120):
        chosen = list(rng.choice(ids, 12, replace=False))
        tokens = predict("all", problems, configs, samples, chosen, K, [Scenario("k", k=K)], n_boot=10).rows[0].tokens
        held.append(tokens.lo <= total <= tokens.hi)
    assert 0.8 <= np.mean(held) <= 0.98


def test_forecast_of_a_finished_run_changes_nothing(tmp_path: Path) -> None:
    problems_path, samples_path = _write(tmp_path)
    from budgetlab.tasks import load_problems

    problems = load_problems(str(problems_path))
    with open_store(str(tmp_path / "s.db")) as store:
        run("done", f"replay:{samples_path}", store=store, problems=problems, policy="fixed",
            policy_args={"k": K}, verifier="recorded")
        fc, pilot = forecast("done", store=store, pilot=0.1, n_boot=20)
        assert pilot.drawn == 0 and store.get_run("done").state.value == "done"
        assert fc.rows[0].tokens.value == pytest.approx(store.get_run("done").spent.tokens, rel=0.15)
        assert any("no wall-time" in n for n in fc.notes)
        # It forecasts from every problem the run drew, not from the pilot's few.
        assert fc.pilot_problems == N_PROBLEMS and len(pilot.problems) == N_PROBLEMS


def test_a_samples_budget_too_small_for_the_pilot_is_refused_before_drawing(tmp_path: Path) -> None:
    from budgetlab.core import Budget
    from budgetlab.tasks import load_problems

    problems_path, samples_path = _write(tmp_path)
    problems = load_problems(str(problems_path))
    with open_store(str(tmp_path / "s.db")) as store:
        with pytest.raises(InputError, match=r"pilot needs 72 more samples \(12 problems x k=6 x 1 configuration\(s\)\) "
                                             r"but --budget samples=10 leaves 10; raise --budget, or lower --pilot or -k"):
            forecast("small", f"replay:{samples_path}", store=store, pilot=0.1, problems=problems, policy="fixed",
                     policy_args={"k": K}, verifier="recorded", budget=Budget(samples=10), n_boot=20)
        assert store.samples("small") == []
        # A budget that covers the pilot gets a row of its own: what the whole run can buy with it.
        fc, pilot = forecast("small", f"replay:{samples_path}", store=store, pilot=0.1, problems=problems,
                             policy="fixed", policy_args={"k": K}, verifier="recorded", budget=Budget(samples=300),
                             n_boot=20)
        rows = {r.label: r for r in fc.rows}
        assert pilot.drawn == 72 and rows["--budget samples=300"].k == 2  # 300 samples over 120 problems


def test_a_pilot_cut_short_by_a_tokens_budget_says_so(tmp_path: Path) -> None:
    from budgetlab.core import Budget
    from budgetlab.tasks import load_problems

    problems_path, samples_path = _write(tmp_path)
    with open_store(str(tmp_path / "s.db")) as store:
        fc, pilot = forecast("cut", f"replay:{samples_path}", store=store, pilot=0.1,
                             problems=load_problems(str(problems_path)), policy="fixed", policy_args={"k": K},
                             verifier="recorded", budget=Budget(tokens=1500), concurrency=1, n_boot=20)
    assert 0 < pilot.drawn < 12 * K
    note = next(n for n in fc.notes if "pilot stopped before it was complete" in n)
    assert "tokens" in note and "of 12 pilot problems it reached" in note


def test_a_pilot_that_solves_nothing_does_not_claim_certainty(tmp_path: Path) -> None:
    from budgetlab.tasks import load_problems

    problems_path, samples_path = _write(tmp_path, solvable=False)
    with open_store(str(tmp_path / "s.db")) as store:
        fc, _ = forecast("none", f"replay:{samples_path}", store=store, pilot=0.05, problems=load_problems(str(problems_path)),
                         policy="fixed", policy_args={"k": K}, verifier="recorded", n_boot=20)
    est = fc.rows[0].pass_at_k["m"]
    assert est.value == 0.0 and est.hi > 0.2  # 6 pilot problems, none solved: up to ~30% is plausible


def test_choose_pilot_problems_is_seeded_and_never_too_small() -> None:
    ids = [f"p{i}" for i in range(100)]
    assert choose_pilot_problems(ids, 0.05, 0) == choose_pilot_problems(ids, 0.05, 0)
    assert choose_pilot_problems(ids, 0.05, 0) != choose_pilot_problems(ids, 0.05, 1)
    assert len(choose_pilot_problems(ids, 0.05, 0)) == 5
    assert len(choose_pilot_problems(ids[:10], 0.01, 0)) == 3
    with pytest.raises(InputError, match="pilot fraction"):
        choose_pilot_problems(ids, 0.0, 0)


def test_a_pilot_sent_in_one_batch_is_timed_as_one_batch() -> None:
    """40 samples at concurrency 64 all go out at once: the 36 that settle after the first 4 time
    that batch's spread (read as a rate: 144 samples/s, for a run that managed under 45), so the
    whole pilot over its whole time is the rate, with no start-up of its own."""
    one = PilotResult(("q",), 40, 0.9, 0.65, 4, 36, "pilot", concurrency=64)
    assert one.one_wave
    t = one.throughput(80.0)
    assert t is not None
    assert t["samples_per_second"] == pytest.approx(40 / 0.9) and t["tokens_per_second"] == pytest.approx(80 * 40 / 0.9)
    assert t["startup_seconds"] == 0.0 and t["pilot_seconds"] == 0.9
    # The same pilot at concurrency 8 came in waves: the rate after the first one, as before.
    waves = PilotResult(("q",), 40, 0.9, 0.4, 8, 32, "pilot", concurrency=8)
    t = waves.throughput(80.0)
    assert not waves.one_wave and t is not None
    assert t["samples_per_second"] == pytest.approx(32 / 0.5) and t["startup_seconds"] == pytest.approx(0.4 - 8 / 64)


def test_a_forecast_from_one_batch_says_how_its_time_was_read(tmp_path: Path) -> None:
    from budgetlab.tasks import load_problems

    problems_path, samples_path = _write(tmp_path)
    problems = load_problems(str(problems_path))
    with open_store(str(tmp_path / "s.db")) as store:
        fc, pilot = forecast("one", f"replay:{samples_path}", store=store, pilot=0.05, problems=problems,
                             policy="fixed", policy_args={"k": K}, verifier="recorded", n_boot=20)
        assert pilot.drawn == 6 * K <= 64 and fc.rows[0].seconds is not None
        assert fc.throughput is not None and fc.throughput["startup_seconds"] == 0.0
        assert any(n.startswith(f"wall time comes from a single batch: the pilot's {6 * K} samples were all in flight "
                                "at once (concurrency 64)") for n in fc.notes), fc.notes
        fc, pilot = forecast("waves", f"replay:{samples_path}", store=store, pilot=0.05, problems=problems,
                             policy="fixed", policy_args={"k": K}, verifier="recorded", concurrency=4, n_boot=20)
        assert not pilot.one_wave and not any("single batch" in n for n in fc.notes)


def test_parse_scenarios() -> None:
    got = parse_scenarios("k=8, 64, samples=1000, tokens=2e6, dollars=5")
    assert [s.k for s in got[:2]] == [8, 64]
    assert [s.limit for s in got[2:]] == [("samples", 1000.0), ("tokens", 2e6), ("dollars", 5.0)]
    for bad, needle in [("k=0", "k must"), ("k=1.5", "k must"), ("gold=3", "not one of"), ("tokens=x", "KEY=NUMBER"),
                        ("dollars=-1", "positive")]:
        with pytest.raises(InputError, match=needle):
            parse_scenarios(bad)


# ---- the command line ------------------------------------------------------------------------------


def _cli(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args], console=Console(width=300, no_color=True, highlight=False))
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_forecast_json_then_run_resumes_the_pilot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problems, samples = _write(tmp_path)
    store = tmp_path / "cli.db"
    common = ["--backend", f"replay:{samples}", "--problems", problems, "-k", K, "--verifier", "recorded", "--store", store]
    rc, out, err = _cli(capsys, "forecast", *common, "--pilot", 0.1, "--budgets", "k=2,tokens=1e5", "--json")
    assert rc == 0, err
    data = json.loads(out)
    assert data["pilot"]["problems"] == 12 and data["pilot_drawn_now"] == 12 * K
    assert [r["label"] for r in data["rows"]][:1] == [f"planned k={K}"] and data["interval"] == "90%"
    assert "budgetlab run --name" in data["resume_with"]
    # `budgetlab run` with the same options finds the same run and draws only the rest.
    rc, out, err = _cli(capsys, "run", *common, "--no-progress")
    assert rc == 0, err
    assert f"{N_PROBLEMS * K - 12 * K:,} samples drawn now" in out

    rc, out, err = _cli(capsys, "forecast", *common, "--pilot", 0.1)
    assert rc == 0, err
    assert "expected coverage" in out and "tokens" in out


def test_cli_report_gains_extrapolation_and_budget_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    problems, samples = _write(tmp_path)
    store = tmp_path / "r.db"
    rc, _, err = _cli(capsys, "run", "--backend", f"replay:{samples}", "--problems", problems, "-k", K,
                      "--verifier", "recorded", "--store", store, "--name", "full", "--no-progress")
    assert rc == 0, err
    png = tmp_path / "plots" / "cov.png"
    rc, out, err = _cli(capsys, "report", "full", "--store", store, "--plot", png)
    assert rc == 0, err
    assert "extrapolated pass@k" in out
    for path in (png, png.with_name("cov-budget.png"), png.with_name("cov-frontier.png")):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rc, out, _ = _cli(capsys, "report", "full", "--store", store, "--json")
    assert "budget_curves" not in json.loads(out)  # plain --json is what `run --json` prints
    rc, out, _ = _cli(capsys, "report", "full", "--store", store, "--json", "--extrapolate")
    curves = json.loads(out)["budget_curves"]["configs"]["m"]
    assert curves["observed_k"] == K and curves["extrapolated"]["method"] == "bracket"


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--pilot", "0"], "--pilot"),
        (["--budgets", "k=zero"], "KEY=NUMBER"),
        (["--policy", "esc:window=3"], "fixed policy"),
        (["--method", "magic"], "extrapolation method"),
    ],
)
def test_cli_bad_input_is_one_line_and_leaves_no_store(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       extra: list[str], needle: str) -> None:
    problems, samples = _write(tmp_path)
    store = tmp_path / "bad.db"
    args = ["forecast", "--backend", f"replay:{samples}", "--problems", problems, "--store", store, *extra]
    if "--policy" not in extra:
        args += ["-k", "4"]
    rc, _, err = _cli(capsys, *args)
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("budgetlab: error: ") and needle in lines[0], err
    assert not store.exists()  # nothing was recorded: no store is left behind


def test_forecast_takes_the_policy_and_store_as_run_does(tmp_path: Path) -> None:
    from budgetlab.policies import FixedK
    from budgetlab.tasks import load_problems

    problems_path, samples_path = _write(tmp_path)
    problems = load_problems(str(problems_path))
    db = str(tmp_path / "s.db")
    fc, pilot = forecast("spec", f"replay:{samples_path}", store=db, pilot=0.1, problems=problems,
                         policy=f"fixed:k={K}", verifier="recorded", n_boot=20)  # fmt: skip
    assert pilot.drawn == 12 * K and fc.rows[0].k == K
    fc, _ = forecast("object", f"replay:{samples_path}", store=db, pilot=0.1, problems=problems,
                     policy=FixedK(k=3), verifier="recorded", n_boot=20)  # fmt: skip
    assert fc.rows[0].k == 3
    with pytest.raises(InputError, match="forecast needs the fixed policy"):
        forecast("esc", f"replay:{samples_path}", store=db, problems=problems, policy="esc:max_samples=6")


def test_the_score_matrix_of_a_run_reads_an_open_store_or_its_path(tmp_path: Path) -> None:
    from budgetlab.evaluation import load_run_matrix

    samples_path = tmp_path / "two.jsonl"
    samples_path.write_text("".join(json.dumps({"problem": f"q{i}", "config": c, "answer": "1", "correct": (i + j) % 2 == 0}) + "\n"
                                    for i in range(4) for j, c in enumerate(("a", "b"))))  # fmt: skip
    db = str(tmp_path / "s.db")
    run("r", f"replay:{samples_path}", store=db, policy="fixed:k=1")
    with open_store(db) as store:
        from_store = load_run_matrix(store, "r")
    from_path = load_run_matrix(db, "r")
    assert from_store.values.tolist() == from_path.values.tolist() and from_path.values.shape == (2, 4)
    assert sorted(map(sorted, from_path.values.tolist())) == [[0, 0, 1, 1], [0, 0, 1, 1]]


def test_a_forecast_of_a_run_another_worker_is_drawing_is_refused(tmp_path: Path) -> None:
    """Its pilot would have drawn the other worker's pending samples as its own, and marked the
    run stopped under it."""
    from budgetlab.runner._workers import new_worker_id
    from budgetlab.tasks import load_problems

    problems_path, samples_path = _write(tmp_path)
    problems = load_problems(str(problems_path))
    with open_store(str(tmp_path / "s.db")) as store:
        run("busy", f"replay:{samples_path}", store=store, problems=problems, policy="fixed",
            policy_args={"k": K}, verifier="recorded", budget="samples=12")
        store.heartbeat("busy", new_worker_id())  # a live worker of this very process
        before = store.get_run("busy")
        with pytest.raises(InputError, match=r"run 'busy' is being drawn now by worker .*:\d+; forecast it once that ends"):
            forecast("busy", store=store, pilot=0.1, n_boot=20, budget="samples=10000")
        after = store.get_run("busy")
        assert (after.state, after.spent) == (before.state, before.spent)
