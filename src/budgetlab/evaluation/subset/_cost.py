"""Cost-aware selection: items have rating costs (words to read, minutes, dollars); choose the
items of greatest total utility whose costs fit a budget (a 0/1 knapsack, solved exactly by
mixed-integer programming, with a greedy utility-per-cost fallback when the solver gives up)."""

from __future__ import annotations

import numpy as np

from budgetlab.errors import InvalidArgument

__all__ = ["select_under_budget", "utilities_from_order"]


def utilities_from_order(order: np.ndarray) -> np.ndarray:
    """Utilities for a method that only orders items: the first gets n, the last 1."""
    n = len(order)
    u = np.empty(n)
    u[np.asarray(order, int)] = np.arange(n, 0, -1)
    return u


def select_under_budget(
    utilities: np.ndarray, costs: np.ndarray, budget: float, *, time_limit: float = 10.0
) -> np.ndarray:
    """Indexes of the chosen items (highest utility first), total cost <= ``budget``.

    Utilities are rank-normalized to (0, 1] first, so that every item is worth something and a
    method's raw scale (variances, informations, negative similarities) does not matter.
    """
    import scipy.optimize
    import scipy.stats

    u = np.asarray(utilities, float)
    c = np.asarray(costs, float)
    if u.shape != c.shape or u.ndim != 1:
        raise InvalidArgument(f"utilities and costs must be two lists of the same length, got {u.shape} and {c.shape}")
    bad = np.flatnonzero(~((c > 0) & np.isfinite(c)))
    if bad.size:
        raise InvalidArgument(f"every item cost must be a positive finite number, but item {bad[0]}'s is {c[bad[0]]:g}")
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or not 0 < budget < np.inf:
        raise InvalidArgument(f"the cost budget must be a positive finite number, got {budget!r}")
    value = scipy.stats.rankdata(np.nan_to_num(u, nan=-np.inf)) / len(u)
    fits = c <= budget
    chosen = np.zeros(len(u), bool)
    if fits.any():
        result = scipy.optimize.milp(
            c=-value,
            constraints=scipy.optimize.LinearConstraint(c[None, :], 0, budget),
            integrality=np.ones(len(u)),
            bounds=scipy.optimize.Bounds(0, fits.astype(float)),
            options={"time_limit": time_limit},
        )
        if result.x is not None:
            chosen = result.x > 0.5
        if chosen.sum() == 0 or c[chosen].sum() > budget + 1e-9:
            chosen = _greedy(value, c, budget)
    idx = np.flatnonzero(chosen)
    return idx[np.argsort(-value[idx], kind="stable")]


def _greedy(value: np.ndarray, costs: np.ndarray, budget: float) -> np.ndarray:
    chosen = np.zeros(len(value), bool)
    spent = 0.0
    for i in np.argsort(-value / costs, kind="stable"):
        if spent + costs[i] <= budget:
            chosen[i] = True
            spent += costs[i]
    return chosen
