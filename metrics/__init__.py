"""fedchem.metrics: per-task evaluation metrics as pure functions on numpy arrays (scikit-learn conventions).

Classification takes +1/-1 (or 1/0) labels and probabilities; regression takes values and optional censor flags.
Imports nothing of fedchem and no torch, so any stage (and any reader of a report) can use it.
"""

from .aggregate import aggregate
from .calibration import brier, expected_calibration_error
from .classification import auc_pr, auc_roc, average_precision, f1_at, f1_max, kappa, log_loss_, logloss
from .per_task import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    classification_task_metrics,
    labelled_cells,
    per_task_table,
    regression_task_metrics,
)
from .ranking import RANKING_METRICS, ranking_areas, ranking_table
from .regression import censored_errors, pearson, r2, rmse, rmse_censored
from .weighted import weighted_auc_pr, weighted_auc_roc, weighted_r2, weighted_rmse

__all__ = [
    "CLASSIFICATION_METRICS",
    "RANKING_METRICS",
    "REGRESSION_METRICS",
    "aggregate",
    "auc_pr",
    "auc_roc",
    "average_precision",
    "brier",
    "censored_errors",
    "classification_task_metrics",
    "expected_calibration_error",
    "f1_at",
    "f1_max",
    "kappa",
    "labelled_cells",
    "log_loss_",
    "logloss",
    "pearson",
    "per_task_table",
    "r2",
    "ranking_areas",
    "ranking_table",
    "regression_task_metrics",
    "rmse",
    "rmse_censored",
    "weighted_auc_pr",
    "weighted_auc_roc",
    "weighted_r2",
    "weighted_rmse",
]
