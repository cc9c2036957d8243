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
    with pytest.raises(InputError, match=r"exists with backend option temperature_shift not set, not temperature_shift=0.5: it decides"):
        run("r", store=db, backend_options={"timeout": 300, "temperature_shift": 0.5})


def test_sampling_options_left_out_on_resume_keep_their_stored_values(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(BACKENDS, "timed", _TimedReplay)
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 4, ("cfg-a",), per_pair=4)
    db = str(tmp_path / "store.db")
    run("r", f"timed:{path}", store=db, backend_options={"temperature_shift": 0.5}, policy="fixed:k=2")
    # Only a longer timeout is asked for: the stored temperature_shift is not "changed to unset".
    assert run("r", store=db, backend_options={"timeout": 30}).drawn == 0
    with open_store(db) as store:
        assert store.get_run("r").spec.backend_args == {"temperature_shift": 0.5, "timeout": 30}


def test_other_problems_on_resume_are_refused_not_ignored(tmp_path: Path) -> None:
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 5, ("cfg-a",), per_pair=2)
    problems = ReplayBackend(str(path)).problems()
    db = str(tmp_path / "store.db")
    run("r", f"replay:{path}", store=db, problems=problems, policy="fixed:k=1")
    assert run("r", store=db, problems=problems).drawn == 0  # the same ones resume
    with pytest.raises(InputError, match=r"exists with 5 problems, not the 3 \(other\) problems given now by --task/--problems"):
        run("r", store=db, problems=problems[:3])


class _UnpricedReplay(ReplayBackend):
    """A replay backend that, like a hosted model without a price, warns that its samples cost $0."""

    def check(self, problems, configs) -> None:  # type: ignore[no-untyped-def]
        import warnings

        from budgetlab.errors import UnpricedModelWarning

        super().check(problems, configs)
        warnings.warn("no price is known for model 'm': its samples count as $0; give price_in/price_out", UnpricedModelWarning, stacklevel=2)


def test_a_dollar_budget_on_a_model_without_a_price_is_refused(tmp_path: Path, monkeypatch) -> None:
    from budgetlab.errors import UnpricedModelWarning

    monkeypatch.setitem(BACKENDS, "unpriced", _UnpricedReplay)
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 2, ("cfg-a",), per_pair=2)
    db = str(tmp_path / "store.db")
    with pytest.raises(InputError, match=r"no price is known for model 'm': its samples count as \$0, so --budget dollars=1 could not limit them"):
        run("d", f"unpriced:{path}", store=db, budget="dollars=1")
    with pytest.warns(UnpricedModelWarning):  # without a dollar budget it is only worth a warning
        assert run("t", f"unpriced:{path}", store=db, budget="samples=2").drawn == 2


def test_a_fixed_run_resumed_with_a_larger_k_draws_only_the_samples_k_adds(tmp_path: Path) -> None:
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 3, ("cfg-a", "cfg-b"), per_pair=8)
    db = str(tmp_path / "store.db")
    assert run("r", f"replay:{path}", store=db, policy="fixed", policy_args={"k": 2}).drawn == 12
    more = run("r", store=db, policy="fixed", policy_args={"k": 5})
    assert more.drawn == 18  # 3 more for each of the 6 pairs; the first 2 are never drawn again
    with open_store(db) as store:
        assert store.get_run("r").spec.policy_args == {"k": 5}
        per_pair = {}
        for s in store.samples("r"):
            per_pair.setdefault((s.problem, s.config), []).append(s.index)
        assert all(sorted(v) == [0, 1, 2, 3, 4] for v in per_pair.values())
    with pytest.raises(InputError, match=r"has fixed:k=5; k may only grow when a run resumes"):
        run("r", store=db, policy="fixed", policy_args={"k": 3})
    with pytest.raises(InputError, match=r"exists with policy='fixed', not 'esc'"):
        run("r", store=db, policy="esc", policy_args={})


def test_problems_may_be_a_task_spec_and_anything_else_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "recorded.jsonl"
    write_replay(path, 3, ("cfg-a",), per_pair=2)
    problems_file = tmp_path / "problems.jsonl"
    problems_file.write_text("".join(f'{{"id": "p{i:05d}", "reference": "0"}}\n' for i in range(2)))
    out = run("r", f"replay:{path}", store=str(tmp_path / "s.db"), problems=str(problems_file), policy="fixed:k=1")
    assert out.drawn == 2
    with pytest.raises(InputError, match=r"problems must be Problem objects, a task spec or a problems file, got dict"):
        run("bad", f"replay:{path}", store=str(tmp_path / "s.db"), problems=[{"id": "p0"}])
