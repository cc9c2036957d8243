"""Budgeted evaluation: find the best method, choose what to rate, estimate with fewer labels.

* :mod:`budgetlab.evaluation.selection`: best-arm identification over (method x example)
  (uniform, successive halving, UCB-E, UCB-E with low-rank factorization), offline on a score
  matrix or live as run policies;
* :mod:`budgetlab.evaluation.subset`: informative subsets of items for costly raters (metric
  variance, metric consistency, output diversity, IRT, rank separation, cost-aware selection);
* control variates: a costly score's mean from few costly labels plus cheap scores
  (:func:`control_variate_mean`, :func:`optimal_split`), and every system's mean at once with
  one regression pooled over the systems (:func:`pooled_control_variate_means`), whose cheap
  controls can be every metric of a set plus statistics of its outputs' text
  (:func:`cheap_controls`); :func:`check_rated_sample` tests whether the rated items look like
  the random sample those intervals assume.
"""

from budgetlab.evaluation._base import (
    BestArmAlgorithm,
    Observations,
    RankedMethod,
    ScoreMatrix,
    SelectionResult,
    SubsetMethod,
    identified,
)
from budgetlab.evaluation._cheap_controls import TEXT_STATISTICS, cheap_controls, metric_controls, text_statistics
from budgetlab.evaluation._control_variates import (
    BudgetSplit,
    MeanEstimate,
    control_variate_mean,
    optimal_split,
    plain_mean,
)
from budgetlab.evaluation._io import load_run_matrix, load_score_matrix, matrix_from_cells
from budgetlab.evaluation._rated_sample import RatedSampleCheck, check_rated_sample
from budgetlab.evaluation._pooled_control_variates import (
    pooled_control_variate_means,
    pooled_held_out_correlation,
    pooled_plain_means,
    pooled_regression_r2,
)

__all__ = [
    "TEXT_STATISTICS",
    "BestArmAlgorithm",
    "BudgetSplit",
    "MeanEstimate",
    "Observations",
    "RankedMethod",
    "RatedSampleCheck",
    "ScoreMatrix",
    "SelectionResult",
    "SubsetMethod",
    "cheap_controls",
    "check_rated_sample",
    "control_variate_mean",
    "identified",
    "load_run_matrix",
    "load_score_matrix",
    "matrix_from_cells",
    "metric_controls",
    "optimal_split",
    "plain_mean",
    "pooled_control_variate_means",
    "pooled_held_out_correlation",
    "pooled_plain_means",
    "pooled_regression_r2",
    "text_statistics",
]
