"""All metrics of one task at once, with the evaluation quorum, and the per-task table over a label matrix.

A task under the quorum (too few positives/negatives/values, one class only, empty, non-finite predictions) gets
NaN for every metric and a `reason` saying why; it never raises. Wrong inputs (labels that are not +1/-1 or 1/0,
logits instead of probabilities, mismatched shapes) still raise ValueError: those are bugs, not data.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import calibration, classification, regression
from .inputs import as_1d_float, binary_labels, censor_flags, check_same_length, probabilities

CLASSIFICATION_METRICS = ("auc_roc", "auc_pr", "avg_precision", "f1_at_0.5", "f1_max", "kappa", "log_loss", "brier",
                          "ece")
REGRESSION_METRICS = ("rmse", "rmse_uncensored", "r2", "pearson")
KINDS = ("classification", "regression")


def classification_task_metrics(y_true, y_score, min_pos: int = 1, min_neg: int = 1, n_bins: int = 10) -> dict:
    """Every classification metric of one task, or NaN for all of them with the reason when under the quorum.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        The task's labelled values, +1/-1 (as in Y_class) or 1/0.
    y_score : array-like of shape (n,)
        Predicted probabilities of the positive class.
    min_pos, min_neg : int, default 1
        Evaluation quorum: fewer positives / negatives than this makes every metric NaN.
    n_bins : int, default 10
        Bins of the expected calibration error.

    Returns
    -------
    dict
        Keys `CLASSIFICATION_METRICS` (auc_roc, auc_pr, avg_precision, f1_at_0.5, f1_max, kappa, log_loss, brier,
        ece) as floats, then n, n_pos, n_neg (ints) and reason ("" when the metrics were computed).
    """
    y = binary_labels(y_true)
    p = probabilities(y_score)
    check_same_length(y_true=y, y_score=p)
    n, n_pos = int(y.size), int(y.sum())
    n_neg = n - n_pos
    counts = {"n": n, "n_pos": n_pos, "n_neg": n_neg}
    reason = _classification_quorum(n, n_pos, n_neg, min_pos, min_neg)
    n_bad = int((~np.isfinite(p)).sum())
    if not reason and n_bad:
        reason = f"{n_bad} non-finite scores"
    if reason:
        return {**dict.fromkeys(CLASSIFICATION_METRICS, float("nan")), **counts, "reason": reason}
    return {**_classification_values(y, p, n_bins), **counts, "reason": ""}


def _classification_values(y: np.ndarray, p: np.ndarray, n_bins: int) -> dict:
    """The classification metrics of one task that passed the quorum."""
    curve = classification.curve_metrics(y, p)  # one sort for the four curve metrics
    return {
        "auc_roc": curve["auc_roc"],
        "auc_pr": curve["auc_pr"],
        "avg_precision": curve["avg_precision"],
        "f1_at_0.5": classification.f1_at(y, p, threshold=0.5),
        "f1_max": curve["f1_max"],
        "kappa": classification.kappa(y, p, threshold=0.5),
        "log_loss": classification.log_loss_(y, p),
        "brier": calibration.brier(y, p),
        "ece": calibration.expected_calibration_error(y, p, n_bins=n_bins),
    }


def _classification_quorum(n: int, n_pos: int, n_neg: int, min_pos: int, min_neg: int) -> str:
    """The reason a classification task is not evaluated, or "" when it is."""
    if n == 0:
        return "no labelled values"
    if n_pos < min_pos:
        return f"only {n_pos} positives (< {min_pos} required)"
    if n_neg < min_neg:
        return f"only {n_neg} negatives (< {min_neg} required)"
    if n_pos == 0 or n_neg == 0:
        return "only one class present"
    return ""


def regression_task_metrics(y_true, y_pred, censor=None, min_n: int = 2) -> dict:
    """Every regression metric of one task, or NaN with the reason when under the quorum.

    `rmse` is censor-aware over all values (see `regression.rmse_censored`); `rmse_uncensored`, `r2` and
    `pearson` use only the "=" values, since a censored value is a bound, not a measurement (as SparseChem does).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        The task's labelled values (bounds for censored ones).
    y_pred : array-like of shape (n,)
        Predicted values.
    censor : array-like of shape (n,) or None
        -1 / 0 / +1 for "<" / "=" / ">"; None means all "=".
    min_n : int, default 2
        Evaluation quorum: fewer uncensored values than this makes every metric NaN.

    Returns
    -------
    dict
        Keys `REGRESSION_METRICS` (rmse, rmse_uncensored, r2, pearson) as floats, then n, n_censored,
        n_uncensored (ints) and reason: "" when all were computed; otherwise why some or all are NaN (a constant
        target leaves r2 and pearson NaN, constant predictions leave pearson NaN).
    """
    y = as_1d_float(y_true, "y_true")
    f = as_1d_float(y_pred, "y_pred")
    check_same_length(y_true=y, y_pred=f)
    if not np.isfinite(y).all():
        raise ValueError("y_true must be finite (NaN marks a missing value: leave it out)")
    c = censor_flags(censor, len(y))
    exact = c == 0
    counts = {"n": int(y.size), "n_censored": int((~exact).sum()), "n_uncensored": int(exact.sum())}
    nan = dict.fromkeys(REGRESSION_METRICS, float("nan"))
    if y.size == 0:
        return {**nan, **counts, "reason": "no values"}
    if counts["n_uncensored"] < min_n:
        return {**nan, **counts, "reason": f"only {counts['n_uncensored']} uncensored values (< {min_n} required)"}
    n_bad = int((~np.isfinite(f)).sum())
    if n_bad:
        return {**nan, **counts, "reason": f"{n_bad} non-finite predictions"}
    ye, fe = y[exact], f[exact]
    values = {
        "rmse": regression.rmse_censored(y, f, c),
        "rmse_uncensored": regression.rmse(ye, fe),
        "r2": regression.r2(ye, fe),
        "pearson": regression.pearson(ye, fe),
    }
    reasons = []
    if np.all(ye == ye[0]):
        reasons.append("constant y_true on uncensored values: r2 and pearson undefined")
    elif np.all(fe == fe[0]):
        reasons.append("constant predictions on uncensored values: pearson undefined")
    return {**values, **counts, "reason": "; ".join(reasons)}


def labelled_cells(Y_true) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and values of the labelled cells of a label matrix, ordered by column then row.

    A scipy sparse matrix's stored entries are its labelled cells (explicit zeros included: 0.0 is a value);
    in a dense array NaN marks a missing cell.
    """
    if sp.issparse(Y_true):
        Y = sp.csc_matrix(Y_true, dtype=np.float64, copy=True)
        Y.sum_duplicates()  # also sorts the row indices; keeps explicit zeros
        cols = np.repeat(np.arange(Y.shape[1]), np.diff(Y.indptr))
        return Y.indices.astype(np.int64), cols, Y.data
    Y = np.asarray(Y_true, dtype=np.float64)
    if Y.ndim != 2:
        raise ValueError(f"Y_true must be 2-D (compounds x tasks), got shape {Y.shape}")
    cols, rows = np.nonzero(~np.isnan(Y).T)
    return rows, cols, Y[rows, cols]


def _censor_at(censor, rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Censor flags at the labelled cells; flags set on unlabelled cells mean misaligned inputs and raise."""
    if censor is None:
        return np.zeros(len(rows))
    if censor.shape != shape:
        raise ValueError(f"censor has shape {censor.shape}, Y_true has {shape}")
    if sp.issparse(censor):
        C = sp.csr_matrix(censor, dtype=np.float64)
        at = np.asarray(C[rows, cols]).ravel() if len(rows) else np.zeros(0)
        flagged_total = int(np.count_nonzero(C.data))
    else:
        C = np.asarray(censor, dtype=np.float64)
        at = C[rows, cols]
        flagged_total = int(np.count_nonzero(np.nan_to_num(C)))
    outside = flagged_total - int(np.count_nonzero(at))
    if outside:
        raise ValueError(f"censor flags {outside} cells that Y_true does not label: the matrices are not aligned")
    return at


def per_task_table(Y_true, scores, kind: str, censor=None, task_names=None, min_pos: int = 1, min_neg: int = 1,
                   min_n: int = 2) -> list[dict]:
    """One metrics dict per task column of a label matrix, evaluated on its labelled cells only.

    Parameters
    ----------
    Y_true : scipy sparse matrix or ndarray of shape (n_compounds, n_tasks)
        Labels. Sparse: the stored entries are the labelled cells (explicit zeros are values for regression;
        classification labels are +1/-1). Dense: NaN marks a missing cell.
    scores : ndarray of shape (n_compounds, n_tasks)
        Dense predictions: probabilities for classification, values for regression.
    kind : {"classification", "regression"}
        Which metrics to compute.
    censor : scipy sparse matrix or ndarray of shape (n_compounds, n_tasks), optional
        Regression only: -1 / 0 / +1 per labelled cell, aligned with `Y_true`.
    task_names : sequence of str, optional
        One name per column; the column index is used when omitted.
    min_pos, min_neg, min_n : int
        Evaluation quorum (see `classification_task_metrics` and `regression_task_metrics`).

    Returns
    -------
    list of dict
        For each column in order: {"task": name or index, **the task's metrics dict}.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    if sp.issparse(scores):
        raise ValueError("scores must be a dense array (compounds x tasks)")
    S = np.asarray(scores, dtype=np.float64)
    shape = tuple(Y_true.shape)
    if S.shape != shape:
        raise ValueError(f"scores has shape {S.shape}, Y_true has {shape}")
    n_tasks = shape[1]
    if task_names is not None and len(task_names) != n_tasks:
        raise ValueError(f"{len(task_names)} task names for {n_tasks} task columns")
    if censor is not None and kind != "regression":
        raise ValueError("censor applies to regression tasks only")
    rows, cols, values = labelled_cells(Y_true)
    flags = _censor_at(censor, rows, cols, shape) if kind == "regression" else None
    predicted = S[rows, cols]
    bounds = np.searchsorted(cols, np.arange(n_tasks + 1))
    table = []
    for j in range(n_tasks):
        part = slice(bounds[j], bounds[j + 1])
        name = task_names[j] if task_names is not None else j
        try:
            if kind == "classification":
                metrics = classification_task_metrics(values[part], predicted[part], min_pos=min_pos, min_neg=min_neg)
            else:
                metrics = regression_task_metrics(values[part], predicted[part], censor=flags[part], min_n=min_n)
        except ValueError as exc:
            raise ValueError(f"task column {j}: {exc}") from exc
        table.append({"task": name, **metrics})
    return table
