"""Calibration of predicted probabilities: Brier score and expected calibration error (ECE).

Both are a few lines of numpy (scikit-learn's Brier score has the same arithmetic; it has no ECE).
"""

from __future__ import annotations

import numpy as np

from .inputs import classification_inputs


def brier(y_true, y_score) -> float:
    """Brier score: mean squared difference between the probability and the 1/0 label (scikit-learn's `brier_score_loss`).

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, +1/-1 or 1/0.
    y_score : array-like of shape (n,)
        Predicted probability of the positive class.

    Returns
    -------
    float
        Brier score in [0, 1] (lower is better); NaN when `y_true` is empty.
    """
    y, p = classification_inputs(y_true, y_score)
    if not y.size:
        return float("nan")
    return float(np.mean((y - p) ** 2))


def expected_calibration_error(y_true, y_score, n_bins: int = 10) -> float:
    """Expected calibration error over `n_bins` equal-width probability bins.

    The bins split [0, 1] into `n_bins` intervals of equal width, each closed on the left and open on the right
    except the last, which also holds 1.0 (score s falls in bin floor(s * n_bins)). For each non-empty bin b,
    acc_b is the fraction of positives and conf_b the mean score; ECE = sum_b (n_b / n) * |acc_b - conf_b|.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Labels, +1/-1 or 1/0.
    y_score : array-like of shape (n,)
        Predicted probability of the positive class.
    n_bins : int, default 10
        Number of equal-width bins.

    Returns
    -------
    float
        ECE in [0, 1] (0 is perfectly calibrated); NaN when `y_true` is empty.
    """
    if int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}")
    y, p = classification_inputs(y_true, y_score)
    if not y.size:
        return float("nan")
    bins = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    positives = np.bincount(bins, weights=y, minlength=n_bins)
    score_sum = np.bincount(bins, weights=p, minlength=n_bins)
    # sum_b (n_b/n) |pos_b/n_b - sum_b/n_b| = sum_b |pos_b - sum_b| / n: empty bins add nothing.
    return float(np.abs(positives - score_sum).sum() / y.size)
