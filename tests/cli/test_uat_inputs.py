"""Inputs users actually send: files with a byte-order mark, a store folder instead of its file,
arguments given twice or unknown, counts that are not counts, a rank larger than the matrix."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from budgetlab.allocation import SuccessCounts
from budgetlab.backends import ReplayBackend
from budgetlab.cli._main import main
from budgetlab.core import Problem
from budgetlab.core.spec import parse_spec
from budgetlab.errors import InputError, InvalidArgument
from budgetlab.evaluation.subset import load_items
from budgetlab.policies import make_policy


def _cli(capsys, *args: object) -> tuple[int, str]:
    capsys.readouterr()
    rc = main([str(a) for a in args], console=Console(width=200, no_color=True))
    return rc, capsys.readouterr().err


def test_jsonl_files_with_a_byte_order_mark_are_read(tmp_path: Path) -> None:
    items = tmp_path / "items.jsonl"
    items.write_text('{"i": 1, "scores": {"a": {"bleu": 1, "human": 2}, "b": {"bleu": 2, "human": 3}}}\n', encoding="utf-8-sig")
    assert len(load_items(items)) == 1
    recorded = tmp_path / "recorded.jsonl"
    recorded.write_text('{"problem": "p", "config": "c", "answer": "4", "correct": true}\n', encoding="utf-8-sig")
    assert [p.id for p in ReplayBackend(recorded).problems()] == ["p"]


def test_a_problem_missing_from_a_replay_file_names_one_that_is_there(tmp_path: Path) -> None:
    recorded = tmp_path / "recorded.jsonl"
    recorded.write_text('{"problem": "p", "config": "c", "answer": "4", "correct": true}\n')
    backend = ReplayBackend(recorded)
    with pytest.raises(InputError, match=r"problem '5' is not in replay file .*; give problems whose ids appear in it, e.g. 'p'"):
        backend.check([Problem(id="5", prompt="x")], backend.configs())


def test_a_store_folder_is_called_a_folder(tmp_path: Path, capsys) -> None:
    rc, err = _cli(capsys, "select", "--run", "x", "--store", tmp_path)
    assert rc == 2 and f"store {tmp_path} is a directory; give the store file in it" in err


def test_an_argument_given_twice_is_refused_and_examples_name_the_thing_configured() -> None:
    with pytest.raises(InputError, match="gives batch twice"):
        parse_spec("planner:batch=4,batch=5", "policy")
    with pytest.raises(InputError, match=r"policy esc does not take 'foo'; it takes: window, max_samples \(e.g. esc:window=5\)"):
        make_policy("esc", {"foo": 1})


@pytest.mark.parametrize("n", ["x", "inf", -1, 2.5, None])
def test_counts_that_are_not_whole_counts_are_one_error(n: object) -> None:
    with pytest.raises(InvalidArgument, match="row 0 .* with whole counts"):
        SuccessCounts.from_rows([{"problem": "a", "config": "b", "n": n, "correct": 1}])


def test_a_rank_larger_than_the_matrix_is_refused_not_run_for_minutes(tmp_path: Path, capsys) -> None:
    matrix = tmp_path / "m.json"
    rng = np.random.default_rng(0)
    matrix.write_text(json.dumps({"methods": ["a", "b", "c"], "examples": [f"e{j}" for j in range(30)],
                                  "scores": rng.random((3, 30)).round(3).tolist()}))  # fmt: skip
    rc, err = _cli(capsys, "select", matrix, "--algorithm", "ucbe-lrf:rank=1000", "--budget", "0.5")
    assert rc == 2 and "rank=1000 is too large for 3 methods x 30 examples; give rank <= 2" in err


def test_library_entry_points_take_paths_and_specs(tmp_path: Path) -> None:
    from budgetlab.evaluation.subset import Item, ItemSet, choose, make_subset_method
    from budgetlab.stores import open_store

    with open_store(tmp_path / "s.db") as store:  # a Path, as run() and build_report take
        assert store.list_runs() == []
    with pytest.raises(InputError, match="a store is a file path or a URL, got int 3"):
        open_store(3)  # type: ignore[arg-type]
    assert make_subset_method("irt:metric=bleu").metric == "bleu"
    items = [Item(id=str(i), scores={s: {"bleu": float(i * j), "human": 1.0} for j, s in enumerate("abc")}) for i in range(10)]
    assert len(choose(ItemSet(items, "x"), "variance", size=3)) == 3


def test_a_progress_callback_that_raises_at_once_ends_the_run_failed_not_running(tmp_path: Path) -> None:
    from budgetlab.core.run import RunState
    from budgetlab.runner import run
    from budgetlab.stores import SQLiteStore

    recorded = tmp_path / "recorded.jsonl"
    recorded.write_text('{"problem": "p", "config": "c", "answer": "4", "correct": true}\n')

    def broken(progress: object) -> None:
        raise RuntimeError("callback bug")

    with pytest.raises(RuntimeError, match="callback bug"):
        run("r", f"replay:{recorded}", store=str(tmp_path / "s.db"), on_progress=broken)
    with SQLiteStore(tmp_path / "s.db") as store:
        assert store.get_run("r").state is RunState.FAILED
