"""Federated vs alone for one partner, recomputed from the saved test predictions and the prepared truths.

Per task: both models' metrics on the same held-out test compounds, the deltas, a paired bootstrap interval of
each delta and a verdict (helped / hurt / no difference beyond noise, on the kind's primary metric). Per kind:
the median delta over tasks with a bootstrap interval (the same resamples of test compounds for every task).
Per similarity bin of the test compounds to the partner's training folds: the per-task deltas recomputed on the
compounds of that bin, aggregated. Auxiliary tasks are summarised apart and never enter the headline figures.
Each interval is the bootstrap's percentile interval as it is: never stretched to contain its point estimate, which
it need not (see stats.outside_interval; the page flags such a figure and plots both from their own values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fedchem import metrics
from fedchem.orchestrator.report import domain
from fedchem.orchestrator.report import stats
from fedchem.orchestrator.report.inputs import ReportInputs

KINDS = ("classification", "regression")


@dataclass(frozen=True)
class CompareSettings:
    """How the comparison is computed (recorded in the report so a reader can repeat it)."""

    replicates: int = 1000      # bootstrap resamples of the test compounds
    level: float = 0.95         # two-sided interval level
    seed: int = 0               # of the bootstrap's resampling (not secret)
    edges: tuple[float, ...] = domain.EDGES
    min_bin_values: int = 5     # a task enters a similarity bin with at least this many labelled test compounds there
    significance: float = 0.2   # ε of the conformal prediction sets and intervals (report.conformal)


@dataclass
class TaskCells:
    """The labelled test cells of one task: position among the test rows, truth, both predictions, censor."""

    info: dict
    kind: str
    pos: np.ndarray
    y: np.ndarray
    fed: np.ndarray
    alone: np.ndarray
    censor: np.ndarray | None


def task_cells(inp: ReportInputs) -> list[TaskCells]:
    """Every task's labelled cells on the test rows (stored zeros of Y_class are unknown, as in training)."""
    out = []
    rows = inp.rows
    by_col = {(t["kind"], int(t["column"])): t for t in inp.data.tasks}
    Yc = sp.csr_matrix(inp.data.Y_class[rows])
    Yc.eliminate_zeros()
    # censor flags looked up cell by cell (an unstored flag is "="), whatever the storage order of Y_censor
    Yr, Cr = sp.csr_matrix(inp.data.Y_regr)[rows], sp.csr_matrix(inp.data.Y_censor)[rows]
    for kind, Y, F, A in (("classification", Yc, inp.federated.class_scores, inp.alone.class_scores),
                          ("regression", Yr, inp.federated.regr_preds, inp.alone.regr_preds)):
        r, c, v = metrics.labelled_cells(Y)
        cens = np.asarray(Cr[r, c]).ravel() if kind == "regression" and r.size else None
        bounds = np.searchsorted(c, np.arange(Y.shape[1] + 1))
        for j in range(Y.shape[1]):
            part = slice(bounds[j], bounds[j + 1])
            pos = r[part]
            out.append(TaskCells(info=by_col.get((kind, j), {"task": str(j), "column": str(j)}), kind=kind, pos=pos,
                                 y=v[part], fed=np.asarray(F[pos, j], dtype=np.float64),
                                 alone=np.asarray(A[pos, j], dtype=np.float64),
                                 censor=None if cens is None else cens[part]))
    return out


def _point(cell: TaskCells, pred: np.ndarray) -> dict[str, float]:
    """The reported metrics of one task from fedchem.metrics (scikit-learn's definitions) on all its test cells."""
    if cell.kind == "classification":
        return {"auc_pr": metrics.auc_pr(cell.y, pred), "auc_roc": metrics.auc_roc(cell.y, pred)}
    res = metrics.regression_task_metrics(cell.y, pred, censor=cell.censor)
    return {"r2": float(res["r2"]), "rmse": float(res["rmse"])}


def _counts(cell: TaskCells) -> dict:
    if cell.kind == "classification":
        n_pos = int((cell.y > 0).sum())
        return {"n": int(cell.y.size), "n_pos": n_pos, "n_neg": int(cell.y.size) - n_pos}
    n_cens = int(np.count_nonzero(cell.censor)) if cell.censor is not None else 0
    return {"n": int(cell.y.size), "n_censored": n_cens, "n_uncensored": int(cell.y.size) - n_cens}


def _finite(x: float) -> bool:
    return x is not None and isinstance(x, (int, float, np.floating)) and math.isfinite(float(x))


def _is_aux(info: dict) -> bool:
    return str(info.get("auxiliary", "")).lower() == "true"


def _replicate_deltas(cell: TaskCells, metric: str, W: np.ndarray) -> np.ndarray:
    """Federated minus alone metric under each weight row (paired: the same weights for both models)."""
    f = stats.weighted_metric(metric, cell.y, cell.fed, cell.censor, W)
    a = stats.weighted_metric(metric, cell.y, cell.alone, cell.censor, W)
    return f - a


def _median_summary(point: np.ndarray, reps: np.ndarray, cfg: CompareSettings) -> dict:
    """Median over tasks of the point deltas, with the percentile interval of the per-replicate medians."""
    ok = np.isfinite(point)
    if not ok.any():
        return {"n_tasks": 0, "median_delta": None, "ci_low": None, "ci_high": None}
    sub = reps[:, ok]
    with np.errstate(all="ignore"):
        counts = np.isfinite(sub).sum(axis=1)
        meds = np.full(sub.shape[0], np.nan)
        has = counts > 0
        meds[has] = np.nanmedian(sub[has], axis=1)
    lo, hi = stats.percentile_interval(meds, cfg.level)
    return {"n_tasks": int(ok.sum()), "median_delta": float(np.median(point[ok])), "ci_low": lo, "ci_high": hi}


def _verdict_counts(tasks: list[dict]) -> dict:
    out = {"helped": 0, "hurt": 0, "no difference": 0, "not evaluable": 0}
    for t in tasks:
        out[t["verdict"]] += 1
    return out


def compare(inp: ReportInputs, cfg: CompareSettings = CompareSettings()) -> dict:
    """The report's figures (JSON-ready; NaN becomes None later): tasks, summaries, breakdown, applicability domain."""
    cells = task_cells(inp)
    n_test = int(inp.rows.size)
    rng = np.random.default_rng(cfg.seed)
    counts = stats.bootstrap_counts(n_test, cfg.replicates, rng)

    # applicability domain: nearest-neighbour similarity of each test compound to the training folds
    X = sp.csr_matrix(inp.data.X)
    sim = domain.nearest_similarity(X[inp.rows], X[inp.training_rows])
    bins = domain.assign_bins(sim, cfg.edges)
    labels = domain.bin_labels(cfg.edges)
    n_bins = len(labels)
    indicator = np.stack([(bins == k) for k in range(n_bins)]).astype(np.int32)  # bins x test compounds

    tasks: list[dict] = []
    # per (task index, metric): bootstrap deltas; deltas per bin; bootstrap deltas per bin
    reps: dict[tuple[int, str], np.ndarray] = {}
    bin_deltas: dict[tuple[int, str], np.ndarray] = {}
    bin_reps: dict[tuple[int, str], np.ndarray] = {}
    for i, cell in enumerate(cells):
        fed, alone = _point(cell, cell.fed), _point(cell, cell.alone)
        W = counts[:, cell.pos]
        row = {"task": cell.info.get("task", ""), "kind": cell.kind, "column": int(cell.info.get("column", 0)),
               "assay_type": cell.info.get("assay_type", "") or "unspecified", "auxiliary": _is_aux(cell.info),
               **_counts(cell), "metrics": {}}
        for m in stats.metrics_of(cell.kind):
            d = stats.deltas(m, fed[m], alone[m])
            rd = _replicate_deltas(cell, m, W) if _finite(d["delta"]) else np.full(cfg.replicates, np.nan)
            lo, hi = stats.percentile_interval(rd, cfg.level)
            row["metrics"][m] = {"federated": fed[m], "alone": alone[m], **d, "ci_low": lo, "ci_high": hi}
            reps[i, m] = rd
            # per similarity bin: the same task recomputed on the compounds of each bin (and their resamples)
            Wb = indicator[:, cell.pos]
            enough = Wb.sum(axis=1) >= cfg.min_bin_values
            bin_deltas[i, m] = np.where(enough, _replicate_deltas(cell, m, Wb), np.nan)
            bin_reps[i, m] = np.stack([_replicate_deltas(cell, m, W * Wb[k]) if enough[k]
                                       else np.full(cfg.replicates, np.nan) for k in range(n_bins)])
        primary = stats.PRIMARY[cell.kind]
        pm = row["metrics"][primary]
        row["verdict"] = stats.verdict(primary, (pm["ci_low"], pm["ci_high"]))
        tasks.append(row)

    summaries = {}
    for group, want_aux in (("headline", False), ("auxiliary", True)):
        summaries[group] = {}
        for kind in KINDS:
            idx = [i for i, t in enumerate(tasks) if t["kind"] == kind and t["auxiliary"] == want_aux]
            if not idx:
                continue
            block = {"n_tasks": len(idx), "verdicts": _verdict_counts([tasks[i] for i in idx]),
                     "primary_metric": stats.PRIMARY[kind], "metrics": {}}
            for m in stats.metrics_of(kind):
                point = np.array([tasks[i]["metrics"][m]["delta"] for i in idx], dtype=np.float64)
                R = np.stack([reps[i, m] for i in idx], axis=1)
                fed_vals = np.array([tasks[i]["metrics"][m]["federated"] for i in idx], dtype=np.float64)
                alone_vals = np.array([tasks[i]["metrics"][m]["alone"] for i in idx], dtype=np.float64)
                both = np.isfinite(fed_vals) & np.isfinite(alone_vals)
                block["metrics"][m] = {
                    **_median_summary(point, R, cfg),
                    "mean_federated": float(fed_vals[both].mean()) if both.any() else None,
                    "mean_alone": float(alone_vals[both].mean()) if both.any() else None,
                }
            summaries[group][kind] = block

    breakdown = []
    keys = sorted({(t["kind"], t["assay_type"], t["auxiliary"]) for t in tasks})
    for kind, assay_type, aux in keys:
        sel = [t for t in tasks if (t["kind"], t["assay_type"], t["auxiliary"]) == (kind, assay_type, aux)]
        primary = stats.PRIMARY[kind]
        d = np.array([t["metrics"][primary]["delta"] for t in sel], dtype=np.float64)
        d = d[np.isfinite(d)]
        breakdown.append({"kind": kind, "assay_type": assay_type, "auxiliary": aux, "n_tasks": len(sel),
                          **_verdict_counts(sel), "primary_metric": primary,
                          "median_delta": float(np.median(d)) if d.size else None})

    domain_rows = []
    for k in range(n_bins):
        entry = {"bin": k, "label": labels[k], "n_compounds": int(indicator[k].sum()), "kinds": {}}
        for kind in KINDS:
            idx = [i for i, t in enumerate(tasks) if t["kind"] == kind and not t["auxiliary"]]
            if not idx:
                continue
            entry["kinds"][kind] = {}
            for m in stats.metrics_of(kind):
                point = np.array([bin_deltas[i, m][k] for i in idx], dtype=np.float64)
                R = np.stack([bin_reps[i, m][k] for i in idx], axis=1)
                ok = point[np.isfinite(point)]
                entry["kinds"][kind][m] = {**_median_summary(point, R, cfg),
                                           "mean_delta": float(ok.mean()) if ok.size else None}
        domain_rows.append(entry)

    return {
        "n_test_compounds": n_test,
        "n_training_compounds": int(inp.training_rows.size),
        "tasks": tasks,
        "summary": summaries,
        "breakdown": breakdown,
        "domain": {"edges": list(cfg.edges), "labels": labels, "bins": domain_rows,
                   "similarity_quantiles": _quantiles(sim), "min_values_per_task": cfg.min_bin_values},
        "method": {"bootstrap_replicates": cfg.replicates, "level": cfg.level, "seed": cfg.seed,
                   "primary_metrics": dict(stats.PRIMARY), "seeds": 1},
    }


def _quantiles(sim: np.ndarray) -> dict:
    if sim.size == 0:
        return {}
    q = np.percentile(sim, [0, 25, 50, 75, 100])
    return dict(zip(["min", "q25", "median", "q75", "max"], map(float, q)))


def selection_facts(inp: ReportInputs) -> dict:
    """Which round (federated) and epoch (alone) each kind's compared model comes from, and the rule that chose
    them (fedchem.algo.selection, the same on both sides), from the two metrics files."""
    fm, am = inp.federated_metrics or {}, inp.alone_metrics or {}
    rule = (fm.get("selection") or am.get("selection") or {}).get("rule", {})
    return {"rule": rule, "federated": fm.get("selected", {}), "alone": am.get("selected", {}),
            "last_round": fm.get("after_round"), "epochs_run": am.get("epochs_run")}
