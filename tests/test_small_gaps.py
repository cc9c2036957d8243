"""Small input gaps a user met: fractional counts, probabilities off their scale, importing a
run twice, a journal used in a ``with`` block."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from budgetlab import import_recorded
from budgetlab.calibration import expected_calibration_error, reliability_table
from budgetlab.core import Budget, Sample, SampleState
from budgetlab.errors import InputError, InvalidArgument
from budgetlab.pacing import SampleJournal
from budgetlab.stores import open_store


def test_a_fractional_sample_or_token_budget_is_refused_with_a_whole_number_to_give() -> None:
    with pytest.raises(InputError, match=r"samples=10.5 must be a whole number of samples; give e.g. samples=10"):
        Budget(samples=10.5)
    with pytest.raises(InputError, match="tokens=0.5 must be a whole"):
        Budget(tokens=0.5)
    assert Budget(samples=10.0, dollars=0.5).samples == 10


def test_a_fractional_count_stored_by_an_older_version_still_loads_as_its_whole_part() -> None:
    assert Budget.from_dict({"samples": 10.5, "dollars": 1.25}) == Budget(samples=10, dollars=1.25)


def test_calibration_error_refuses_confidences_outside_zero_one() -> None:
    with pytest.raises(InvalidArgument, match=r"confidence\[1\]=1.7 is outside \[0, 1\] \(1 such values\)"):
        expected_calibration_error([0.2, 1.7, 0.9], [0, 1, 1])
    with pytest.raises(ValueError, match="outside"):
        reliability_table([-3.0], [1])
    with pytest.raises(InvalidArgument, match="whole number of bins"):
        reliability_table([0.5], [1], bins=2.5)  # type: ignore[arg-type]
    assert expected_calibration_error([0.0, 1.0], [0, 1]) == 0.0


def _write_records(path: Path) -> Path:
    rows = [{"problem": "p1", "config": "m", "text": "a", "answer": "a", "correct": True},
            {"problem": "p1", "config": "m", "text": "b", "answer": "b", "correct": False}]  # fmt: skip
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_import_takes_a_store_path_and_refuses_a_name_already_there(tmp_path: Path) -> None:
    records = _write_records(tmp_path / "rec.jsonl")
    db = tmp_path / "s.db"
    info = import_recorded(db, records, "imp")
    assert info.spent.samples == 2
    with pytest.raises(InputError, match=r"a run named .imp. already exists in .*s\.db; choose another --name"):
        import_recorded(str(db), records, "imp")
    with open_store(db) as store:  # the run first imported is untouched
        assert store.get_run("imp").spent.samples == 2
        assert import_recorded(store, records, "imp-2").spent.samples == 2


def test_a_sample_journal_closes_its_file_at_the_end_of_a_with_block(tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    done = Sample(run="r", problem="p", config="c", index=0, seed=1, state=SampleState.DONE, text="x", answer="x")
    with SampleJournal(path) as journal:
        journal.add([done])
        assert journal._file is not None
    assert journal._file is None
    assert len(SampleJournal(path)) == 1


def test_evaluation_estimators_raise_a_value_error_python_code_can_catch() -> None:
    import numpy as np

    from budgetlab.evaluation import optimal_split, plain_mean

    with pytest.raises(ValueError, match="costly scores must be one per item"):
        plain_mean(np.ones((2, 2)))
    with pytest.raises(InvalidArgument):
        optimal_split(-1, 1.0, 0.1, 0.5)


def test_problems_given_to_run_are_checked_like_a_tasks(tmp_path: Path) -> None:
    import budgetlab
    from budgetlab import Problem

    records = _write_records(tmp_path / "rec.jsonl")
    db = tmp_path / "s.db"
    with pytest.raises(InputError, match="problem id 'p1' appears twice; ids must be unique"):
        budgetlab.run("dup", f"replay:{records}", store=db, problems=[Problem("p1", "x"), Problem("p1", "y")])
    with pytest.raises(InputError, match=r"problem 'p1' holds a value a run cannot record .*metadata as JSON values"):
        budgetlab.run("meta", f"replay:{records}", store=db, problems=[Problem("p1", "x", metadata={"when": {1, 2}})])
    with open_store(db) as store:
        assert store.list_runs() == []  # nothing recorded
    made = (p for p in [Problem("p1", "x", reference="a")])  # a generator
    out = budgetlab.run("gen", f"replay:{records}", store=db, problems=made, policy="fixed:k=2")
    assert out.drawn == 2


def test_a_backend_that_closes_with_a_plain_def_finishes_its_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import budgetlab
    from budgetlab.backends import BACKENDS, ReplayBackend

    class PlainClose(ReplayBackend):
        def aclose(self):  # type: ignore[override]
            self.closed = True

    monkeypatch.setitem(BACKENDS, "plainclose", PlainClose)
    records = _write_records(tmp_path / "rec.jsonl")
    out = budgetlab.run("c", f"plainclose:{records}", store=tmp_path / "s.db", policy="fixed:k=2")
    assert out.state is budgetlab.RunState.DONE


@pytest.mark.parametrize(
    ("selector", "match"),
    [
        ("class", r"got the class MajorityVote; e.g. selector=MajorityVote\(\)"),
        (3, r"got int 3; e.g. selector=MajorityVote\(\)"),
        ("tuple", r"selector 'tuple' returned tuple \(\('a', True, 1.0\)\); select must return budgetlab.selectors.Selection"),
        ("yes", r"selector 'yes' returned Selection \(\"correct='yes'\"\)"),
    ],
)
def test_a_custom_selector_that_breaks_its_contract_is_one_input_error(tmp_path: Path, selector, match: str) -> None:
    from budgetlab.analysis import build_report
    from budgetlab.selectors import MajorityVote, Selection

    class Tuple:
        name = "tuple"

        def select(self, samples):
            return ("a", True, 1.0)

    class Yes:
        name = "yes"

        def select(self, samples):
            return Selection("a", "yes", 1.0)  # type: ignore[arg-type]

    given = {"class": MajorityVote, "tuple": Tuple(), "yes": Yes()}.get(selector, selector)
    db = tmp_path / "s.db"
    import_recorded(db, _write_records(tmp_path / "rec.jsonl"), "imp")
    with pytest.raises(InputError, match=match):
        build_report(db, "imp", selector=given, n_boot=10)


def test_the_selected_answers_interval_is_never_of_zero_width(tmp_path: Path) -> None:
    from budgetlab.analysis import build_report

    path = tmp_path / "right.jsonl"
    path.write_text("".join(json.dumps({"problem": f"p{i}", "config": "m", "text": "a", "answer": "a", "correct": True}) + "\n"
                            for i in range(5)))  # fmt: skip
    import_recorded(tmp_path / "s.db", path, "right")
    selection = build_report(tmp_path / "s.db", "right", n_boot=50)["configs"]["m"]["selection"]
    assert selection["accuracy"] == 1.0
    lo, hi = selection["ci"]
    assert hi == 1.0 and 0.5 < lo < 0.6  # Wilson for 5 of 5: 0.566; the bootstrap gave [1, 1]


def test_select_names_a_tie_at_the_top_of_the_full_evaluation(tmp_path: Path, capsys) -> None:
    from budgetlab.cli._main import main

    path = tmp_path / "scores.csv"
    path.write_text("method,a,b,c,d\np1,1,0,1,0\np2,0,1,0,1\np3,0,0,0,0\n")
    assert main(["select", str(path), "--budget", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["agrees_with_full_evaluation"] is True
    assert report["full_evaluation_tied_with"] == ["p2"] if report["full_evaluation_best"] == "p1" else ["p1"]
    assert main(["select", str(path), "--budget", "1"]) == 0
    assert "ties p1 with p2 at the best mean" in " ".join(capsys.readouterr().out.split())


def test_a_reading_command_refuses_an_empty_file_as_a_store(tmp_path: Path, capsys) -> None:
    from budgetlab.cli._main import main

    empty = tmp_path / "empty.db"
    empty.touch()
    assert main(["runs", "--store", str(empty)]) == 2
    assert "is an empty file (0 bytes), not a budgetlab store" in capsys.readouterr().err
    assert empty.stat().st_size == 0  # nothing written into it
