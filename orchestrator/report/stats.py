"""Statistics behind a partner's report: the deltas used in the field, and bootstrap intervals over test compounds.

Point estimates come from fedchem.metrics (scikit-learn). The bootstrap resamples test compounds with replacement
(the same draw for the federated and the alone model: a paired bootstrap) and expresses each draw as integer
weights per compound, so every replicate of a task's metric is one vectorised, weighted computation here; the
weighted AUCs equal scikit-learn's with `sample_weight` (tests check it), i.e. the metric of the resampled set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fedchem import metrics


@dataclass(frozen=True)
class MetricSpec:
    """One reported metric: its task kind, which direction is better, and whether 1 is a perfect score."""

    name: str
    kind: str
    label: str
    higher_is_better: bool
    bounded_by_one: bool


METRICS: dict[str, MetricSpec] = {m.name: m for m in [
    MetricSpec("auc_pr", "classification", "AUC-PR", True, True),
    MetricSpec("auc_roc", "classification", "AUC-ROC", True, True),
    MetricSpec("r2", "regression", "R²", True, True),
    MetricSpec("rmse", "regression", "RMSE", False, False),
]}
# the metric that decides whether federation helped a task of each kind (MELLODDY's primary figure: AUC-PR)
PRIMARY = {"classification": "auc_pr", "regression": "r2"}


def metrics_of(kind: str) -> list[str]:
    """The reported metric names of one task kind, primary first."""
    return [m.name for m in METRICS.values() if m.kind == kind]


def point_metrics(kind: str, y: np.ndarray, pred: np.ndarray, censor: np.ndarray | None = None) -> dict[str, float]:
    """The reported metrics of one task on its labelled cells (NaN under the evaluation quorum)."""
    if kind == "classification":
        res = metrics.classification_task_metrics(y, pred)
    else:
        res = metrics.regression_task_metrics(y, pred, censor=censor)
    return {m: float(res[m]) for m in metrics_of(kind)}


def deltas(metric: str, federated: float, alone: float) -> dict[str, float]:
    """Absolute delta (fed - alone), relative delta (over |alone|) and improvement-to-perfect
    ((fed - alone) / (1 - alone), for metrics whose perfect value is 1, as in MELLODDY's evaluation); NaN where
    undefined. Deltas keep the metric's own sign: for RMSE a negative delta is an improvement."""
    spec = METRICS[metric]
    d = federated - alone
    rel = d / abs(alone) if alone and math.isfinite(alone) else float("nan")
    itp = d / (1.0 - alone) if spec.bounded_by_one and alone < 1.0 else float("nan")
    return {"delta": d, "relative_delta": rel, "improvement_to_perfect": itp}


def improvement(metric: str, delta: float | np.ndarray):
    """A delta turned so that positive always means "federation is better"."""
    return delta if METRICS[metric].higher_is_better else -delta


# ---- weighted metrics, vectorised over bootstrap replicates (W: replicates x cells, non-negative weights) ----

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
    e2 = metrics.censored_errors(y, pred, censor) ** 2
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


def weighted_metric(metric: str, y, pred, censor, W) -> np.ndarray:
    """Dispatch to the weighted version of a reported metric."""
    if metric == "auc_roc":
        return weighted_auc_roc(y, pred, W)
    if metric == "auc_pr":
        return weighted_auc_pr(y, pred, W)
    if metric == "rmse":
        return weighted_rmse(y, pred, censor, W)
    if metric == "r2":
        return weighted_r2(y, pred, censor, W)
    raise ValueError(f"no weighted version of {metric!r}")


def bootstrap_counts(n: int, replicates: int, rng: np.random.Generator) -> np.ndarray:
    """replicates x n resampling counts: how often each of n compounds is drawn in each bootstrap sample."""
    if n == 0:
        return np.zeros((replicates, 0), dtype=np.int32)
    draws = rng.integers(0, n, size=(replicates, n))
    counts = np.zeros((replicates, n), dtype=np.int32)
    np.add.at(counts, (np.repeat(np.arange(replicates), n), draws.ravel()), 1)
    return counts


def percentile_interval(samples: np.ndarray, level: float = 0.95, min_valid: float = 0.5) -> tuple[float, float]:
    """Percentile interval of the finite bootstrap samples; NaN when fewer than `min_valid` of them are finite
    (too many replicates where the metric was undefined to trust it)."""
    s = np.asarray(samples, dtype=np.float64)
    ok = s[np.isfinite(s)]
    if s.size == 0 or ok.size < max(2, min_valid * s.size):
        return float("nan"), float("nan")
    lo, hi = np.percentile(ok, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def verdict(metric: str, ci: tuple[float, float]) -> str:
    """"helped" / "hurt" when the interval of the delta excludes 0 (in the better / worse direction), "no
    difference" when it holds 0, "not evaluable" when there is no interval."""
    lo, hi = ci
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "not evaluable"
    better_lo, better_hi = sorted((improvement(metric, lo), improvement(metric, hi)))
    if better_lo > 0:
        return "helped"
    if better_hi < 0:
        return "hurt"
    return "no difference"
