"""The report's "up to $Y is an estimate" counts the timed-out attempts of samples that a later
invocation drew again: their samples no longer carry the estimate, but the run's spend keeps it,
so the note must too (it named only the last invocation's, half of the spend after two)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="the openai backend needs httpx: pip install 'budgetlab[openai]'")

from budgetlab.analysis import build_report  # noqa: E402
from budgetlab.analysis._timeouts import timed_out_note  # noqa: E402
from budgetlab.tasks import arithmetic_problems  # noqa: E402
from budgetlab.testing import FaultyServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _openai_support import cfg, clean_openai_env, do_run, stored  # noqa: E402, F401 (the fixture applies by import)

PRICED = {"max_tokens": 8, "price_in": 1000.0, "price_out": 2000.0}
BILLED = {"timeout": 0.2, "max_attempts": 2, "bill_timeouts": True}


def test_the_estimate_note_counts_the_attempts_of_samples_drawn_again(tmp_path: Path) -> None:
    hangs = "fault/sleep=30"  # answers long after the client's timeout
    problems = arithmetic_problems(n=2)
    with FaultyServer(models=[hangs]) as srv:
        do_run(tmp_path, srv.url, cfg(hangs, **PRICED), problems=problems, k=1, options=BILLED)
        do_run(tmp_path, srv.url, cfg(hangs, **PRICED), problems=problems, k=1, options=BILLED)
    info, samples = stored(tmp_path)
    assert info.spent.dollars > 0 and sum(s.cost for s in samples) == pytest.approx(info.spent.dollars / 2)

    report = build_report(str(tmp_path / "store.db"), "r")
    counted = report["timed_out"]
    assert counted["samples"] == 2 and counted["dollars"] == pytest.approx(info.spent.dollars)  # all of it, both invocations
    assert counted["tokens"] == info.spent.tokens
    assert counted["earlier"] == {"tokens": info.spent.tokens // 2, "dollars": pytest.approx(info.spent.dollars / 2)}
    assert timed_out_note(report) == (
        f"of the ${info.spent.dollars:.4f} spent, up to ${info.spent.dollars:.4f} is an estimate for 2 samples whose "
        "requests timed out after they were sent and for the timed-out attempts of samples drawn again since, which "
        "the provider may have billed"
    )


def test_a_run_without_timeouts_has_no_note(tmp_path: Path) -> None:
    with FaultyServer(models=["echo"]) as srv:
        do_run(tmp_path, srv.url, cfg("echo", **PRICED), problems=arithmetic_problems(n=2), k=2, options=BILLED)
    report = build_report(str(tmp_path / "store.db"), "r")
    assert report["spent"]["dollars"] > 0 and report["timed_out"] is None and timed_out_note(report) is None
