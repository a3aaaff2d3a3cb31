"""Per-task regression metrics, including an RMSE that understands censored ("<" / ">") values.

Signatures follow scikit-learn: `metric(y_true, y_pred)`. Undefined cases (too few values, a constant target)
return NaN instead of raising, so one degenerate task never stops an evaluation. The arithmetic is numpy's, as in
scikit-learn and scipy (tests/metrics compare with both), so that a train task need not import either.
"""

from __future__ import annotations

import numpy as np

from .inputs import as_1d_float, censor_flags, check_same_length


def _prepare(y_true, y_pred) -> tuple[np.ndarray, np.ndarray]:
    """Both arrays as finite 1-D floats of the same length."""
    y = as_1d_float(y_true, "y_true")
    f = as_1d_float(y_pred, "y_pred")
    check_same_length(y_true=y, y_pred=f)
    if not (np.isfinite(y).all() and np.isfinite(f).all()):
        raise ValueError("y_true and y_pred must be finite (NaN marks a missing value: leave it out)")
    return y, f


def rmse(y_true, y_pred) -> float:
    """Root mean squared error (as scikit-learn's `root_mean_squared_error`), ignoring any censoring.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Measured values.
    y_pred : array-like of shape (n,)
        Predicted values.

    Returns
    -------
    float
        RMSE; NaN when there are no values.
    """
    y, f = _prepare(y_true, y_pred)
    if not y.size:
        return float("nan")
    return float(np.sqrt(np.mean((y - f) ** 2)))


def censored_errors(y_true, y_pred, censor=None) -> np.ndarray:
    """Per-point errors (y_pred - y_true) where a censored bound that the prediction respects costs nothing.

    censor -1 ("<": the true value is at most y_true): error max(y_pred - y_true, 0).
    censor +1 (">": the true value is at least y_true): error min(y_pred - y_true, 0).
    censor 0 ("="): error y_pred - y_true. This is the residual behind SparseChem's censored MSE loss.
    """
    y, f = _prepare(y_true, y_pred)
    c = censor_flags(censor, len(y))
    d = f - y
    return np.where(c == 0, d, np.where(c < 0, np.maximum(d, 0.0), np.minimum(d, 0.0)))


def rmse_censored(y_true, y_pred, censor=None) -> float:
    """Censor-aware RMSE: sqrt of the mean squared `censored_errors` over all points, censored ones included.

    A "<" point (censor -1) adds no error when the prediction is at or below its bound, else the distance to
    the bound; a ">" point (censor +1) likewise from above; "=" points count their full error. With no
    censoring it equals `rmse`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Measured values, or the bounds for censored points.
    y_pred : array-like of shape (n,)
        Predicted values.
    censor : array-like of shape (n,) or None
        -1 / 0 / +1 for "<" / "=" / ">" (+1: the true value lies above the stored one); None means all "=".

    Returns
    -------
    float
        Censor-aware RMSE; NaN when there are no values.
    """
    errors = censored_errors(y_true, y_pred, censor)
    if not errors.size:
        return float("nan")
    return float(np.sqrt(np.mean(errors**2)))


def r2(y_true, y_pred) -> float:
    """Coefficient of determination R^2 (as scikit-learn's `r2_score`).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Measured values.
    y_pred : array-like of shape (n,)
        Predicted values.

    Returns
    -------
    float
        R^2 (at most 1, unbounded below); NaN with fewer than 2 values or a constant `y_true`, where scikit-learn
        would return an arbitrary 0 or 1.
    """
    y, f = _prepare(y_true, y_pred)
    if y.size < 2 or np.all(y == y[0]):
        return float("nan")
    return float(1 - np.sum((y - f) ** 2) / np.sum((y - y.mean()) ** 2))


def pearson(y_true, y_pred) -> float:
    """Pearson correlation coefficient between measured and predicted values (as scipy's `pearsonr`).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Measured values.
    y_pred : array-like of shape (n,)
        Predicted values.

    Returns
    -------
    float
        r in [-1, 1]; NaN with fewer than 2 values or when either array is constant.
    """
    y, f = _prepare(y_true, y_pred)
    if y.size < 2 or np.all(y == y[0]) or np.all(f == f[0]):
        return float("nan")
    dy, df = y - y.mean(), f - f.mean()
    dy, df = dy / np.abs(dy).max(), df / np.abs(df).max()  # scaled first, as scipy does, against overflow
    r = np.dot(dy / np.linalg.norm(dy), df / np.linalg.norm(df))
    return float(np.clip(r, -1.0, 1.0))
