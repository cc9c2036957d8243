"""Best-arm identification over (method x example): which method is best, for a fraction of
the cost of evaluating every method on every example.

Algorithms (one module each): uniform allocation (the baseline), successive halving, UCB-E
and UCB-E with low-rank factorization (Zhou et al. 2024, "On Speeding Up Language Model
Evaluation"). Each runs offline on a recorded score matrix (:func:`simulate`) or live, as a
run policy (:class:`SelectionPolicy`, registered by name in :data:`SELECTION_POLICIES`).

Every algorithm takes examples in one shared random order: the methods it compares have been
evaluated on the same examples, so example difficulty, shared by all methods, cancels out of
their differences (on LiveCodeBench the top two models' per-problem scores correlate at 0.8,
which makes a paired difference about half as noisy as an unpaired one).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from budgetlab.core.spec import check_arguments, parse_spec
from budgetlab.errors import InvalidArgument
from budgetlab.evaluation._base import BestArmAlgorithm
from budgetlab.evaluation.selection._halving import SuccessiveHalving
from budgetlab.evaluation.selection._lowrank import UCBELowRank, complete_matrix
from budgetlab.evaluation.selection._policy import SelectionPolicy, observations_from_view, sample_value
from budgetlab.evaluation.selection._simulate import simulate
from budgetlab.evaluation.selection._ucbe import UCBE
from budgetlab.evaluation.selection._uniform import Uniform

__all__ = [
    "ALGORITHMS",
    "SELECTION_POLICIES",
    "UCBE",
    "SelectionPolicy",
    "SuccessiveHalving",
    "UCBELowRank",
    "Uniform",
    "complete_matrix",
    "make_algorithm",
    "observations_from_view",
    "sample_value",
    "simulate",
]

ALGORITHMS: dict[str, Callable[..., BestArmAlgorithm]] = {
    "uniform": Uniform,
    "halving": SuccessiveHalving,
    "ucbe": UCBE,
    "ucbe-lrf": UCBELowRank,
}


def make_algorithm(name: str, options: Mapping[str, Any] | None = None) -> BestArmAlgorithm:
    """A best-arm algorithm by name (one of :data:`ALGORITHMS`) with ``options``, or from a spec
    ``"NAME:key=value,..."`` such as ``"ucbe:a=1"``, the form its errors give as the example (as
    :func:`budgetlab.policies.make_policy` takes); pass it to :func:`simulate`."""
    if ":" in name and options is None:
        name, options = parse_spec(name, "selection algorithm")
    factory = ALGORITHMS.get(name)
    if factory is None:
        raise InvalidArgument(f"unknown selection algorithm {name!r}; use one of: {', '.join(ALGORITHMS)} (e.g. ucbe:a=1)")
    check_arguments(factory, options, f"selection algorithm {name}", "ucbe:a=1")
    return factory(**dict(options or {}))


# Policy factories: the algorithm's arguments plus the policy's (delta, seed, passes), with
# explicit signatures so that `--policy NAME:key=value` is checked like any other policy's.
def _uniform(batch: int = 1, delta: float | None = 0.05, seed: int = 0, passes: int = 1) -> SelectionPolicy:
    return SelectionPolicy(Uniform(batch=batch), delta=delta, seed=seed, passes=passes)


def _halving(
    budget: int | None = None, batch: int = 64, delta: float | None = 0.05, seed: int = 0, passes: int = 1
) -> SelectionPolicy:
    return SelectionPolicy(SuccessiveHalving(budget=budget, batch=batch), delta=delta, seed=seed, passes=passes)


def _ucbe(
    a: float = 1.0, batch: int = 1, delta: float | None = 0.05, seed: int = 0, passes: int = 1
) -> SelectionPolicy:
    return SelectionPolicy(UCBE(a=a, batch=batch), delta=delta, seed=seed, passes=passes)


def _ucbe_lrf(
    a: float = 1.0, rank: int = 1, reg: float = 1.0, batch: int = 8,
    delta: float | None = 0.05, seed: int = 0, passes: int = 1,
) -> SelectionPolicy:  # fmt: skip
    return SelectionPolicy(UCBELowRank(a=a, rank=rank, reg=reg, batch=batch), delta=delta, seed=seed, passes=passes)


#: name -> policy factory, for ``budgetlab.policies.POLICIES`` (``--policy ucbe:a=1,delta=0.05``).
SELECTION_POLICIES: dict[str, Callable[..., SelectionPolicy]] = {
    "uniform": _uniform,
    "halving": _halving,
    "ucbe": _ucbe,
    "ucbe-lrf": _ucbe_lrf,
}
