"""A run whose requests all time out, billed at their bound (``bill_timeouts``), is stopped by a
dollars budget before it runs out of samples: its failures must still show, in the outcome and in
``budgetlab run``'s exit code (it was 0, as for a run that drew what it could; before
``bill_timeouts`` such a run ended on its failures, exit code 1)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("httpx", reason="the openai backend needs httpx: pip install 'budgetlab[openai]'")

from rich.console import Console  # noqa: E402

from budgetlab.cli._main import main  # noqa: E402
from budgetlab.testing import FaultyServer  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from _openai_support import clean_openai_env  # noqa: E402, F401 (the fixture applies by import)

HANGS = "fault/sleep=30"  # answers long after the client's timeout


def test_a_run_of_timeouts_stopped_by_its_budget_exits_1_and_names_its_failures(tmp_path: Path, capsys) -> None:
    store = tmp_path / "s.db"
    with FaultyServer(models=[HANGS]) as srv:
        args = ["run", "--backend", f"openai:{srv.url}", "--task", "arithmetic:n=6", "--name", "t", "-k", "1",
                "--config", f"model={HANGS},max_tokens=8,price_in=1000,price_out=2000", "--concurrency", "2",
                "--backend-arg", "timeout=0.2", "--backend-arg", "max_attempts=1", "--backend-arg", "bill_timeouts=true",
                "--backend-arg", "check_models=false", "--backend-arg", "backoff=0.01",
                "--budget", "dollars=0.5", "--store", str(store), "--no-progress"]  # fmt: skip
        rc = main(args, console=Console(width=400, no_color=True))
    out = capsys.readouterr().out
    assert "stopped because: budget: dollars limit 0.5" in out, out
    rc_json = main(["report", "t", "--store", str(store), "--json"], console=Console(width=400))
    report = json.loads(capsys.readouterr().out)
    failed = report["failed"]
    assert rc_json == 0 and 0 < failed < 6 and report["samples"] == 0
    assert f"{failed} samples drawn now ({failed} of them failed" in out
    assert rc == 1  # a script or CI job must see that samples failed
