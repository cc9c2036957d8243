"""``__all__`` is the public API: it names only what exists, and misses nothing public.

As httpx does (tests/test_exported_members.py): every name in a package's ``__all__`` exists,
and every public (non-underscore) class or function the package defines is listed. For the
top-level package "defined" means any class or function from budgetlab; for a subpackage, one
whose ``__module__`` is that subpackage or below it (a helper such as ``InputError`` that a
subpackage imports for its own use belongs to ``budgetlab.errors``, not to it).
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import pytest

import budgetlab

SUBPACKAGES = [
    "budgetlab.core",
    "budgetlab.stores",
    "budgetlab.backends",
    "budgetlab.policies",
    "budgetlab.verifiers",
    "budgetlab.analysis",
    "budgetlab.runner",
    "budgetlab.tasks",
    "budgetlab.selectors",
    "budgetlab.calibration",
    "budgetlab.testing",
    "budgetlab.allocation",
    "budgetlab.forecast",
    "budgetlab.evaluation",
    "budgetlab.pacing",
]
ALL_PACKAGES = ["budgetlab", *SUBPACKAGES]


def _public_members(module: ModuleType, owner: str) -> set[str]:
    return {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and (getattr(value, "__module__", "") == owner or getattr(value, "__module__", "").startswith(owner + "."))
    }


@pytest.mark.parametrize("package", ALL_PACKAGES)
def test_all_names_exist_and_are_unique(package: str) -> None:
    module = importlib.import_module(package)
    names = module.__all__
    assert all(isinstance(n, str) for n in names)
    missing = [n for n in names if not hasattr(module, n)]
    assert missing == [], f"{package}.__all__ names what it does not define: {missing}"
    duplicates = sorted({n for n in names if names.count(n) > 1})
    assert duplicates == [], f"{package}.__all__ lists twice: {duplicates}"


def test_top_level_exports_every_public_class_and_function() -> None:
    public = _public_members(budgetlab, "budgetlab")
    unlisted = sorted(public - set(budgetlab.__all__))
    assert unlisted == [], f"budgetlab defines public names missing from __all__: {unlisted}"


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_subpackage_exports_every_public_class_and_function(package: str) -> None:
    module = importlib.import_module(package)
    public = _public_members(module, package)
    unlisted = sorted(public - set(module.__all__))
    assert unlisted == [], f"{package} defines public names missing from __all__: {unlisted}"


def test_top_level_names_are_the_subpackages_objects() -> None:
    """A name exported at the top is the very object its subpackage exports (no stale copies)."""
    for package in SUBPACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            if name in budgetlab.__all__:
                assert getattr(budgetlab, name) is getattr(module, name), f"budgetlab.{name} is not {package}.{name}"


def test_version_is_exposed() -> None:
    assert isinstance(budgetlab.__version__, str) and budgetlab.__version__


def test_every_plug_in_family_is_reachable_from_the_package() -> None:
    import importlib

    import budgetlab

    for name in ("allocation", "calibration", "evaluation", "forecast", "pacing", "selectors", "testing"):
        assert getattr(budgetlab, name) is importlib.import_module(f"budgetlab.{name}")
