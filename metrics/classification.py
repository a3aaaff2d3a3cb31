"""Per-task binary classification metrics on probabilities: ranking (AUC-ROC, AUC-PR, AP) and thresholded (F1, kappa).

Every function takes `(y_true, y_score)` as scikit-learn does, accepts +1/-1 or 1/0 labels, and returns a float.
Where a metric is undefined for the given labels (e.g. AUC with one class present) it returns NaN instead of
raising, as SparseChem does, so one degenerate task never stops an evaluation.

The arithmetic is scikit-learn's (the same curve, the same trapezoids and sums; tests/metrics compare every metric
with scikit-learn to 1e-12), written in numpy: importing scikit-learn (and the scipy.stats it pulls in) cost a
partner's train task about 2 s on every round, for metrics that are a few array operations each.
"""

from __future__ import annotations

import warnings

import numpy as np

from .inputs import classification_inputs


def _has_both_classes(y: np.ndarray) -> bool:
    return bool(y.size) and 0 < int(y.sum()) < y.size


def _binary_curve(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positives, true positives) at each distinct score, highest score first (scikit-learn's
    `_binary_clf_curve`: scores sorted descending with a stable sort, counts cumulated in float64)."""
    order = np.argsort(p, kind="mergesort")[::-1]
    p, y = p[order], y[order]
    last = np.r_[np.flatnonzero(np.diff(p)), y.size - 1]
    tps = np.cumsum(y, dtype=np.float64)[last]
    return 1 + last - tps, tps


def _precision_recall(y: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall as scikit-learn's `precision_recall_curve` returns them (recall decreasing, ending at
    precision 1, recall 0)."""
    return _precision_recall_of(*_binary_curve(y, p))


def _precision_recall_of(fps: np.ndarray, tps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_precision_recall` from a curve already made."""
    ps = tps + fps
    precision = np.zeros_like(tps)
    np.divide(tps, ps, out=precision, where=ps != 0)
    recall = np.ones_like(tps) if tps[-1] == 0 else tps / tps[-1]
    return np.hstack((precision[::-1], 1)), np.hstack((recall[::-1], 0))


def _trapezoid_area(x: np.ndarray, y: np.ndarray) -> float:
    """Area under the curve y(x) for a monotonic x, either way (scikit-learn's `auc`)."""
    direction = -1 if np.any(np.diff(x) < 0) else 1
    return float(direction * np.trapezoid(y, x))


def _confusion(y: np.ndarray, predicted: np.ndarray) -> tuple[int, int, int, int]:
    """(true negatives, false positives, false negatives, true positives) of 1/0 labels and predictions."""
    tp = int(np.count_nonzero(y & predicted))
    fp = int(np.count_nonzero(predicted)) - tp
    fn = int(np.count_nonzero(y)) - tp
    return y.size - tp - fp - fn, fp, fn, tp


def auc_roc(y_true, y_score) -> float:
    """Area under the ROC curve (as scikit-learn's `roc_auc_score`).

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
    return _roc_area(*_binary_curve(y, p))


def _roc_area(fps: np.ndarray, tps: np.ndarray) -> float:
    """AUC-ROC from a curve of both classes."""
    if fps.size > 2:  # scikit-learn's drop_intermediate: collinear points add no area
        keep = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps = fps[keep], tps[keep]
    fpr, tpr = np.r_[0, fps] / fps[-1], np.r_[0, tps] / tps[-1]
    return _trapezoid_area(fpr, tpr)


def auc_pr(y_true, y_score) -> float:
    """Area under the precision-recall curve by the trapezoidal rule, as SparseChem reports `auc_pr`.

    As scikit-learn's `precision_recall_curve` and `auc`. It differs slightly from `average_precision`
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
    precision, recall = _precision_recall(y, p)
    return _trapezoid_area(recall, precision)


def average_precision(y_true, y_score) -> float:
    """Average precision (as scikit-learn's `average_precision_score`): precision summed over recall steps.

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
    return _average_precision_of(*_precision_recall(y, p))


def _average_precision_of(precision: np.ndarray, recall: np.ndarray) -> float:
    return float(-np.sum(np.diff(recall) * precision[:-1]))


def f1_at(y_true, y_score, threshold: float = 0.5) -> float:
    """F1 score of the positive class when a score >= `threshold` is predicted positive (as scikit-learn's `f1_score`).

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
    _, fp, fn, tp = _confusion(y, (p >= threshold).astype(np.int64))
    return 2 * tp / (2 * tp + fp + fn)


def f1_max(y_true, y_score) -> float:
    """Best F1 score over all thresholds (SparseChem's `f1_max`), read off the precision-recall curve.

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
    return _f1_max_of(*_precision_recall(y, p))


def _f1_max_of(precision: np.ndarray, recall: np.ndarray) -> float:
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0)
    return float(f1.max())


def curve_metrics(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """auc_roc, auc_pr, avg_precision and f1_max of labels `y` (1/0 ints) and finite scores `p` already checked
    (`classification_inputs`), from one sort: the same values as the four functions (tests compare them exactly);
    per-task tables use it at every validation."""
    if not y.any():
        return dict.fromkeys(("auc_roc", "auc_pr", "avg_precision", "f1_max"), float("nan"))
    fps, tps = _binary_curve(y, p)
    precision, recall = _precision_recall_of(fps, tps)
    both = _has_both_classes(y)
    return {"auc_roc": _roc_area(fps, tps) if both else float("nan"),
            "auc_pr": _trapezoid_area(recall, precision) if both else float("nan"),
            "avg_precision": _average_precision_of(precision, recall) if both else float("nan"),
            "f1_max": _f1_max_of(precision, recall)}


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
    tn, fp, fn, tp = _confusion(y, (p >= threshold).astype(np.int64))
    confusion = np.array([[tn, fp], [fn, tp]], dtype=np.float64)
    expected = np.outer(confusion.sum(axis=1), confusion.sum(axis=0)) / confusion.sum()
    disagree = 1.0 - np.eye(2)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(1 - np.sum(disagree * confusion) / np.sum(disagree * expected))


def log_loss_(y_true, y_score) -> float:
    """Mean binary cross-entropy of the probabilities (as scikit-learn's `log_loss`, clipped away from 0 and 1).

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
    eps = np.finfo(p.dtype).eps
    chosen = np.where(y == 1, np.clip(p, eps, 1 - eps), np.clip(1 - p, eps, 1 - eps))
    return float(np.mean(-np.log(chosen)))


logloss = log_loss_
