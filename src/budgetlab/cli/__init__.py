"""The ``budgetlab`` command line."""

from budgetlab.cli._main import main

__all__ = ["main"]
