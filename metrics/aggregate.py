"""Summarise a per-task table into one figure per metric, weighted as SparseChem's `aggregation_weight` does.

For each metric: the weighted mean over tasks whose weight is > 0 and whose value is not NaN, the weights
renormalised over exactly those tasks. Weight-0 tasks (e.g. auxiliary ones) are excluded altogether.
"""

from __future__ import annotations

import numpy as np

from .per_task import CLASSIFICATION_METRICS, REGRESSION_METRICS

_KNOWN = CLASSIFICATION_METRICS + REGRESSION_METRICS


def aggregate(rows: list[dict], weights=None, metrics=None) -> dict:
    """Weighted mean of each metric over tasks, ignoring NaN, with counts of the tasks behind it.

    Parameters
    ----------
    rows : list of dict
        Per-task metric dicts, e.g. from `per_task_table`.
    weights : array-like of shape (n_tasks,), optional
        Non-negative per-task aggregation weights (SparseChem's `aggregation_weight`); 0 excludes a task.
        Default: every task weighs 1.
    metrics : sequence of str, optional
        Which keys to aggregate; default: every known metric key present in the first row.

    Returns
    -------
    dict
        {metric: weighted mean (NaN when no task counts)} plus n_tasks (rows given), n_tasks_excluded (weight 0),
        n_tasks_counted (weighted tasks with at least one non-NaN metric), n_tasks_nan (weighted tasks with every
        metric NaN) and n_counted ({metric: tasks behind that mean}).
    """
    n = len(rows)
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.shape != (n,):
        raise ValueError(f"{w.size} weights for {n} tasks")
    if not np.isfinite(w).all() or (w < 0).any():
        raise ValueError("weights must be finite and non-negative")
    if metrics is None:
        metrics = [k for k in (rows[0] if rows else {}) if k in _KNOWN]
    included = w > 0
    values = np.array([[float(row.get(m, np.nan)) for m in metrics] for row in rows]).reshape(n, len(metrics))
    valid = included[:, None] & ~np.isnan(values)
    out: dict = {}
    n_counted = {}
    for k, m in enumerate(metrics):
        mask = valid[:, k]
        total = w[mask].sum()
        out[m] = float(np.dot(w[mask], values[mask, k]) / total) if total > 0 else float("nan")
        n_counted[m] = int(mask.sum())
    any_valid = valid.any(axis=1)
    out.update({
        "n_tasks": n,
        "n_tasks_excluded": int((~included).sum()),
        "n_tasks_counted": int((included & any_valid).sum()),
        "n_tasks_nan": int((included & ~any_valid).sum()),
        "n_counted": n_counted,
    })
    return out
