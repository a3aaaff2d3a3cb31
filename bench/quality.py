"""Held-out quality of `train-local` on real public data, beside a scikit-learn reference on identical inputs/folds.

Run:  .venv/bin/python bench/quality.py            (Tox21 and ChEMBL hERG; ~10 minutes on 2 shared cores)
      .venv/bin/python bench/quality.py --quick    (fewer epochs: a smoke run, not the figures to quote)
      .venv/bin/python bench/quality.py --set tox21

Data: each set is built as one partner with the project's builders and prepared with `fedchem prepare`'s pipeline
(bench/public_prepared.py: ECFP4 folded to 32,768 columns, scrambled; 5 scaffold folds hashed with a bench
secret; consortium-default quorum). Tox21: 12 binary tasks. hERG: IC50 with real ChEMBL qualifiers, as pIC50
regression tasks with censoring plus classification tasks at pIC50 5 and 6, one assay per technology.
Folds: validation fold 0 (early stopping / the reference's regularisation choice), test fold 1 (reported).

Ours: `fedchem train-local PREPARED --out DIR` with the settings printed (the equivalent command is printed too).
Reference: per task, scikit-learn LogisticRegression (classification) / Ridge (regression; censored values
used as if exact: Ridge has no notion of a bound) on the same binarised fingerprints and the same training rows,
with C / alpha picked on the validation fold from a small grid. Both are scored by fedchem.metrics on the test
fold's labelled cells and aggregated over the non-auxiliary tasks the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

SETTINGS = {  # the train-local settings this bench uses (flags of `fedchem train-local`)
    "hidden": [1000], "dropout": 0.5, "batch_size": 128, "lr": 1e-3, "epochs": 20, "lr_steps": [10],
    "lr_gamma": 0.3, "patience": 5, "input_transform": "binarize", "validation_fold": 0, "test_fold": 1, "seed": 0,
}
C_GRID = (0.03, 0.1, 0.3, 1.0)
ALPHA_GRID = (3.0, 10.0, 30.0, 100.0)


def _cfgs(quick: bool):
    from fedchem.algo.config import ModelConfig, TrainingConfig
    s = SETTINGS
    mcfg = ModelConfig(hidden_sizes=tuple(s["hidden"]), dropout=s["dropout"], input_transform=s["input_transform"])
    tcfg = TrainingConfig(epochs=4 if quick else s["epochs"], batch_size=s["batch_size"], learning_rate=s["lr"],
                          lr_steps=tuple(s["lr_steps"]), lr_gamma=s["lr_gamma"],
                          early_stopping_patience=s["patience"], validation_fold=s["validation_fold"],
                          test_fold=s["test_fold"], seed=s["seed"])
    return mcfg, tcfg


def command(path: Path, tcfg) -> str:
    s = SETTINGS
    return (f"fedchem train-local {path} --out OUT --hidden {' '.join(map(str, s['hidden']))} --dropout "
            f"{s['dropout']} --batch-size {s['batch_size']} --lr {s['lr']} --epochs {tcfg.epochs} --lr-steps "
            f"{' '.join(map(str, s['lr_steps']))} --lr-gamma {s['lr_gamma']} --patience {s['patience']} "
            f"--input-transform {s['input_transform']} --validation-fold {s['validation_fold']} --test-fold "
            f"{s['test_fold']} --seed {s['seed']}")


def reference(ds, train, val, test):
    """Per-task LogisticRegression / Ridge on binarised X; returns EvalResult-like aggregates on the test fold."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression, Ridge

    from fedchem import metrics
    from fedchem.algo.batches import aligned_censor
    from fedchem.algo.evaluation import task_columns

    X = ds.X.copy().astype(np.float64)
    X.data[:] = 1.0
    out = {}
    Yc = ds.Y_class.tocsc()
    if Yc.shape[1]:
        scores = np.full((test.size, Yc.shape[1]), 0.5)
        for j in range(Yc.shape[1]):
            col = np.asarray(Yc[:, j].toarray()).ravel()
            tr, va = train[col[train] != 0], val[col[val] != 0]
            if np.unique(col[tr]).size < 2:
                continue
            best, best_auc = None, -1.0
            for C in C_GRID:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    m = LogisticRegression(C=C, max_iter=2000).fit(X[tr], col[tr])
                auc = metrics.auc_roc(col[va], m.predict_proba(X[va])[:, 1]) if np.unique(col[va]).size == 2 else 0
                if best is None or auc > best_auc:
                    best, best_auc = m, auc
            scores[:, j] = best.predict_proba(X[test])[:, 1]
        Y = ds.Y_class[test].tocsr()
        Y.eliminate_zeros()
        names, w = task_columns(ds.class_tasks(), Yc.shape[1])
        table = metrics.per_task_table(Y, scores, "classification", task_names=names)
        out["classification"] = metrics.aggregate(table, weights=w)
    Yr = ds.Y_regr.tocsr()
    if Yr.shape[1]:
        C = Yr.copy()
        C.data = aligned_censor(Yr, ds.Y_censor.tocsr())
        Yrc = Yr.tocsc()
        preds = np.zeros((test.size, Yr.shape[1]))
        for j in range(Yr.shape[1]):
            rows = Yrc.indices[Yrc.indptr[j]:Yrc.indptr[j + 1]]
            vals = Yrc.data[Yrc.indptr[j]:Yrc.indptr[j + 1]]
            is_tr, is_va = np.isin(rows, train), np.isin(rows, val)
            if is_tr.sum() < 2:
                continue
            best, best_rmse = None, np.inf
            for alpha in ALPHA_GRID:
                m = Ridge(alpha=alpha).fit(X[rows[is_tr]], vals[is_tr])
                rmse = np.sqrt(np.mean((m.predict(X[rows[is_va]]) - vals[is_va]) ** 2)) if is_va.any() else 0
                if best is None or rmse < best_rmse:
                    best, best_rmse = m, rmse
            preds[:, j] = best.predict(X[test])
        names, w = task_columns(ds.regr_tasks(), Yr.shape[1])
        table = metrics.per_task_table(Yr[test], preds, "regression", censor=C[test], task_names=names)
        out["regression"] = metrics.aggregate(table, weights=w)
    return out


def fmt(agg: dict) -> str:
    parts = []
    c, r = agg.get("classification"), agg.get("regression")
    if c:
        parts.append(f"AUC-ROC {c['auc_roc']:.4f}  AUC-PR {c['auc_pr']:.4f}  ({c['n_counted']['auc_roc']} tasks)")
    if r:
        parts.append(f"RMSE {r['rmse']:.4f}  RMSE(uncensored) {r['rmse_uncensored']:.4f}  R2 {r['r2']:.4f}  "
                     f"Pearson {r['pearson']:.4f}  ({r['n_counted']['rmse']} tasks)")
    return "; ".join(parts)


def run_set(name: str, quick: bool) -> None:
    from fedchem.algo.train_local import split_folds, train_local
    from fedchem.algo.training import set_threads
    from fedchem.opener.dataset import load_prepared
    from public_prepared import prepared

    path = prepared(name)
    ds = load_prepared(path, verify=False)
    mcfg, tcfg = _cfgs(quick)
    folds = split_folds(ds, tcfg)
    threads = set_threads()
    print(f"\n== {name}: {ds.n_compounds:,} compounds, {ds.n_features:,} features, {ds.Y_class.shape[1]} "
          f"classification + {ds.Y_regr.shape[1]} regression tasks; train/validation/test "
          f"{folds.train.size:,}/{folds.validation.size:,}/{folds.test.size:,} compounds (scaffold folds); "
          f"{threads} threads, load average {os.getloadavg()[0]:.1f}", flush=True)
    print(f"   ours:      {command(path, tcfg)}")
    t = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fedchem-bench-quality-") as tmp:
        run = train_local(ds, Path(tmp) / "out", mcfg, tcfg)
    print(f"   ours       test: {fmt(run.test.aggregate)}   [{run.epochs_run} epochs, best {run.best_epoch}, "
          f"{time.perf_counter() - t:.0f} s]", flush=True)
    t = time.perf_counter()
    ref = reference(ds, folds.train, folds.validation, folds.test)
    print(f"   reference  test: {fmt(ref)}   [LogisticRegression C in {C_GRID} / Ridge alpha in {ALPHA_GRID}, "
          f"picked on the validation fold; {time.perf_counter() - t:.0f} s]", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="4 epochs at most (smoke run)")
    ap.add_argument("--set", choices=["tox21", "herg"], action="append", help="only this set (repeatable)")
    args = ap.parse_args()
    for name in args.set or ["tox21", "herg"]:
        run_set(name, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
