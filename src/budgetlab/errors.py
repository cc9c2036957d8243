"""Errors a user can act on.

Every error raised for bad input is a :class:`BudgetlabError` whose message is one line naming
the problem, the offending value and the fix; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

__all__ = ["BudgetlabError", "InvalidArgument", "RunNotFound", "StoreError", "InputError", "UnpricedModelWarning", "pip_dependency_error"]


class BudgetlabError(Exception):
    """A user-facing error: the message is a complete, one-line explanation with the fix."""

    exit_code = 2


class InputError(BudgetlabError):
    """A file, option or value given by the user is malformed."""


class InvalidArgument(InputError, ValueError):
    """A bad argument to a library function (an estimator, a fit, a calibrator): a ValueError, as
    Python code expects, and an InputError, so that ``except BudgetlabError`` and the CLI's
    one-line message cover it too."""


class StoreError(BudgetlabError):
    """The store cannot be used as asked (not a budgetlab store, newer schema, ...)."""


class RunNotFound(BudgetlabError):
    """A run name that is not in the store."""


class UnpricedModelWarning(UserWarning):
    """A hosted model with no known price: its samples count as $0 (a dollar budget of a run
    is refused instead, since it could not limit them)."""


def pip_dependency_error(feature: str, package: str, extra: str | None = None) -> BudgetlabError:
    """The error for an optional dependency that is not installed, with the exact install command."""
    target = f"budgetlab[{extra}]" if extra else package
    return BudgetlabError(
        f"{feature} needs the package '{package}', which is not installed; "
        f"install it with: pip install '{target}'"
    )
