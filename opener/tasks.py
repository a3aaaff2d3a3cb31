"""Tasks from aggregated activities: one classification task per threshold, one regression task per assay.

Classification is qualifier-aware. For direction "high" (value >= t is active):
    "= x": active if x >= t, else inactive
    "> x", ">= x": active if x >= t, else unknown (the true value could still be on either side)
    "< x": inactive if x <= t, else unknown;   "<= x": inactive if x < t, else unknown
and the mirror for "low" (value <= t is active):
    "= x": active if x <= t, else inactive
    "< x", "<= x": active if x <= t, else unknown
    "> x": inactive if x >= t, else unknown;   ">= x": inactive if x > t, else unknown
Binary assays become one task with threshold 0.5, direction high. Regression tasks keep every value with its
censor sign (-1 for "<"/"<=", 0 for "=", +1 for ">"/">=": +1 means the true value lies above the stored one).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fedchem.opener.activities import EQ, GE, GT, LE, LT, Aggregated
from fedchem.opener.raw import Assay, fmt_threshold


@dataclass
class Task:
    """One task's labelled cells: structure rows and labels (+1/-1) or values (with censor signs)."""

    name: str
    kind: str  # "classification" | "regression"
    assay: Assay
    threshold: float | None
    rows: np.ndarray
    labels: np.ndarray  # classification: +1/-1 (float32); regression: values (float64)
    censor: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # regression only


def classify(codes: np.ndarray, values: np.ndarray, threshold: float, direction: str) -> np.ndarray:
    """+1 active / -1 inactive / 0 unknown for each (qualifier code, value), by the rules in the module docstring."""
    t = threshold
    out = np.zeros(len(codes), dtype=np.int8)
    eq, lt, le, ge, gt = (codes == EQ), (codes == LT), (codes == LE), (codes == GE), (codes == GT)
    if direction == "high":
        out[eq] = np.where(values[eq] >= t, 1, -1)
        out[(gt | ge) & (values >= t)] = 1
        out[(lt & (values <= t)) | (le & (values < t))] = -1
    else:
        out[eq] = np.where(values[eq] <= t, 1, -1)
        out[(lt | le) & (values <= t)] = 1
        out[(gt & (values >= t)) | (ge & (values > t))] = -1
    return out


def build_tasks(assays: list[Assay], agg: Aggregated) -> tuple[list[Task], list[tuple[str, str]]]:
    """All candidate tasks in T0 order (thresholds in T0 order, then regression), and (assay, note) for assays
    that define no task at all."""
    tasks: list[Task] = []
    notes: list[tuple[str, str]] = []
    order = np.argsort(agg.assays, kind="stable")
    a_sorted = agg.assays[order]
    for idx, assay in enumerate(assays):
        lo, hi = np.searchsorted(a_sorted, idx, "left"), np.searchsorted(a_sorted, idx, "right")
        sel = order[lo:hi]
        rows, codes, values = agg.rows[sel], agg.codes[sel], agg.values[sel]
        if not assay.thresholds and not assay.use_in_regression:
            notes.append((assay.assay_id, "defines no task (no threshold and use_in_regression=false)"))
            continue
        for t in assay.thresholds:
            lab = classify(codes, values, t, assay.direction)
            keep = lab != 0
            tasks.append(Task(f"{assay.assay_id}_class_{fmt_threshold(t)}", "classification", assay, t,
                              rows[keep], lab[keep].astype(np.float32)))
        if assay.use_in_regression:
            tasks.append(Task(f"{assay.assay_id}_regr", "regression", assay, None, rows, values,
                              np.sign(codes).astype(np.int64)))
    return tasks, notes


def task_counts(task: Task) -> dict[str, int]:
    """Counts for tasks.csv and the report."""
    if task.kind == "classification":
        n_act = int((task.labels > 0).sum())
        return {"n_labels": len(task.rows), "n_actives": n_act, "n_inactives": len(task.rows) - n_act,
                "n_censored": 0}
    return {"n_labels": len(task.rows), "n_actives": 0, "n_inactives": 0, "n_censored": int((task.censor != 0).sum())}


def task_table(tasks: list[Task], auxiliary_weight: float) -> list[dict[str, str]]:
    """tasks.csv rows (dataset.TASK_COLUMNS): columns numbered per kind in task order, auxiliary tasks weighted."""
    rows = []
    col = {"classification": 0, "regression": 0}
    for task in tasks:
        rows.append({
            "task": task.name, "kind": task.kind, "column": str(col[task.kind]), "assay_id": task.assay.assay_id,
            "assay_type": task.assay.assay_type,
            "threshold": fmt_threshold(task.threshold) if task.threshold is not None else "",
            "direction": task.assay.direction, "auxiliary": "true" if task.assay.auxiliary else "false",
            "weight": format(auxiliary_weight if task.assay.auxiliary else 1.0, "g"),
            **{k: str(v) for k, v in task_counts(task).items()}})
        col[task.kind] += 1
    return rows
