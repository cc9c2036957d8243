"""Which configurations get a problem's samples: learned mixed allocations (OSCA-style) and
their expected pass@k, from per-(problem, configuration) success counts; the posteriors the
``planner`` policy plans with; a fast simulator of run policies over recorded counts."""

from budgetlab.allocation._base import Allocation, Allocator, SuccessCounts
from budgetlab.allocation._expected import (
    ESTIMATORS,
    log_fail_table,
    mix_pass_at_k,
    single_pass_at_k,
)
from budgetlab.allocation._hill_climb import HillClimbAllocator, climb
from budgetlab.allocation._posterior import (
    AtomPrior,
    OnlineBetaPrior,
    fit_online_prior,
    fit_planner_prior,
)
from budgetlab.allocation._simulate import draw_orders, simulate_coverage
from budgetlab.allocation._single import BestSingleAllocator, single_scores
from budgetlab.allocation._uniform import UniformAllocator

__all__ = [
    "ESTIMATORS",
    "Allocation",
    "Allocator",
    "AtomPrior",
    "BestSingleAllocator",
    "HillClimbAllocator",
    "OnlineBetaPrior",
    "SuccessCounts",
    "UniformAllocator",
    "climb",
    "draw_orders",
    "fit_online_prior",
    "fit_planner_prior",
    "log_fail_table",
    "mix_pass_at_k",
    "simulate_coverage",
    "single_pass_at_k",
    "single_scores",
]
