"""A small learnable prepared dataset for the model/training tests (synthetic fingerprints, planted signal)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from fedchem.opener.dataset import TASK_COLUMNS, PreparedDataset, save_prepared


def synthetic_dataset(n: int = 800, n_features: int = 512, nnz: int = 24, n_class: int = 3, n_regr: int = 2,
                      n_folds: int = 5, seed: int = 0, missing: float = 0.3) -> PreparedDataset:
    """Count fingerprints with a planted linear signal: class tasks are thresholds of it, regression tasks are it
    plus noise, with some values censored at a bound (as "<" / ">" qualifiers make them)."""
    rng = np.random.default_rng(seed)
    cols = np.stack([rng.choice(n_features, nnz, replace=False) for _ in range(n)])
    vals = rng.integers(1, 4, size=(n, nnz)).astype(np.float32)
    X = sp.csr_matrix((vals.ravel(), cols.ravel(), np.arange(0, n * nnz + 1, nnz)), shape=(n, n_features))
    X.sort_indices()
    Xb = X.copy()
    Xb.data[:] = 1
    n_tasks = n_class + n_regr
    W = rng.normal(size=(n_features, n_tasks)) * (rng.random((n_features, n_tasks)) < 0.1)
    S = np.asarray(Xb @ W)
    S = (S - S.mean(0)) / (S.std(0) + 1e-9)

    def labelled():
        return rng.random(n) >= missing

    yc = sp.lil_matrix((n, n_class), dtype=np.float32)
    for j in range(n_class):
        keep = labelled()
        yc[np.flatnonzero(keep), j] = np.where(S[keep, j] > 0.3, 1.0, -1.0)[:, None]
    rr, rc, rv, cv = [], [], [], []
    for j in range(n_regr):
        keep = np.flatnonzero(labelled())
        value = 6.0 + S[keep, n_class + j] + 0.1 * rng.normal(size=keep.size)
        censor = np.zeros(keep.size, np.float32)
        high = value > 7.2
        censor[high] = 1.0  # "> 7.2": the true value lies above the stored bound
        value = np.where(high, 7.2, value)
        rr += list(keep)
        rc += [j] * keep.size
        rv += list(value)
        cv += list(censor)
    Yr = sp.csr_matrix((np.asarray(rv, np.float32), (rr, rc)), shape=(n, n_regr))
    Ycen = sp.csr_matrix((np.asarray(cv, np.float32), (rr, rc)), shape=(n, n_regr))  # same cells, zeros kept
    tasks = []
    for j in range(n_class):
        tasks.append({"task": f"class_{j}", "kind": "classification", "column": j, "assay_id": f"a{j}",
                      "assay_type": "OTHER", "threshold": "0.3", "direction": "high", "auxiliary": "false",
                      "weight": "1.0", "n_labels": "", "n_actives": "", "n_inactives": "", "n_censored": ""})
    for j in range(n_regr):
        tasks.append({"task": f"regr_{j}", "kind": "regression", "column": j, "assay_id": f"r{j}",
                      "assay_type": "OTHER", "threshold": "", "direction": "", "auxiliary": "false",
                      "weight": "1.0", "n_labels": "", "n_actives": "", "n_inactives": "", "n_censored": ""})
    assert list(tasks[0]) == TASK_COLUMNS
    return PreparedDataset(X=X, Y_class=yc.tocsr(), Y_regr=Yr, Y_censor=Ycen,
                           folds=rng.integers(0, n_folds, size=n), tasks=tasks,
                           compound_ids=[f"cmp{i:05d}" for i in range(n)])


def write_synthetic(path: Path, **kwargs) -> Path:
    """Save a synthetic dataset as a prepared folder (the real contract, via save_prepared)."""
    return save_prepared(synthetic_dataset(**kwargs), Path(path), report_md="synthetic\n",
                         extra_manifest={"partner": "synthetic"})
