"""Predicting with a trunk and head, and per-task metrics on some rows of a prepared dataset.

`predict` gives probabilities and regression values (with MC-dropout mean and std on request); `evaluate` runs
fedchem.metrics over each task's labelled cells in the rows and aggregates them with SparseChem's
aggregation-weight convention (auxiliary tasks weigh 0 in the headline figures).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch

from fedchem import metrics
from fedchem.algo.batches import aligned_censor, x_batches
from fedchem.algo.model import Head, Trunk
from fedchem.algo.predictions import Predictions, save_predictions
from fedchem.opener.dataset import PreparedDataset


@torch.no_grad()
def _forward(trunk: Trunk, head: Head, X: sp.csr_matrix, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    probs, values = [], []
    for xb in x_batches(X, batch_size):
        logits, regr = head(trunk(xb))
        probs.append(torch.sigmoid(logits).numpy())
        values.append(regr.numpy())
    if not probs:
        return np.zeros((0, head.n_class), np.float32), np.zeros((0, head.n_regr), np.float32)
    return np.concatenate(probs), np.concatenate(values)


def predict(trunk: Trunk, head: Head, X: sp.csr_matrix, mc_samples: int = 0, batch_size: int = 4096,
            seed: int = 0) -> Predictions:
    """Class probabilities (n x Tc) and regression values (n x Tr) for the rows of X.

    With mc_samples > 0, dropout stays on and the result is the mean over that many passes, with its standard
    deviation in class_std / regr_std (MC dropout, an uncertainty estimate); `seed` fixes the dropout masks.
    """
    was_training = trunk.training, head.training
    try:
        if mc_samples <= 0:
            trunk.eval()
            head.eval()
            p, v = _forward(trunk, head, X, batch_size)
            return Predictions(class_scores=p, regr_preds=v)
        trunk.train()
        head.eval()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed) % (1 << 63))
            runs = [_forward(trunk, head, X, batch_size) for _ in range(mc_samples)]
        P = np.stack([r[0] for r in runs])
        V = np.stack([r[1] for r in runs])
        return Predictions(class_scores=P.mean(0), regr_preds=V.mean(0), class_std=P.std(0), regr_std=V.std(0))
    finally:
        trunk.train(was_training[0])
        head.train(was_training[1])


def json_ready(value):
    """JSON-friendly: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {k: json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


@dataclass
class EvalResult:
    """Per-task metrics on some rows, and their aggregates per kind ("classification", "regression")."""

    n_rows: int
    per_task: list[dict]
    aggregate: dict
    predictions: Predictions | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        """JSON-ready (NaN -> null), without the predictions."""
        return json_ready({"n_rows": self.n_rows, "aggregate": self.aggregate, "per_task": self.per_task})


def task_columns(tasks: list[dict], n: int) -> tuple[list[str], np.ndarray]:
    """Task name and aggregation weight (0 for auxiliary tasks, else 1) per column of one kind's matrix."""
    names = [str(j) for j in range(n)]
    weights = np.ones(n)
    for t in tasks:
        j = int(t["column"])
        if 0 <= j < n:
            names[j] = t["task"]
            weights[j] = 0.0 if str(t.get("auxiliary", "")).lower() == "true" else 1.0
    return names, weights


def evaluate(trunk: Trunk, head: Head, data: PreparedDataset, rows: np.ndarray, min_pos: int = 1, min_neg: int = 1,
             min_n: int = 2, mc_samples: int = 0) -> EvalResult:
    """Predict on `rows` and compute every metric of every task on its labelled cells there."""
    rows = np.asarray(rows, dtype=np.int64)
    pred = predict(trunk, head, data.X[rows], mc_samples=mc_samples)
    return evaluate_predictions(data, rows, pred.class_scores, pred.regr_preds, min_pos, min_neg, min_n, pred)


def evaluate_predictions(data: PreparedDataset, rows: np.ndarray, class_scores: np.ndarray, regr_preds: np.ndarray,
                         min_pos: int = 1, min_neg: int = 1, min_n: int = 2,
                         pred: Predictions | None = None) -> EvalResult:
    """Every metric of every task on its labelled cells in `rows`, for predictions already made there."""
    rows = np.asarray(rows, dtype=np.int64)
    pred = pred if pred is not None else Predictions(class_scores=np.asarray(class_scores),
                                                     regr_preds=np.asarray(regr_preds))
    pred.rows = rows
    pred.compound_ids = np.asarray([data.compound_ids[i] for i in rows], dtype=str) if data.compound_ids else None
    per_task, aggregate = [], {}
    cnames, cweights = task_columns(data.class_tasks(), data.Y_class.shape[1])
    rnames, rweights = task_columns(data.regr_tasks(), data.Y_regr.shape[1])
    pred.class_tasks, pred.regr_tasks = np.asarray(cnames, dtype=str), np.asarray(rnames, dtype=str)
    if data.Y_class.shape[1]:
        Yc = data.Y_class[rows].tocsr()
        Yc.eliminate_zeros()  # a stored 0 in Y_class means "unknown"
        table = metrics.per_task_table(Yc, pred.class_scores, "classification", task_names=cnames,
                                       min_pos=min_pos, min_neg=min_neg)
        for j, row in enumerate(table):
            row.update(kind="classification", column=j, auxiliary=bool(cweights[j] == 0))
        per_task += table
        aggregate["classification"] = metrics.aggregate(table, weights=cweights)
    if data.Y_regr.shape[1]:
        Yr = data.Y_regr.tocsr()
        C = Yr.copy()
        C.data = aligned_censor(Yr, data.Y_censor.tocsr())
        table = metrics.per_task_table(Yr[rows], pred.regr_preds, "regression", censor=C[rows],
                                       task_names=rnames, min_n=min_n)
        for j, row in enumerate(table):
            row.update(kind="regression", column=j, auxiliary=bool(rweights[j] == 0))
        per_task += table
        aggregate["regression"] = metrics.aggregate(table, weights=rweights)
    return EvalResult(n_rows=int(rows.size), per_task=per_task, aggregate=aggregate, predictions=pred)


def headline(result: EvalResult) -> tuple[str, float, bool]:
    """One figure to print for a result: (name, value, higher_is_better) — mean AUC-ROC over the non-auxiliary
    classification tasks if there is one, else mean censor-aware RMSE of the regression tasks. Models are chosen by
    `algo.selection`'s per-kind rule, not by this."""
    auc = result.aggregate.get("classification", {}).get("auc_roc", float("nan"))
    if auc == auc:
        return "auc_roc", float(auc), True
    rmse = result.aggregate.get("regression", {}).get("rmse", float("nan"))
    return "rmse", float(rmse), False


def save_result_predictions(path, result: EvalResult) -> None:
    """Write the predictions an `evaluate` / `evaluate_predictions` result holds (the shared format)."""
    p = result.predictions
    save_predictions(path, p.rows, p.compound_ids, p.class_scores, p.regr_preds, class_std=p.class_std,
                     regr_std=p.regr_std, class_tasks=p.class_tasks, regr_tasks=p.regr_tasks)


def save_test_predictions(path, trunk: Trunk, head: Head, data: PreparedDataset, rows: np.ndarray,
                          mc_samples: int = 0) -> None:
    """Predict on `rows` and write them with `save_predictions` (the shared format)."""
    rows = np.asarray(rows, dtype=np.int64)
    pred = predict(trunk, head, data.X[rows], mc_samples=mc_samples)
    cnames, _ = task_columns(data.class_tasks(), data.Y_class.shape[1])
    rnames, _ = task_columns(data.regr_tasks(), data.Y_regr.shape[1])
    save_predictions(path, rows, [data.compound_ids[i] for i in rows], pred.class_scores, pred.regr_preds,
                     class_std=pred.class_std, regr_std=pred.regr_std, class_tasks=cnames, regr_tasks=rnames)
