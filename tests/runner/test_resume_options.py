"""Resuming a run with other backend options: how the backend is reached (a timeout, retries)
may change, since an outage is what a longer wait fixes; what it samples may not."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _runner_support import write_replay  # noqa: E402

from budgetlab.backends import BACKENDS, ReplayBackend  # noqa: E402
from budgetlab.errors import InputError  # noqa: E402
from budgetlab.runner import run  # noqa: E402
from budgetlab.stores import open_store  # noqa: E402


class _TimedReplay(ReplayBackend):
    """A replay backend that takes a transport option (timeout) and a sampling one (temperature_shift)."""

    def __init__(self, target: str | None = None, *, timeout: float = 1.0, temperature_shift: float = 0.0) -> None:
        super().__init__(target)
        self.timeout = timeout


def test_transport_options_change_on_resume_and_sampling_options_do_not(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(BACKENDS, "timed", _TimedReplay)
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 4, ("cfg-a",), per_pair=4)
    db = str(tmp_path / "store.db")
    first = run("r", f"timed:{path}", store=db, backend_options={"timeout": 2}, policy="fixed", policy_args={"k": 2})
    assert first.drawn == 8
    again = run("r", store=db, backend_options={"timeout": 300}, policy_args={"k": 2})
    assert again.drawn == 0
    with open_store(db) as store:
        assert store.get_run("r").spec.backend_args == {"timeout": 300}  # the next resume keeps it
    with pytest.raises(InputError, match=r"exists with backend_args=\{\}, not \{'temperature_shift': 0.5\}"):
        run("r", store=db, backend_options={"timeout": 300, "temperature_shift": 0.5})
