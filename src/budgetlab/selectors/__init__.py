"""Selectors settle each problem on one answer from its samples: vote, weight, rank or verify."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from budgetlab.core.spec import check_arguments, parse_spec
from budgetlab.errors import InputError
from budgetlab.selectors._base import Selection, Selector
from budgetlab.selectors._best_of_n import BestOfN
from budgetlab.selectors._first_verified import FirstVerified
from budgetlab.selectors._majority import MajorityVote
from budgetlab.selectors._weighted import WeightedVote

__all__ = [
    "SELECTORS",
    "BestOfN",
    "FirstVerified",
    "MajorityVote",
    "Selection",
    "Selector",
    "WeightedVote",
    "make_selector",
]

SELECTORS: dict[str, Callable[..., Selector]] = {
    "majority": MajorityVote,
    "weighted": WeightedVote,
    "best_of_n": BestOfN,
    "first_verified": FirstVerified,
}


def make_selector(name: str, options: Mapping[str, Any] | None = None) -> Selector:
    """A selector by name, with ``options``; or from a spec ``"NAME:key=value,..."``."""
    if ":" in name and options is None:
        name, options = parse_spec(name, "selector")
    factory = SELECTORS.get(name)
    if factory is None:
        raise InputError(f"unknown selector {name!r}; use one of: {', '.join(sorted(SELECTORS))} (e.g. --selector weighted:source=score)")
    check_arguments(factory, options, f"selector {name}", "weighted:source=score")
    return factory(**dict(options or {}))
