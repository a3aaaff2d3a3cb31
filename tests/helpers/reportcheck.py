"""Independent checks of a partner's report (scipy and scikit-learn only, no fedchem code): recomputed metrics, the
ids a report must not mention, and headless Chromium. Used by the report tests and the slow end-to-end report test.
"""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import metrics as skm

ME = "partner-1"


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def _f(v: str) -> float:
    return float(v) if v not in ("", None) else float("nan")


def _truth(prepared: Path, kind: str, rows: np.ndarray):
    """Per task column: (positions among `rows`, values, censor) read straight from the prepared .npz files."""
    name = "Y_class.npz" if kind == "classification" else "Y_regr.npz"
    Y = sp.load_npz(prepared / name).tocsr()[rows].tocsc()
    C = sp.load_npz(prepared / "Y_censor.npz").tocsr()[rows].tocsc() if kind == "regression" else None
    out = []
    for j in range(Y.shape[1]):
        a, b = Y.indptr[j], Y.indptr[j + 1]
        pos, vals = Y.indices[a:b], Y.data[a:b].astype(np.float64)
        if kind == "classification":
            keep = vals != 0
            out.append((pos[keep], vals[keep], None))
        else:
            cmap = dict(zip(C.indices[C.indptr[j]:C.indptr[j + 1]], C.data[C.indptr[j]:C.indptr[j + 1]]))
            out.append((pos, vals, np.array([cmap.get(p, 0.0) for p in pos])))
    return out


def _sk_metrics(kind: str, y, f, c) -> dict:
    if kind == "classification":
        lab = (y > 0).astype(int)
        if lab.size == 0 or lab.min() == lab.max():
            return {"auc_roc": float("nan"), "auc_pr": float("nan")}
        p, r, _ = skm.precision_recall_curve(lab, f)
        return {"auc_roc": skm.roc_auc_score(lab, f), "auc_pr": skm.auc(r, p)}
    ex = c == 0
    if ex.sum() < 2:
        return {"r2": float("nan"), "rmse": float("nan")}
    e = f - y
    e = np.where(c < 0, np.maximum(e, 0), np.where(c > 0, np.minimum(e, 0), e))
    r2 = skm.r2_score(y[ex], f[ex]) if np.ptp(y[ex]) > 0 else float("nan")
    return {"r2": r2, "rmse": float(np.sqrt(np.mean(e ** 2)))}


def _recompute(inputs: dict, partner: str, rows_mask=None) -> dict:
    """{(task, metric): (federated, alone)} recomputed from both prediction files (optionally on some test rows)."""
    prepared = Path(inputs["prepared"][partner])
    fed = np.load(inputs["run_dir"] / "partners" / partner / "test_predictions.npz")
    alone = np.load(inputs["alone"][partner] / "test_predictions.npz")
    rows = fed["rows"]
    order = {int(r): i for i, r in enumerate(alone["rows"])}
    a_idx = np.array([order[int(r)] for r in rows])
    with open(prepared / "tasks.csv", newline="") as fh:
        tasks = list(csv.DictReader(fh))
    out = {}
    for kind, key in (("classification", "class_scores"), ("regression", "regr_preds")):
        names = {int(t["column"]): t["task"] for t in tasks if t["kind"] == kind}
        for j, (pos, y, c) in enumerate(_truth(prepared, kind, rows)):
            if rows_mask is not None:
                keep = rows_mask[pos]
                pos, y, c = pos[keep], y[keep], (None if c is None else c[keep])
                if pos.size < 5:  # the report's per-bin quorum (CompareSettings.min_bin_values)
                    for m in (("auc_roc", "auc_pr") if kind == "classification" else ("r2", "rmse")):
                        out[names[j], m] = (float("nan"), float("nan"))
                    continue
            f = fed[key][pos, j].astype(np.float64)
            a = alone[key][a_idx[pos], j].astype(np.float64)
            mf, ma = _sk_metrics(kind, y, f, c), _sk_metrics(kind, y, a, c)
            for m in mf:
                out[names[j], m] = (mf[m], ma[m])
    return out


def _close(a: float, b: float) -> bool:
    return (np.isnan(a) and np.isnan(b)) or abs(a - b) <= 1e-9 * max(1.0, abs(a))


def _ids_of(prepared: Path) -> tuple[set[str], set[str]]:
    with open(prepared / "tasks.csv", newline="") as fh:
        tasks = {t["task"] for t in csv.DictReader(fh)}
    with open(prepared / "compounds.csv", newline="") as fh:
        cpds = {i for r in csv.DictReader(fh) for i in r["input_compound_id"].split(";")}
    return tasks, cpds


def _foreign_ids(inputs: dict, me: str = ME) -> tuple[set[str], set[str], set[str]]:
    """Other partners' task and compound ids that this partner does not have too, and this partner's task ids."""
    my_tasks, my_cpds = _ids_of(Path(inputs["prepared"][me]))
    tasks, cpds = set(), set()
    for name, prepared in inputs["prepared"].items():
        if name != me:
            t, c = _ids_of(Path(prepared))
            tasks |= t
            cpds |= c
    return tasks - my_tasks, cpds - my_cpds, my_tasks


def _mentions(text: str, ids: set[str]) -> set[str]:
    """The ids that occur in the text as whole words (ids are made of letters, digits, '_', '.' and '-')."""
    words = set(re.findall(r"[A-Za-z0-9_.\-]+", text))
    words |= {w.strip(".-") for w in words}
    plain = set(re.findall(r"[A-Za-z0-9_]+", text))
    return {i for i in ids if i in words or i in plain}


def _chromium() -> str:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.skip("Debian's chromium is not installed (CI: apt-get install -y chromium)")
    return exe


def _chromium_args(profile: Path) -> list[str]:
    return [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile}"]
