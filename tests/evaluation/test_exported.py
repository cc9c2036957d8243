"""``__all__`` of the evaluation packages names only what exists and misses nothing public
(the same check as tests/test_exported_members.py, for this family)."""

from __future__ import annotations

import importlib
import inspect

import pytest

PACKAGES = ["budgetlab.evaluation", "budgetlab.evaluation.selection", "budgetlab.evaluation.subset"]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_complete_and_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = set(module.__all__)
    assert all(hasattr(module, n) for n in exported)
    public = {
        n for n, v in vars(module).items()
        if not n.startswith("_") and (inspect.isclass(v) or inspect.isfunction(v))
        and getattr(v, "__module__", "").startswith(name)
    }  # fmt: skip
    assert public <= exported, public - exported
