"""Estimators for sampled evaluations: pass@k, maj@k, coverage curves, intervals and plots."""

from budgetlab.analysis._adaptive_estimators import (
    AdaptiveEstimate,
    adaptive_maj_at_k,
    adaptive_pass_at_k,
)
from budgetlab.analysis._budget_curves import budget_curves
from budgetlab.analysis._curves import (
    Estimate,
    bootstrap_ci,
    coverage_curve,
    default_ks,
    maj_at_k_with_ci,
    pass_at_k_with_ci,
)
from budgetlab.analysis._majority import maj_at_k, majority_answer
from budgetlab.analysis._passk import pass_at_k, pass_at_k_many
from budgetlab.analysis._plot import plot_budget_curves, plot_coverage
from budgetlab.analysis._report import build_report
from budgetlab.analysis._scaling import (
    EXTRAPOLATION_METHODS,
    Extrapolation,
    extrapolate_coverage,
    fit_power_law,
    fit_success_prior,
)
from budgetlab.analysis._stopping import (
    StoppingSimulation,
    simulate_stopping,
    stopping_orders,
)
from budgetlab.analysis._success_priors import SuccessPrior

__all__ = [
    "EXTRAPOLATION_METHODS",
    "Extrapolation",
    "SuccessPrior",
    "extrapolate_coverage",
    "fit_power_law",
    "fit_success_prior",
    "AdaptiveEstimate",
    "adaptive_maj_at_k",
    "adaptive_pass_at_k",
    "StoppingSimulation",
    "simulate_stopping",
    "stopping_orders",
    "Estimate",
    "bootstrap_ci",
    "budget_curves",
    "build_report",
    "coverage_curve",
    "default_ks",
    "maj_at_k",
    "maj_at_k_with_ci",
    "majority_answer",
    "pass_at_k",
    "pass_at_k_many",
    "pass_at_k_with_ci",
    "plot_budget_curves",
    "plot_coverage",
]
