"""Several methods' orders averaged: an item's place is the mean of its places in each order.

Why: which single method wins depends on the data (IRT on the six NLG sets of
``bench/subset.py``, output diversity on REALSumm in ``bench/subset_heldout.py``, metric
variance on pass/fail LLM samples), and a user rating a new set cannot know beforehand which
kind it is. Averaging the places of a metric-based method and diversity gives up a little where
one of them is best for much less loss where it is worst (the numbers are in bench/README.md).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import numpy as np

from budgetlab.errors import InvalidArgument
from budgetlab.evaluation._base import SubsetMethod
from budgetlab.evaluation.subset._data import ItemSet
from budgetlab.evaluation.subset._random import by_utility

__all__ = ["CombinedRanks"]

EXAMPLE = "combined:methods=irt+diversity"


@dataclass(frozen=True)
class CombinedRanks:
    """Order items by their mean place in the orders of ``methods`` (names joined by ``+``,
    each with its default options). ``metric`` goes to the members that read a metric."""

    methods: str = "irt+diversity"
    metric: str = "auto"
    name: str = "combined"

    def __post_init__(self) -> None:
        self.members()  # refuse a bad list when the method is made, not when it first orders

    def members(self) -> list[SubsetMethod]:
        from budgetlab.evaluation.subset import SUBSET_METHODS

        names = [n.strip() for n in str(self.methods).split("+")]
        if len(names) < 2 or not all(names):
            raise InvalidArgument(f"combined needs two or more methods joined by '+', got methods={self.methods!r}; e.g. {EXAMPLE}")
        unknown = [n for n in names if n not in SUBSET_METHODS or n == self.name]
        if unknown:
            known = ", ".join(n for n in SUBSET_METHODS if n != self.name)
            raise InvalidArgument(f"combined cannot use {unknown[0]!r}; combine two or more of: {known} (e.g. {EXAMPLE})")
        if len(set(names)) < len(names):
            raise InvalidArgument(f"combined lists a method twice in methods={self.methods!r}; name each once (e.g. {EXAMPLE})")
        built = []
        for n in names:
            factory = SUBSET_METHODS[n]
            takes_metric = "metric" in inspect.signature(factory).parameters
            built.append(factory(metric=self.metric) if takes_metric else factory())
        return built

    def order(self, data: ItemSet, k: int, rng: np.random.Generator) -> np.ndarray:
        n = len(data)
        places = np.zeros(n)
        for member in self.members():
            order = np.asarray(member.order(data, n, rng), int)
            places[order] += np.arange(n)
        return by_utility(-places, rng, data.presence())
