"""Conformal efficiency per task, federated vs alone: each model calibrated on its own validation predictions (the
partner's validation fold), judged on the test fold (fedchem.metrics.conformal: Mondrian inductive conformal).

Classification: the share of test compounds whose prediction set at significance ε holds a single label (higher is
better), with its validity (the share whose set holds the true label, checked against 1 − ε). Regression: the width
of the conformal interval (lower is better) on uncensored values, with its coverage. A model whose validity check
fails on a task is flagged: its efficiency there does not mean what it says.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from fedchem import metrics
from fedchem.metrics.conformal import DEFAULT_SIGNIFICANCE, classification_conformal, regression_conformal
from fedchem.orchestrator.report.inputs import ReportInputs

FIGURE = {"classification": ("efficiency", True), "regression": ("width", False)}  # kind -> (figure, higher better)


def _cells(data, rows: np.ndarray, kind: str, fed: np.ndarray, alone: np.ndarray) -> dict[int, tuple]:
    """Per task column: (truth, federated, alone) on the labelled cells of `rows`; regression: uncensored cells."""
    if kind == "classification":
        Y = sp.csr_matrix(data.Y_class)[rows]
        Y.eliminate_zeros()
        censor = None
    else:
        Y = sp.csr_matrix(data.Y_regr)[rows]
        censor = sp.csr_matrix(data.Y_censor)[rows]
    r, c, v = metrics.labelled_cells(Y)
    keep = np.ones(r.size, bool) if censor is None or not r.size else np.asarray(censor[r, c]).ravel() == 0
    r, c, v = r[keep], c[keep], v[keep]
    out = {}
    for j in range(Y.shape[1]):
        m = c == j
        out[j] = (v[m], np.asarray(fed[r[m], j], np.float64), np.asarray(alone[r[m], j], np.float64))
    return out


def _one(kind: str, test_y, test_pred, cal_y, cal_pred, significance: float) -> dict:
    if kind == "classification":
        return classification_conformal(test_y, test_pred, calibration_true=cal_y, calibration_score=cal_pred,
                                        significance=significance)
    return regression_conformal(test_y, test_pred, calibration_true=cal_y, calibration_pred=cal_pred,
                                significance=significance)


def conformal_figures(inp: ReportInputs, significance: float = DEFAULT_SIGNIFICANCE) -> dict | None:
    """{"significance", "tasks": [...], "summary": {kind: {...}}}, or None when the run or the baseline saved no
    validation predictions (made by an older fedchem)."""
    if inp.federated_validation is None or inp.alone_validation is None:
        return None
    by_col = {(t["kind"], int(t["column"])): t for t in inp.data.tasks}
    tasks = []
    for kind, attr in (("classification", "class_scores"), ("regression", "regr_preds")):
        test = _cells(inp.data, inp.rows, kind, getattr(inp.federated, attr), getattr(inp.alone, attr))
        cal = _cells(inp.data, inp.validation_rows, kind, getattr(inp.federated_validation, attr),
                     getattr(inp.alone_validation, attr))
        figure, _ = FIGURE[kind]
        for j in test:
            info = by_col.get((kind, j), {"task": str(j)})
            fed = _one(kind, test[j][0], test[j][1], cal[j][0], cal[j][1], significance)
            alone = _one(kind, test[j][0], test[j][2], cal[j][0], cal[j][2], significance)
            fv, av = fed[figure], alone[figure]
            tasks.append({"task": info.get("task", str(j)), "kind": kind, "column": j,
                          "auxiliary": str(info.get("auxiliary", "")).lower() == "true",
                          "federated": fed, "alone": alone,
                          "delta": (fv - av) if np.isfinite(fv) and np.isfinite(av) else None})
    summary = {}
    for kind, (figure, higher) in FIGURE.items():
        main = [t for t in tasks if t["kind"] == kind and not t["auxiliary"]]
        if not main:
            continue
        both = [t for t in main if t["delta"] is not None]
        d = np.array([t["delta"] for t in both], dtype=np.float64)
        better = int(np.sum(d > 0)) if higher else int(np.sum(d < 0))
        worse = int(np.sum(d < 0)) if higher else int(np.sum(d > 0))
        summary[kind] = {
            "figure": figure, "higher_is_better": higher, "n_tasks": len(main), "n_evaluated": len(both),
            "median_federated": float(np.median([t["federated"][figure] for t in both])) if both else None,
            "median_alone": float(np.median([t["alone"][figure] for t in both])) if both else None,
            "median_delta": float(np.median(d)) if d.size else None,
            "federated_better": better, "alone_better": worse,
            "valid_federated": sum(1 for t in both if t["federated"]["valid"]),
            "valid_alone": sum(1 for t in both if t["alone"]["valid"]),
        }
    return {"significance": significance, "tasks": tasks, "summary": summary}
