"""Metrics of many weightings of one task at once: one row of W (replicates x cells, non-negative weights) each.

A bootstrap replicate is a weighting of the test compounds (how often each was drawn), so every replicate of a
task's metric is one vectorised computation here. Each function equals its scikit-learn counterpart with
`sample_weight=W[i]` (tests check it), i.e. the metric of the resampled set.
"""

from __future__ import annotations

import numpy as np

from .regression import censored_errors


def _groups(scores: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """Order of the cells by score and the start of each run of tied scores in that order."""
    order = np.argsort(-scores if descending else scores, kind="stable")
    s = scores[order]
    starts = np.r_[0, np.flatnonzero(np.diff(s)) + 1] if s.size else np.zeros(0, np.int64)
    return order, starts


def _tied_weights(y, scores, W: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per weight row, the summed positive and negative weights of each group of tied scores, in score order."""
    y = np.asarray(y) > 0
    order, starts = _groups(np.asarray(scores, dtype=np.float64), descending=descending)
    Wp = (W * y)[:, order].astype(np.float64)
    Wn = (W * ~y)[:, order].astype(np.float64)
    if not starts.size:
        return Wp, Wn
    return np.add.reduceat(Wp, starts, axis=1), np.add.reduceat(Wn, starts, axis=1)


def weighted_auc_roc(y: np.ndarray, scores: np.ndarray, W: np.ndarray) -> np.ndarray:
    """AUC-ROC of each weight row (ties count one half), as roc_auc_score(y, scores, sample_weight=w); NaN
    where a row leaves only one class."""
    if len(y) == 0:
        return np.full(W.shape[0], np.nan)
    Gp, Gn = _tied_weights(y, scores, W, descending=False)
    below = np.cumsum(Gn, axis=1) - Gn
    num = (Gp * (below + 0.5 * Gn)).sum(axis=1)
    den = Gp.sum(axis=1) * Gn.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def weighted_auc_pr(y: np.ndarray, scores: np.ndarray, W: np.ndarray) -> np.ndarray:
    """AUC-PR by the trapezoidal rule over scikit-learn's precision-recall curve (fedchem.metrics.auc_pr) with
    sample weights; NaN where a row leaves only one class."""
    if len(y) == 0:
        return np.full(W.shape[0], np.nan)
    Gp, Gn = _tied_weights(y, scores, W, descending=True)
    tps = np.cumsum(Gp, axis=1)
    fps = np.cumsum(Gn, axis=1)
    P, N = tps[:, -1:], fps[:, -1:]
    ps = tps + fps
    # leading runs of weight 0 (ps == 0) are no points at all for scikit-learn: precision 1 keeps them flat
    precision = np.divide(tps, ps, out=np.ones_like(tps), where=ps > 0)
    recall = np.divide(tps, P, out=np.zeros_like(tps), where=P > 0)
    # the curve starts at (recall 0, precision 1); points past full recall add no area (zero width)
    precision = np.hstack([np.ones((W.shape[0], 1)), precision])
    recall = np.hstack([np.zeros((W.shape[0], 1)), recall])
    area = (np.diff(recall, axis=1) * (precision[:, 1:] + precision[:, :-1]) / 2.0).sum(axis=1)
    return np.where((P[:, 0] > 0) & (N[:, 0] > 0), area, np.nan)


def weighted_rmse(y: np.ndarray, pred: np.ndarray, censor: np.ndarray | None, W: np.ndarray) -> np.ndarray:
    """Censor-aware RMSE (fedchem.metrics.rmse_censored) of each weight row; NaN where fewer than 2 uncensored
    values are drawn (the evaluation quorum of fedchem.metrics.regression_task_metrics)."""
    e2 = censored_errors(y, pred, censor) ** 2
    exact = np.ones(len(e2), bool) if censor is None else np.asarray(censor) == 0
    tot = W.sum(axis=1).astype(np.float64)
    ok = W[:, exact].sum(axis=1) >= 2
    return np.sqrt(np.divide(W @ e2, tot, out=np.full(tot.shape, np.nan), where=ok & (tot > 0)))


def weighted_r2(y: np.ndarray, pred: np.ndarray, censor: np.ndarray | None, W: np.ndarray) -> np.ndarray:
    """R² on the uncensored values (fedchem.metrics' convention) of each weight row, as r2_score with
    sample_weight; NaN where fewer than 2 values or a constant target remain."""
    y = np.asarray(y, dtype=np.float64)
    f = np.asarray(pred, dtype=np.float64)
    exact = np.ones(y.size, bool) if censor is None else np.asarray(censor) == 0
    y, f, Wx = y[exact], f[exact], W[:, exact].astype(np.float64)
    tot = Wx.sum(axis=1)
    safe = np.where(tot > 0, tot, 1.0)
    mean = (Wx @ y) / safe
    ss_tot = (Wx * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
    ss_res = Wx @ (y - f) ** 2
    distinct = ((Wx > 0).sum(axis=1) >= 2) & (ss_tot > 1e-12 * np.maximum(1.0, (Wx @ y**2) / safe))
    return np.where(distinct, 1.0 - ss_res / np.where(distinct, ss_tot, 1.0), np.nan)
