"""Per-task binary classification metrics on probabilities: ranking (AUC-ROC, AUC-PR, AP) and thresholded (F1, kappa).

Every function takes `(y_true, y_score)` as scikit-learn does, accepts +1/-1 or 1/0 labels, and returns a float.
Where a metric is undefined for the given labels (e.g. AUC with one class present) it returns NaN instead of
raising, as SparseChem does, so one degenerate task never stops an evaluation.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn import metrics as skm
from sklearn.exceptions import UndefinedMetricWarning

from .inputs import classification_inputs


def _has_both_classes(y: np.ndarray) -> bool:
    return bool(y.size) and 0 < int(y.sum()) < y.size


def auc_roc(y_true, y_score) -> float:
    """Area under the ROC curve (scikit-learn's `roc_auc_score`).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, +1/-1 or 1/0.
    y_score : array-like of shape (n,)
        Predicted probability of the positive class.

    Returns
    -------
    float
        AUC-ROC in [0, 1]; NaN unless both classes are present.
    """
    y, p = classification_inputs(y_true, y_score)
    if not _has_both_classes(y):
        return float("nan")
    return float(skm.roc_auc_score(y, p))


def auc_pr(y_true, y_score) -> float:
    """Area under the precision-recall curve by the trapezoidal rule, as SparseChem reports `auc_pr`.

    Uses scikit-learn's `precision_recall_curve` and `auc`. It differs slightly from `average_precision`
    (a step-wise sum), and is kept because it is the figure SparseChem-based work quotes.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, +1/-1 or 1/0.
    y_score : array-like of shape (n,)
        Predicted probability of the positive class.

    Returns
    -------
    float
        AUC-PR in [0, 1]; NaN unless both classes are present.
    """
    y, p = classification_inputs(y_true, y_score)
    if not _has_both_classes(y):
        return float("nan")
    precision, recall, _ = skm.precision_recall_curve(y, p)
    return float(skm.auc(recall, precision))


def average_precision(y_true, y_score) -> float:
    """Average precision (scikit-learn's `average_precision_score`): precision summed over recall steps.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, +1/-1 or 1/0.
    y_score : array-like of shape (n,)
        Predicted probability of the positive class.

    Returns
    -------
    float
        Average precision in [0, 1]; NaN unless both classes are present.
    """
    y, p = classification_inputs(y_true, y_score)
    if not _has_both_classes(y):
        return float("nan")
    return float(skm.average_precision_score(y, p))


def f1_at(y_true, y_score, threshold: float = 0.5) -> float:
    """F1 score of the positive class when a score >= `threshold` is predicted positive (scikit-learn's `f1_score`).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, +1/-1 or 1/0.
    y_score : array-like of shape (n,)
        Predicted probability of the positive class.
    threshold : float, default 0.5
        Scores at or above it count as predicted positive (0.5 is SparseChem's logit >= 0).

    Returns
    -------
    float
        F1 in [0, 1] (0 when nothing is predicted positive); NaN when `y_true` holds no positive.
    """
    y, p = classification_inputs(y_true, y_score)
    if not y.any():
        return float("nan")
    return float(skm.f1_score(y, (p >= threshold).astype(np.int64), zero_division=0.0))


def f1_max(y_true, y_score) -> float:
    """Best F1 score over all thresholds (SparseChem's `f1_max`), read off scikit-learn's `precision_recall_curve`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, +1/-1 or 1/0.
    y_score : array-like of shape (n,)
        Predicted probability of the positive class.

    Returns
    -------
    float
        The largest F1 reachable by any threshold; NaN when `y_true` holds no positive.
    """
    y, p = classification_inputs(y_true, y_score)
    if not y.any():
        return float("nan")
    precision, recall, _ = skm.precision_recall_curve(y, p)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    return float(f1.max())


def kappa(y_true, y_score, threshold: float = 0.5) -> float:
    """Cohen's kappa between the labels and the predictions `y_score >= threshold` (scikit-learn's `cohen_kappa_score`).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, +1/-1 or 1/0.
    y_score : array-like of shape (n,)
        Predicted probability of the positive class.
    threshold : float, default 0.5
        Scores at or above it count as predicted positive.

    Returns
    -------
    float
        Kappa in [-1, 1]; NaN when chance agreement is 1 (labels and predictions all the same single class) or
        `y_true` is empty.
    """
    y, p = classification_inputs(y_true, y_score)
    if not y.size:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", (UndefinedMetricWarning, RuntimeWarning))
        value = skm.cohen_kappa_score(y, (p >= threshold).astype(np.int64), labels=[0, 1])
    return float(value)


def log_loss_(y_true, y_score) -> float:
    """Mean binary cross-entropy of the probabilities (scikit-learn's `log_loss`, which clips them away from 0 and 1).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, +1/-1 or 1/0.
    y_score : array-like of shape (n,)
        Predicted probability of the positive class.

    Returns
    -------
    float
        Log-loss in nats (defined with one class present too); NaN when `y_true` is empty.
    """
    y, p = classification_inputs(y_true, y_score)
    if not y.size:
        return float("nan")
    return float(skm.log_loss(y, p, labels=[0, 1]))


logloss = log_loss_
