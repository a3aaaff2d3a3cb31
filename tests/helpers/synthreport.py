"""Cheap synthetic inputs for the report: a prepared dataset, an alone baseline and a run folder, in the exact
layouts `fedchem prepare`, `fedchem train-local` and `fedchem run` write, with made-up labels and predictions.

No training and no Substra: a case takes milliseconds to lay out, so the report can be rendered over many shapes of
data (tiny test folds, one task, one class only, constant or identical predictions, empty similarity bins, awkward
task names). The files are written with the project's own writers (save_prepared, save_predictions, Ledger), so the
report reads them exactly as it reads real ones; tests/helpers/reportsetup.py builds the real-data counterpart.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedchem.opener.config import FingerprintConfig
from fedchem.opener.secret_check import MANIFEST_KEY, secret_fingerprints
import scipy.sparse as sp
import yaml

N_FEATURES = 128
VALIDATION_FOLD, TEST_FOLD = 0, 1
# task names a partner might use: the report must show them as text, whatever they hold
NAMES = ["CHEMBL240_class_6.5", "a$x^2$ b", "<b>&amp;", "pIC50 [nM] µ", "", "bad$\\nocommand$tex", "_x_", "tab\tname"]
MODES = ("informative", "random", "constant", "same")


@dataclass
class Case:
    """The shape of one synthetic partner: every field is something that has broken, or could break, a report."""

    seed: int = 0
    n_compounds: int = 60
    n_class: int = 3
    n_regr: int = 2
    label_density: float = 0.7        # share of labelled cells per task
    pos_rate: float = 0.4             # share of actives (0 or 1: a task with one class only)
    test_share: float = 0.3           # share of compounds in the test fold
    fed_mode: str = "informative"     # how the federated model's predictions are made (MODES)
    alone_mode: str = "informative"   # "same": the alone model predicts exactly what the federated one does
    constant_target: bool = False     # regression values all equal (R² undefined)
    censored: bool = True
    odd_names: bool = False
    aux_share: float = 0.0            # share of tasks marked auxiliary
    clusters: int = 4                 # chemical series: spreads test compounds over the similarity bins
    extra: dict = field(default_factory=dict)


def _fingerprints(rng: np.random.Generator, case: Case) -> sp.csr_matrix:
    """Rows drawn around a few random prototypes (bits flipped at random), so similarities to the training
    folds vary from near 0 to 1."""
    protos = rng.random((max(1, case.clusters), N_FEATURES)) < 0.15
    rows = []
    for _ in range(case.n_compounds):
        p = protos[rng.integers(len(protos))].copy()
        flip = rng.random(N_FEATURES) < rng.choice([0.02, 0.1, 0.3])
        p ^= flip
        if not p.any():
            p[rng.integers(N_FEATURES)] = True
        rows.append(p)
    return sp.csr_matrix(np.array(rows, dtype=np.float32).reshape(case.n_compounds, N_FEATURES))


def _folds(rng: np.random.Generator, case: Case) -> np.ndarray:
    u = rng.random(case.n_compounds)
    folds = np.where(u < case.test_share, TEST_FOLD, np.where(u < case.test_share + 0.15, VALIDATION_FOLD,
                                                               2 + rng.integers(0, 3, case.n_compounds)))
    return folds.astype(np.int64)


def _labels(rng: np.random.Generator, case: Case):
    n = case.n_compounds
    lab_c = rng.random((n, case.n_class)) < case.label_density
    yc = np.where(rng.random((n, case.n_class)) < case.pos_rate, 1.0, -1.0) * lab_c
    lab_r = rng.random((n, case.n_regr)) < case.label_density
    values = np.full((n, case.n_regr), 6.0) if case.constant_target else rng.normal(6.0, 1.2, (n, case.n_regr))
    values = np.round(values, 1)
    r, c = np.nonzero(lab_r)
    Y_regr = sp.csr_matrix((values[r, c], (r, c)), shape=(n, case.n_regr))
    cens = rng.choice([-1.0, 0.0, 0.0, 0.0, 1.0], r.size) if case.censored else np.zeros(r.size)
    Y_censor = sp.csr_matrix((cens, (r, c)), shape=(n, case.n_regr))  # explicit zeros kept: Y_regr's cells
    return sp.csr_matrix(yc), Y_regr, Y_censor, values


def _tasks(rng: np.random.Generator, case: Case, Y_class, Y_regr, Y_censor) -> list[dict]:
    tasks = []
    k = 0
    for kind, n in (("classification", case.n_class), ("regression", case.n_regr)):
        for j in range(n):
            name = (f"{NAMES[k % len(NAMES)]}#{k}" if case.odd_names else f"task_{kind[:5]}_{j}")
            k += 1
            aux = bool(rng.random() < case.aux_share)
            if kind == "classification":
                col = Y_class[:, j].toarray().ravel()
                counts = {"n_labels": int((col != 0).sum()), "n_actives": int((col > 0).sum()),
                          "n_inactives": int((col < 0).sum()), "n_censored": ""}
            else:
                counts = {"n_labels": int(Y_regr[:, j].nnz), "n_actives": "", "n_inactives": "",
                          "n_censored": int(np.count_nonzero(Y_censor[:, j].toarray()))}
            tasks.append({"task": name, "kind": kind, "column": j, "assay_id": f"A{k}",
                          "assay_type": rng.choice(["ADME", "PANEL", "OTHER", ""]),
                          "threshold": "6.5" if kind == "classification" else "", "direction": "high",
                          "auxiliary": "true" if aux else "false", "weight": "0.5" if aux else "1.0", **counts})
    return tasks


def _predict(rng: np.random.Generator, mode: str, Y_class, values: np.ndarray, case: Case):
    """Class probabilities and regression values for every compound, by `mode`."""
    n = case.n_compounds
    truth = Y_class.toarray()
    if mode == "constant":
        return np.full((n, case.n_class), 0.5), np.full((n, case.n_regr), 6.0)
    if mode == "random":
        return rng.random((n, case.n_class)), rng.normal(6.0, 1.5, (n, case.n_regr))
    logits = 1.5 * truth + rng.normal(0.0, 1.0, truth.shape)
    scores = np.round(1.0 / (1.0 + np.exp(-logits)), 2)  # rounded: ties, as real models give
    return scores, values + rng.normal(0.0, 0.7, values.shape)


SECRET = b"0123456789abcdef0123456789abcdef"
# the prepared folders and the ledger carry the keyed fingerprints of this secret, as `fedchem prepare` and `run`
# write them (issue 12: report checks that a prepared folder is this partner's, made with the run's secret)
FINGERPRINTS = secret_fingerprints(SECRET, FingerprintConfig())


def write_partner(root: Path, name: str, case: Case) -> dict:
    """One partner's prepared folder, alone baseline and federated predictions; returns the pieces the run needs."""
    from fedchem.algo.predictions import save_predictions
    from fedchem.opener.dataset import PreparedDataset, save_prepared

    rng = np.random.default_rng(case.seed)
    X = _fingerprints(rng, case)
    folds = _folds(rng, case)
    Y_class, Y_regr, Y_censor, values = _labels(rng, case)
    tasks = _tasks(rng, case, Y_class, Y_regr, Y_censor)
    ids = [f"{name}-cpd-{i}" for i in range(case.n_compounds)]
    prepared = save_prepared(PreparedDataset(X=X, Y_class=Y_class, Y_regr=Y_regr, Y_censor=Y_censor, folds=folds,
                                             tasks=tasks, compound_ids=ids), root / "prepared" / name,
                            extra_manifest={"partner": name, MANIFEST_KEY: FINGERPRINTS})
    rows = np.flatnonzero(folds == TEST_FOLD)
    fed = _predict(rng, case.fed_mode, Y_class, values, case)
    alone = fed if case.alone_mode == "same" else _predict(rng, case.alone_mode, Y_class, values, case)
    class_names = [t["task"] for t in tasks if t["kind"] == "classification"]
    regr_names = [t["task"] for t in tasks if t["kind"] == "regression"]
    dirs = {"federated": root / "run" / "partners" / name, "alone": root / "alone" / name}
    for (what, (cs, rp)), order in zip((("federated", fed), ("alone", alone)), (rows, rows[::-1])):
        save_predictions(dirs[what] / "test_predictions.npz", order, [ids[i] for i in order], cs[order], rp[order],
                         class_tasks=class_names, regr_tasks=regr_names)
    val = _validation_figures(rng)
    _json(dirs["alone"] / "metrics.json", {"best_epoch": 3, "validation": val})
    return {"prepared": prepared, "alone": dirs["alone"], "partner_dir": dirs["federated"], "rng": rng}


def _validation_figures(rng: np.random.Generator) -> dict:
    """What a round log or metrics.json holds: mean validation metrics per kind, some of them missing."""
    v = lambda: None if rng.random() < 0.15 else float(np.round(rng.random(), 3))  # noqa: E731
    return {"classification": {"auc_pr": v(), "auc_roc": v()}, "regression": {"r2": v(), "rmse": v()}}


def _json(path: Path, doc: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=2) + "\n")


def write_run(root: Path, cases: dict[str, Case], rounds: int = 3) -> dict:
    """A completed, evaluated run of these partners (ledger, settings, per-partner predictions, round logs and
    metrics), their alone baselines, prepared folders, and a consortium config naming them (raw/consortium.yaml,
    as the demo lays it out). Returns {"run_dir", "consortium", "prepared": {name: dir}, "alone": {name: dir}}."""
    from fedchem.orchestrator.ledger import Ledger, settings_hash

    root = Path(root)
    names = list(cases)
    settings = {"training": {"validation_fold": VALIDATION_FOLD, "test_fold": TEST_FOLD, "epochs_per_round": 1,
                             "batch_size": 64, "learning_rate": 0.001},
                "model": {"hidden_sizes": [64], "dropout": 0.1, "input_transform": "binarize"},
                "fingerprint": {"kind": "folded", "radius": 2, "size": N_FEATURES, "scramble": True}}
    run_dir = root / "run"
    _json(run_dir / "settings.json", settings)
    out = {"run_dir": run_dir, "prepared": {}, "alone": {}}
    for name, case in cases.items():
        p = write_partner(root, name, case)
        out["prepared"][name], out["alone"][name] = p["prepared"], p["alone"]
        rng = p["rng"]
        for r in range(1, rounds + 1):
            log = {"partner": name, "round": r}
            if r > 1:
                log["validation_of_incoming"] = {"after_round": r - 1, "aggregate": _validation_figures(rng)}
            _json(p["partner_dir"] / "logs" / f"round_{r:03d}.json", log)
        _json(p["partner_dir"] / "metrics.json", {"after_round": rounds,
                                                  "validation": {"aggregate": _validation_figures(rng)}})
    raw = root / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "secret").write_text(SECRET.decode() + "\n")
    for name in names:
        (raw / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, "prepared_dir": str(out["prepared"][name])}))
    cpath = raw / "consortium.yaml"
    cpath.write_text(yaml.safe_dump({"name": "synthetic", "secret": {"file": "secret"},
                                     "partners": [{"name": n, "config": f"{n}.yaml"} for n in names]}))
    ledger = Ledger(run_name="synthetic", settings_hash=settings_hash(settings), partners=names,
                    secret_fingerprints=FINGERPRINTS,
                    aggregator="aggregator", rounds_planned=rounds, secure=True, consortium_path=str(cpath),
                    status="completed", completed_rounds=rounds, evaluated=True)
    ledger.save(run_dir)
    out["consortium"] = cpath
    return out
