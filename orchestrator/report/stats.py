"""Statistics behind a partner's report: the deltas used in the field, and bootstrap intervals over test compounds.

Point estimates come from fedchem.metrics (scikit-learn's definitions). The bootstrap resamples test compounds with
replacement (the same draw for the federated and the alone model: a paired bootstrap) and expresses each draw as integer
weights per compound, so every replicate of a task's metric is one vectorised, weighted computation
(fedchem.metrics.weighted, equal to scikit-learn's with `sample_weight`), i.e. the metric of the resampled set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fedchem import metrics
from fedchem.metrics.weighted import weighted_auc_pr, weighted_auc_roc, weighted_r2, weighted_rmse


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


def outside_interval(estimate, lo, hi) -> bool:
    """True when a finite estimate lies outside its finite interval [lo, hi] (beyond rounding). A percentile interval of
    bootstrap replicates need not contain the point estimate (a skewed or biased replicate distribution, e.g. a
    median over few tasks, some of which drop out of replicates where their metric is undefined); the report
    shows both as they are and says so."""
    vals = [estimate, lo, hi]
    if any(v is None or not math.isfinite(float(v)) for v in vals):
        return False
    e, a, b = (float(v) for v in vals)
    tol = 1e-9 * max(1.0, abs(a), abs(b))  # the same figure summed in another order is not "outside"
    return e < min(a, b) - tol or e > max(a, b) + tol


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
