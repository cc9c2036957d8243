"""Found in acceptance testing of the stopping policies: file arguments (a Bayes prior, a
calibrator) given by path, as the command line gives them.

* ``bayes:prior=FILE`` whose JSON object has no ``prior`` (a calibrator file, a typo) ran with
  the uniform default prior, silently;
* ``bayes:calibrator=FILE`` kept the path: ``args()`` crashed and ``save_prior`` wrote the path;
* the run recorded the path, not what the file held: a report made from another folder lost the
  policy's ``adaptive`` estimates and ``savings``, a resume from there failed, and a file changed
  between a run and its resume changed the decisions of the resumed run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from budgetlab.analysis import build_report
from budgetlab.errors import InputError
from budgetlab.policies import BayesStopping, ConfidenceStopping, CoveragePlanner, make_policy, policy_spec
from budgetlab.runner import run
from budgetlab.stores import open_store

PRIOR = {"prior": [[0.9, 0.1, 3.0, 0.95, 0.05], [0.5, 0.3, 1.0, 0.6, 0.3]], "calibrator": None}
PLATT = {"kind": "platt", "a": 4.0, "b": -2.0, "logit": False}


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_a_prior_file_without_a_prior_is_refused(tmp_path: Path) -> None:
    calibrator = _write(tmp_path / "cal.json", PLATT)  # the wrong file
    with pytest.raises(InputError, match=r"prior file '.*cal\.json' has no 'prior'.*save_prior"):
        make_policy(f"bayes:prior={calibrator}")
    with pytest.raises(InputError, match=r"has no 'prior'"):
        BayesStopping(prior=str(_write(tmp_path / "typo.json", {"priors": PRIOR["prior"]})))


def test_a_bayes_calibrator_file_is_read_into_its_mapping(tmp_path: Path) -> None:
    path = _write(tmp_path / "cal.json", PLATT)
    policy = BayesStopping(prior=PRIOR["prior"], calibrator=str(path))
    assert policy.calibrator == PLATT
    assert policy.args()["calibrator"] == PLATT
    policy.save_prior(tmp_path / "saved.json")
    assert json.loads((tmp_path / "saved.json").read_text())["calibrator"] == PLATT


def test_file_arguments_are_recorded_by_their_content(tmp_path: Path) -> None:
    prior = _write(tmp_path / "prior.json", {**PRIOR, "calibrator": PLATT})
    name, args = policy_spec(f"bayes:prior={prior},cost=0.001")
    assert name == "bayes"
    assert args == {"prior": PRIOR["prior"], "calibrator": PLATT, "cost": 0.001}
    assert make_policy(name, args).atoms() == make_policy(f"bayes:prior={prior},cost=0.001").atoms()
    cal = _write(tmp_path / "cal.json", PLATT)
    assert policy_spec("confidence", {"calibrator": str(cal), "threshold": 0.8})[1] == {"calibrator": PLATT, "threshold": 0.8}
    planner_prior = {"configs": ["m"], "atoms": [[0.5], [0.0]], "weights": [0.7, 0.3]}
    planner_file = _write(tmp_path / "planner.json", planner_prior)
    assert policy_spec(f"planner:prior={planner_file}")[1] == {"prior": planner_prior}
    CoveragePlanner(**policy_spec(f"planner:prior={planner_file}")[1])  # rebuilt from the record
    # Mappings and instances are recorded as they are.
    assert policy_spec("bayes", {"prior": PRIOR["prior"]})[1] == {"prior": PRIOR["prior"]}
    assert policy_spec(BayesStopping(prior=str(prior)))[1]["calibrator"] == PLATT


def test_a_run_with_a_prior_file_reports_and_resumes_from_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    replay = tmp_path / "samples.jsonl"
    lines = []
    for p in range(6):
        answers = ["a"] * 5 if p % 2 else ["a", "b", "c", "a", "b", "a", "a", "a"]
        lines += [json.dumps({"problem": f"p{p}", "config": "m", "answer": x, "correct": x == "a"}) for x in answers]
    replay.write_text("\n".join(lines) + "\n", encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    _write(work / "prior.json", PRIOR)
    store = str(tmp_path / "runs.db")
    monkeypatch.chdir(work)
    run("r", f"replay:{replay}", policy="bayes:prior=prior.json,cost=0.001,max_samples=8", budget="samples=10",
        verifier="recorded", store=store)  # fmt: skip
    os.remove(work / "prior.json")  # or changed, or another folder: the run keeps what it was given
    monkeypatch.chdir(tmp_path)
    first = build_report(open_store(store), "r")
    assert first["savings"] is not None and "adaptive" in first["configs"]["m"]
    run("r", store=store, budget="samples=100")  # resumes from here, with the prior it started with
    done = build_report(open_store(store), "r")
    assert done["state"] == "done" and done["savings"]["max_samples"] == 8


def test_a_wrong_calibrator_file_is_named_in_one_short_line(tmp_path: Path) -> None:
    prior = _write(tmp_path / "prior.json", {**PRIOR, "prior": PRIOR["prior"] * 200})  # a Bayes prior, not a calibrator
    with pytest.raises(InputError) as err:
        make_policy(f"confidence:calibrator={prior}")
    message = str(err.value)
    assert "unknown calibrator kind None" in message and "'prior'" in message and "platt" in message
    assert "\n" not in message and len(message) < 300


@pytest.mark.parametrize(
    ("spec", "field"),
    [("esc:window=5,max_samples=3", "window"), ("adaptive:min_samples=50,max_samples=10", "min_samples"),
     ("bayes:min_samples=50,max_samples=10", "min_samples"), ("confidence:min_samples=20,max_samples=16", "min_samples")],
)
def test_a_rule_that_could_never_apply_before_the_cap_is_refused(spec: str, field: str) -> None:
    # It ran as fixed k = max_samples, silently (esc:window=5,max_samples=3 drew 3 per problem).
    with pytest.raises(InputError, match=rf"{field}=\d+ > max_samples=\d+.*give {field} <= max_samples"):
        make_policy(spec)
