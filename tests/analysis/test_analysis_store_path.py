"""The readers of a run take the store as ``budgetlab.run`` does: an open store or its path.

The README's snippet runs with ``store="budgetlab.db"`` and then had to wrap the same path in
``open_store`` for the report; a path passed straight on failed with an AttributeError.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from budgetlab import Budget, InputError, build_report, open_store, run
from budgetlab.analysis import budget_curves, plot_budget_curves


@pytest.fixture
def store(tmp_path: Path) -> Path:
    replay = tmp_path / "samples.jsonl"
    with replay.open("w") as f:
        for problem, flags in {"p0": [1, 0, 1], "p1": [0, 0, 1]}.items():
            for i, ok in enumerate(flags):
                f.write(json.dumps({"problem": problem, "config": "m", "answer": f"a{ok}{i % 2}", "correct": bool(ok)}) + "\n")
    path = tmp_path / "runs.db"
    run("r", f"replay:{replay}", store=str(path), policy="fixed:k=3", budget=Budget(samples=6))
    return path


def test_report_and_curves_take_a_path_like_run(store: Path) -> None:
    with open_store(str(store)) as st:
        want = build_report(st, "r", n_boot=20)
    assert build_report(str(store), "r", n_boot=20) == want
    assert build_report(store, "r", n_boot=20) == want  # a Path too
    assert budget_curves(str(store), "r", n_boot=5)["configs"]["m"]["pass_at_k"]["1"] == pytest.approx(0.5)


def test_a_missing_path_is_refused_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nope.db"
    with pytest.raises(InputError, match=r"store .*nope.db does not exist"):
        build_report(str(missing), "r")
    assert not missing.exists()  # opening it would have left an empty store behind
    with pytest.raises(InputError, match=r"build_report needs a store \(open_store\(path\)\) or its path, got int"):
        build_report(3, "r")  # type: ignore[arg-type]


def test_a_frontier_without_token_counts_says_so(store: Path, tmp_path: Path) -> None:
    # Replayed samples without token counts have no cost: the frontier plot used to be empty,
    # with matplotlib's "No artists with labels found" warning.
    with open_store(str(store)) as st:
        curves = budget_curves(st, "r", n_boot=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        written = plot_budget_curves(curves, tmp_path / "cov.png", tmp_path / "frontier.png")
    assert [p.name for p in written] == ["cov.png", "frontier.png"]
