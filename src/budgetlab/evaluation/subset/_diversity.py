"""Output diversity: rate first the items whose system outputs differ most from each other
(outputs that are all alike cannot tell systems apart). Needs only the outputs, no metric."""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass

import numpy as np

from budgetlab.errors import InvalidArgument
from budgetlab.evaluation.subset._data import ItemSet
from budgetlab.evaluation.subset._random import by_utility

__all__ = ["OutputDiversity", "similarity"]


def _grams(text: str, kind: str) -> Counter[str]:
    if kind == "unigram":
        return Counter(text.split())
    text = " ".join(text.split())
    return Counter(text[i : i + 3] for i in range(max(0, len(text) - 2)))


def similarity(a: str, b: str, kind: str = "unigram") -> float:
    """Dice overlap of word unigrams (``"unigram"``) or character trigrams (``"char"``), in [0, 1]."""
    ga, gb = _grams(a, kind), _grams(b, kind)
    total = sum(ga.values()) + sum(gb.values())
    if total == 0:
        return 1.0
    return 2 * sum((ga & gb).values()) / total


@dataclass(frozen=True)
class OutputDiversity:
    """Utility of an item: minus the mean pairwise similarity of its systems' outputs."""

    kind: str = "unigram"
    name: str = "diversity"

    def __post_init__(self) -> None:
        if self.kind not in ("unigram", "char"):
            raise InvalidArgument(f"diversity kind must be 'unigram' or 'char', got kind={self.kind!r}")

    def utilities(self, data: ItemSet) -> np.ndarray:
        out = np.zeros(len(data))
        for i, item in enumerate(data.items):
            outputs = list(item.tgt.values())
            pairs = [similarity(a, b, self.kind) for a, b in itertools.combinations(outputs, 2)]
            out[i] = -float(np.mean(pairs)) if pairs else 0.0
        return out

    def order(self, data: ItemSet, k: int, rng: np.random.Generator) -> np.ndarray:
        if not any(item.tgt for item in data.items):
            raise InvalidArgument(f"evaluation set {data.name} has no outputs ('tgt'); diversity needs them")
        return by_utility(self.utilities(data), rng, data.presence())
