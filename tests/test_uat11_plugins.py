"""A researcher's own plug-ins (policy, selector, task) wired into budgetlab from Python: found by
a user acceptance pass that wrote each kind of plug-in from its contract in ``_base.py``."""

from __future__ import annotations

import inspect
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

import budgetlab
from budgetlab import Policy, Problem, Proposal, RunView, Sample
from budgetlab.errors import InputError
from budgetlab.policies import POLICIES, FixedK, SequentialStopping
from budgetlab.selectors import Selection, Selector
from budgetlab.tasks import TASKS, load_task


def _replay_file(tmp_path: Path) -> Path:
    path = tmp_path / "samples.jsonl"
    lines = [
        {"problem": f"p{p}", "config": "m", "answer": str((p + i) % 2), "correct": (p + i) % 2 == 0}
        for p in range(3)
        for i in range(6)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


@dataclass(frozen=True)
class SumOfChunks:
    """A user's policy whose argument is a tuple: draws sum(chunks) samples per pair."""

    chunks: tuple[int, ...] = (1,)
    name: str = "sum_of_chunks"

    def propose(self, view: RunView, limit: int) -> list[Proposal]:
        want = sum(self.chunks)
        return [
            Proposal(p.id, c.id, want - view.count(p.id, c.id))
            for p in view.problems
            for c in view.configs
            if view.count(p.id, c.id) < want
        ]

    def planned(self, view: RunView) -> int | None:
        return sum(self.chunks) * len(view.problems) * len(view.configs)


@dataclass(frozen=True)
class WithScorer:
    """A user's policy that holds a function: it cannot be rebuilt from a run's record."""

    scorer: object = None
    name: str = "with_scorer"

    def propose(self, view: RunView, limit: int) -> list[Proposal]:
        return []

    def planned(self, view: RunView) -> int | None:
        return 0


def test_policy_and_selector_protocols_declare_name_read_only() -> None:
    """``name: str`` in a Protocol is a settable attribute to a type checker, and every built-in
    policy and selector (frozen dataclasses) has a read-only ``name``: mypy refused
    ``run(policy=FixedK(k=8))``, the docstring's own example, and any user policy or selector
    written as a frozen dataclass ("Protocol member Policy.name expected settable variable")."""
    for protocol in (Policy, Selector):
        assert isinstance(inspect.getattr_static(protocol, "name", None), property), protocol

    @dataclass(frozen=True)
    class Longest:
        name: str = "longest"

        def select(self, samples: Sequence[Sample]) -> Selection:
            return Selection(None, None, None)

    # still structural at run time
    assert isinstance(FixedK(k=2), Policy) and isinstance(SumOfChunks(), Policy)
    assert isinstance(Longest(), Selector)
    assert not isinstance(object(), Policy)


def test_mypy_accepts_the_built_in_plugins_of_every_family_as_their_protocols(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    script = tmp_path / "user.py"
    script.write_text(
        "from budgetlab import FixedK, Policy\n"
        "from budgetlab.selectors import MajorityVote, Selector\n"
        "from budgetlab.verifiers import ExactVerifier, MathVerifier, Verifier\n"
        "from budgetlab.backends import Backend, ReplayBackend\n"
        "from budgetlab.allocation import Allocator, HillClimbAllocator\n"
        "from budgetlab.calibration import Calibrator, IsotonicCalibrator, PlattCalibrator\n"
        "def p(x: Policy) -> None: ...\n"
        "def s(x: Selector) -> None: ...\n"
        "def v(x: Verifier) -> None: ...\n"
        "def b(x: Backend) -> None: ...\n"
        "def a(x: Allocator) -> None: ...\n"
        "def c(x: Calibrator) -> None: ...\n"
        "p(FixedK(k=8))\n"
        "s(MajorityVote())\n"
        "v(ExactVerifier())\n"
        "v(MathVerifier())\n"
        "b(ReplayBackend('x.jsonl'))\n"
        "a(HillClimbAllocator())\n"
        "c(IsotonicCalibrator.fit([0.1, 0.9], [0, 1]))\n"
        "c(PlattCalibrator.fit([0.1, 0.9], [0, 1]))\n"
    )
    out, err, status = api.run([str(script), "--no-incremental", "--cache-dir", str(tmp_path / "cache")])
    assert status == 0, out + err


def test_a_policy_with_a_tuple_argument_resumes_with_the_same_instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The run recorded chunks=[2, 1] (JSON), and giving the very same SumOfChunks(chunks=(2, 1))
    again to resume was refused: "run exists with policy_args={'chunks': [2, 1]}, not {'chunks': (2, 1)}"."""
    monkeypatch.setitem(POLICIES, "sum_of_chunks", SumOfChunks)
    samples, store = _replay_file(tmp_path), tmp_path / "runs.db"
    first = budgetlab.run("chunks", f"replay:{samples}", store=store, policy=SumOfChunks(chunks=(2, 1)))
    assert first.state is budgetlab.RunState.DONE and first.spent.samples == 9
    again = budgetlab.run("chunks", f"replay:{samples}", store=store, policy=SumOfChunks(chunks=(2, 1)), budget="samples=100")
    assert again.state is budgetlab.RunState.DONE and again.drawn == 0
    by_name = budgetlab.run("chunks", store=store, policy="sum_of_chunks", policy_args={"chunks": (2, 1)})
    assert by_name.drawn == 0


def test_a_policy_argument_json_cannot_hold_is_one_input_error_before_recording(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A function in a policy's arguments failed with json's bare "TypeError: Object of type
    function is not JSON serializable" from inside the store."""
    monkeypatch.setitem(POLICIES, "with_scorer", WithScorer)
    samples, store = _replay_file(tmp_path), tmp_path / "runs.db"
    for policy, args in ((WithScorer(scorer=lambda s: 1.0), None), ("with_scorer", {"scorer": {1, 2}})):
        with pytest.raises(InputError, match="scorer=.*cannot be recorded"):
            budgetlab.run("fn", f"replay:{samples}", store=store, policy=policy, policy_args=args)
    with budgetlab.open_store(store) as st:
        assert st.find_run("fn") is None


def test_numpy_policy_arguments_are_recorded_as_plain_numbers(tmp_path: Path) -> None:
    """policy_args={"k": np.int64(2)} (k from a NumPy computation) was refused by fixed as not a
    whole number; it is the whole number 2."""
    samples, store = _replay_file(tmp_path), tmp_path / "runs.db"
    out = budgetlab.run("np", f"replay:{samples}", store=store, policy="fixed", policy_args={"k": np.int64(2)})
    assert out.spent.samples == 6
    with budgetlab.open_store(store) as st:
        assert st.get_run("np").spec.policy_args == {"k": 2}


def test_an_unregistered_policy_instance_error_says_how_to_register_it(tmp_path: Path) -> None:
    @dataclass(frozen=True)
    class Mine(SequentialStopping):
        max_samples: int = 4
        name: str = "mine"

        def should_stop(self, answers: Sequence[object], confidences: object = None) -> bool:
            return False

    with pytest.raises(InputError, match=r"POLICIES\['mine'\] = Mine"):
        budgetlab.run("mine", f"replay:{_replay_file(tmp_path)}", store=tmp_path / "runs.db", policy=Mine())


@pytest.mark.parametrize(
    ("made", "match"),
    [
        ([Problem("a", "x"), Problem("a", "y")], "'a' appears twice"),
        ([{"id": "a", "prompt": "x"}], r"returned dict .* \(item 0\)"),
        (None, "returned NoneType"),
        ([Problem(1, "x")], "ids must be non-empty strings"),  # type: ignore[arg-type]
    ],
)
def test_a_registered_task_that_returns_bad_problems_is_one_input_error(made: object, match: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A task factory added to TASKS is called by load_task (and run(problems="mine:...")); what it
    returned went unchecked: duplicate ids surfaced as "StoreError: UNIQUE constraint failed",
    dicts as AttributeError, and int ids recorded as text so the run refused its own problems on
    resume ("exists with 2 problems, not the 2 (other) problems")."""
    monkeypatch.setitem(TASKS, "mine", lambda: made)
    with pytest.raises(InputError, match=match):
        load_task("mine")


def test_a_registered_task_runs_by_spec(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def people(n: int = 2) -> list[Problem]:
        return [Problem(f"p{i}", f"q{i}") for i in range(n)]

    monkeypatch.setitem(TASKS, "people", people)
    assert [p.id for p in load_task("people:n=3")] == ["p0", "p1", "p2"]
    assert [p.id for p in load_task("people")] == ["p0", "p1"]


def test_the_plugins_doc_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """docs/plugins.md's complete example (own backend, verifier, stopping policy, selector,
    problems from Python objects) runs as written; registries are restored afterwards."""
    import re

    from budgetlab.backends import BACKENDS
    from budgetlab.selectors import SELECTORS
    from budgetlab.verifiers import VERIFIERS

    saved = [(r, dict(r)) for r in (BACKENDS, VERIFIERS, POLICIES, SELECTORS)]
    doc = (Path(__file__).resolve().parents[1] / "docs" / "plugins.md").read_text()
    code = re.findall(r"```python\n(.*?)```", doc, re.S)[0]
    monkeypatch.chdir(tmp_path)
    try:
        import sys
        import types

        module = types.ModuleType("plugins_doc")  # dataclasses look their module up in sys.modules
        monkeypatch.setitem(sys.modules, "plugins_doc", module)
        namespace = module.__dict__
        exec(compile(code, "docs/plugins.md", "exec"), namespace)
        report = namespace["report"]
        assert isinstance(report, dict) and report["configs"]["echo-1"]["selection"]["selector"] == "highest_score"
        assert namespace["outcome"].state is budgetlab.RunState.DONE  # type: ignore[attr-defined]
    finally:
        for registry, before in saved:
            registry.clear()
            registry.update(before)
