"""AUC-ROC and AUC-PR of every task from one sort per task: the figures per-epoch validation needs.

The same arithmetic as scikit-learn's `roc_auc_score` and `auc(*precision_recall_curve(...)[1::-1])` (what
`classification.auc_roc` / `auc_pr` call; tests compare them on tied and untied scores), without the argument
checks and the second sort that made scikit-learn's calls most of a validation pass. numpy's trapezoid, not
scipy.integrate's: importing scipy.integrate cost a train task ~0.15 s.
"""

from __future__ import annotations

import numpy as np

from .inputs import binary_labels, probabilities
from .per_task import _classification_quorum, labelled_cells

RANKING_METRICS = ("auc_roc", "auc_pr")


def _area(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoidal area under y(x) for a monotonic x (scikit-learn's `auc`)."""
    return float(-np.trapezoid(y, x) if np.any(np.diff(x) < 0) else np.trapezoid(y, x))


def ranking_areas(y_true, y_score) -> tuple[float, float]:
    """(AUC-ROC, AUC-PR) of one task; labels +1/-1 or 1/0, scores probabilities; NaN unless both classes occur.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, +1/-1 or 1/0.
    y_score : array-like of shape (n,)
        Predicted probabilities of the positive class (finite).

    Returns
    -------
    tuple of float
        AUC-ROC (as `roc_auc_score`) and AUC-PR by the trapezoidal rule (as `classification.auc_pr`).
    """
    y = binary_labels(y_true)
    p = probabilities(y_score)
    n_pos = int(y.sum())
    if y.size == 0 or n_pos in (0, y.size):
        return float("nan"), float("nan")
    order = np.argsort(-p, kind="stable")  # scikit-learn: argsort(y_score, stable=True, descending=True)
    s = p[order]
    thresholds = np.r_[np.flatnonzero(np.diff(s)), y.size - 1]
    tps = np.cumsum(y[order].astype(np.float64))[thresholds]
    fps = 1 + thresholds.astype(np.float64) - tps
    # ROC curve: drop collinear points as roc_curve(drop_intermediate=True) does, then start at (0, 0)
    if fps.size > 2:
        keep = np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True]
        rf, rt = fps[keep], tps[keep]
    else:
        rf, rt = fps, tps
    rf, rt = np.r_[0.0, rf], np.r_[0.0, rt]
    auc_roc = _area(rf / rf[-1], rt / rt[-1])
    # precision-recall curve (precision_recall_curve, drop_intermediate=False), recall decreasing, ending at (0, 1)
    ps = tps + fps
    precision = np.where(ps != 0, np.divide(tps, ps, out=np.zeros_like(tps), where=ps != 0), 0.0)
    recall = tps / tps[-1]
    auc_pr = _area(np.r_[recall[::-1], 0.0], np.r_[precision[::-1], 1.0])
    return auc_roc, auc_pr


def ranking_table(Y_true, scores, task_names=None, min_pos: int = 1, min_neg: int = 1) -> list[dict]:
    """Per task column: auc_roc, auc_pr, n, n_pos, n_neg and reason, with `per_task_table`'s quorum rules and
    values (NaN and a reason under the quorum or with non-finite scores).

    Parameters
    ----------
    Y_true : scipy sparse matrix of shape (n_compounds, n_tasks)
        +1/-1 labels; the stored entries are the labelled cells.
    scores : ndarray of shape (n_compounds, n_tasks)
        Probabilities.
    task_names : sequence of str, optional
        One name per column; the column index is used when omitted.
    min_pos, min_neg : int
        Evaluation quorum (as `classification_task_metrics`).
    """
    S = np.asarray(scores, dtype=np.float64)
    if S.shape != tuple(Y_true.shape):
        raise ValueError(f"scores has shape {S.shape}, Y_true has {tuple(Y_true.shape)}")
    rows, cols, values = labelled_cells(Y_true)
    predicted = S[rows, cols]
    bounds = np.searchsorted(cols, np.arange(S.shape[1] + 1))
    table = []
    for j in range(S.shape[1]):
        y, p = binary_labels(values[bounds[j]:bounds[j + 1]]), predicted[bounds[j]:bounds[j + 1]]
        n, n_pos = int(y.size), int(y.sum())
        reason = _classification_quorum(n, n_pos, n - n_pos, min_pos, min_neg)
        n_bad = int((~np.isfinite(p)).sum())
        if not reason and n_bad:
            reason = f"{n_bad} non-finite scores"
        auc = (float("nan"), float("nan")) if reason else ranking_areas(y, p)
        table.append({"task": task_names[j] if task_names is not None else j, "auc_roc": auc[0], "auc_pr": auc[1],
                      "n": n, "n_pos": n_pos, "n_neg": n - n_pos, "reason": reason})
    return table
