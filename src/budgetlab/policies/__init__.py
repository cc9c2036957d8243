"""Policies decide how many samples each (problem, configuration) gets, and when to stop."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from budgetlab.core.spec import check_arguments
from budgetlab.errors import InputError
from budgetlab.policies._adaptive import AdaptiveConsistency
from budgetlab.policies._base import Policy, Proposal
from budgetlab.policies._bayes import BayesStopping, fit_bayes_stopping
from budgetlab.policies._confidence import ConfidenceStopping
from budgetlab.policies._esc import EarlyStoppingSC
from budgetlab.policies._fixed import FixedK
from budgetlab.policies._planner import CoveragePlanner
from budgetlab.policies._sequential import SequentialStopping

__all__ = [
    "POLICIES",
    "AdaptiveConsistency",
    "BayesStopping",
    "ConfidenceStopping",
    "CoveragePlanner",
    "EarlyStoppingSC",
    "FixedK",
    "Policy",
    "Proposal",
    "SequentialStopping",
    "fit_bayes_stopping",
    "make_policy",
]

POLICIES: dict[str, Callable[..., Policy]] = {
    "fixed": FixedK,
    "esc": EarlyStoppingSC,
    "adaptive": AdaptiveConsistency,
    "bayes": BayesStopping,
    "confidence": ConfidenceStopping,
    "planner": CoveragePlanner,
}


def _register_selection_policies() -> None:
    """Best-arm identification over configurations (budgetlab.evaluation) as run policies.
    Generic names get a prefix so that they read as evaluation policies on the command line."""
    from budgetlab.evaluation.selection import SELECTION_POLICIES

    for name, factory in SELECTION_POLICIES.items():
        POLICIES[name if name.startswith("ucbe") else f"select-{name}"] = factory


_register_selection_policies()


def make_policy(name: str, options: Mapping[str, Any] | None = None) -> Policy:
    factory = POLICIES.get(name)
    if factory is None:
        raise InputError(f"unknown policy {name!r}; use one of: {', '.join(sorted(POLICIES))} (e.g. --policy fixed:k=8)")
    check_arguments(factory, options, f"policy {name}", "fixed:k=8")
    return factory(**dict(options or {}))
