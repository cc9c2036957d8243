"""Informative-subset selection for costly (human) raters, after Zouhar et al., "How to Select
Datapoints for Efficient Human Evaluation of NLG Models": which items to rate so that the
systems' ranking on them matches the ranking on all items.

Methods (one module each): metric variance, metric agreement (variance signed by whether the
item orders systems as the rest of the set does), metric consistency (per item, or the whole subset
balanced on the metric), output diversity, item response theory (2PL, Fisher information),
rank separation (items that make the 2PL model's ranking of the systems most certain), random,
several methods' orders averaged (combined);
and cost-aware selection of any of them under a budget of item costs. Methods that order items
by a utility keep the set's mix of items by which systems are on them (a set where systems
vary item by item), so that no system is judged on an unusual share of items.

:func:`choose_on_other_sets` picks a method for each set by its record on the other sets
(leave one set out): the fair way to report "our method" from a benchmark of several sets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from budgetlab.core.spec import check_arguments
from budgetlab.errors import InvalidArgument
from budgetlab.evaluation._base import SubsetMethod
from budgetlab.evaluation.subset._agreement import MetricAgreement, signed_variance
from budgetlab.evaluation.subset._combined import CombinedRanks
from budgetlab.evaluation.subset._consistency import MetricConsistency
from budgetlab.evaluation.subset._cost import select_under_budget, utilities_from_order
from budgetlab.evaluation.subset._data import Item, ItemSet, is_human_key, load_items
from budgetlab.evaluation.subset._diversity import OutputDiversity, similarity
from budgetlab.evaluation.subset._irt import IRTInformation, IRTParams, fisher_information, fit_2pl, has_few_levels
from budgetlab.evaluation.subset._random import RandomSubset
from budgetlab.evaluation.subset._ranking import rank_agreement, rated_means
from budgetlab.evaluation.subset._separation import RankSeparation, expected_discordant_pairs
from budgetlab.evaluation.subset._transfer import HeldOutChoice, choose_on_other_sets
from budgetlab.evaluation.subset._variance import MetricVariance

__all__ = [
    "SUBSET_METHODS",
    "CombinedRanks",
    "HeldOutChoice",
    "IRTInformation",
    "IRTParams",
    "Item",
    "ItemSet",
    "MetricAgreement",
    "MetricConsistency",
    "MetricVariance",
    "OutputDiversity",
    "RandomSubset",
    "RankSeparation",
    "choose",
    "choose_on_other_sets",
    "expected_discordant_pairs",
    "fisher_information",
    "fit_2pl",
    "has_few_levels",
    "is_human_key",
    "load_items",
    "make_subset_method",
    "method_for",
    "rank_agreement",
    "rated_means",
    "select_under_budget",
    "signed_variance",
    "similarity",
    "utilities_from_order",
]

SUBSET_METHODS: dict[str, Callable[..., SubsetMethod]] = {
    "random": RandomSubset,
    "variance": MetricVariance,
    "agreement": MetricAgreement,
    "consistency": MetricConsistency,
    "diversity": OutputDiversity,
    "irt": IRTInformation,
    "separation": RankSeparation,
    "combined": CombinedRanks,
}


def make_subset_method(name: str, options: Mapping[str, Any] | None = None) -> SubsetMethod:
    """A subset method by name with ``options``, or from a spec ``"NAME:key=value,..."``
    (``"irt:metric=bleu"``), as ``budgetlab subset --method`` takes it."""
    if ":" in name and options is None:
        from budgetlab.core.spec import parse_spec

        name, options = parse_spec(name, "subset method")
    factory = SUBSET_METHODS.get(name)
    if factory is None:
        raise InvalidArgument(
            f"unknown subset method {name!r}; use one of: {', '.join(SUBSET_METHODS)} (e.g. variance:metric=auto)"
        )
    check_arguments(factory, options, f"subset method {name}", "variance:metric=auto")
    return factory(**dict(options or {}))


def method_for(data: ItemSet) -> str:
    """The method to use on ``data`` when the user names none, by the evidence of the benchmarks:
    ``agreement`` for any metric, ``diversity`` for a set with no metric.

    ``agreement`` was declared in advance on recorded LLM samples (``bench/subset_validation.py``)
    and has the best mean of every metric-based method over the three kinds of human evaluations
    measured since (Spearman at 10 / 25 / 50% of the items, the mean of the three kinds' means:
    0.835 / 0.885 / 0.949, against irt's 0.776 / 0.891 / 0.954): the six NLG sets of
    ``bench/subset.py``, and REALSumm and HANNA, held out, in ``bench/subset_heldout.py``. ``irt``
    leads on the six NLG sets but fell to random at 10% on HANNA and far behind at 10% on REALSumm."""
    if not data.has_metric:
        return "diversity"
    return "agreement"


def choose(
    data: ItemSet,
    method: SubsetMethod | str,
    *,
    size: float | None = None,
    cost_budget: float | None = None,
    seed: int = 0,
) -> np.ndarray:
    """Indexes of the items to rate, most worth rating first: the top ``size`` (a whole count,
    or a fraction of the set if a float <= 1), or, with ``cost_budget``, the most useful set
    whose costs (:meth:`ItemSet.costs`) fit it (at least the cheapest item must)."""
    if isinstance(method, str):  # a name or spec, as budgetlab subset --method takes it
        method = make_subset_method(method)
    n = len(data)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidArgument(f"seed must be a whole number >= 0, got seed={seed!r}")
    rng = np.random.default_rng(seed)
    if (size is None) == (cost_budget is None):
        raise InvalidArgument(
            "give exactly one of a subset size (e.g. --size 0.25 or --size 50) or a cost budget (--cost-budget)"
        )
    if cost_budget is not None:
        if isinstance(cost_budget, bool) or not isinstance(cost_budget, (int, float)) or not 0 < cost_budget < math.inf:
            raise InvalidArgument(f"the cost budget must be a positive finite number, got {cost_budget!r}; e.g. 1000")
        costs = data.costs()
        if cost_budget < costs.min():
            cheapest = int(np.argmin(costs))
            unit = "its 'cost'" if data.items[cheapest].cost is not None else "words to read"
            raise InvalidArgument(
                f"no item fits a cost budget of {cost_budget:g}; the cheapest, {data.items[cheapest].id!r}, costs "
                f"{costs[cheapest]:g} ({unit}): raise the cost budget (--cost-budget)"
            )
        # A method's own utilities where it has them (per-item consistency for "consistency"),
        # else its order.
        utilities = getattr(method, "utilities", None)
        u = utilities(data) if utilities is not None else utilities_from_order(method.order(data, n, rng))
        return select_under_budget(u, costs, cost_budget)
    assert size is not None
    if (
        isinstance(size, bool)
        or not isinstance(size, (int, float))
        or not 0 < size < math.inf
        or (size > 1 and not float(size).is_integer())
    ):
        raise InvalidArgument(
            f"subset size must be a whole count of items or a fraction in (0, 1], got {size!r}; e.g. 0.25 or 50"
        )
    k = max(1, round(size * n)) if isinstance(size, float) and size <= 1 else min(int(size), n)
    return np.asarray(method.order(data, k, rng)[:k], int)
