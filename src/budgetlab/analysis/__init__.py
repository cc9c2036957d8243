"""Estimators for sampled evaluations: pass@k, maj@k, coverage curves, intervals and plots."""

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
from budgetlab.analysis._plot import plot_coverage
from budgetlab.analysis._report import build_report
from budgetlab.analysis._stopping import StoppingSimulation, simulate_stopping, stopping_orders

__all__ = [
    "StoppingSimulation",
    "simulate_stopping",
    "stopping_orders",
    "Estimate",
    "bootstrap_ci",
    "build_report",
    "coverage_curve",
    "default_ks",
    "maj_at_k",
    "maj_at_k_with_ci",
    "majority_answer",
    "pass_at_k",
    "pass_at_k_many",
    "pass_at_k_with_ci",
    "plot_coverage",
]
