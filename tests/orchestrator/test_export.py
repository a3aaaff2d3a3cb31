"""`fedchem export`: SparseChem inputs that pass SparseChem's own loader rules, and a model as one state_dict file.

SparseChem's rules, read from github.com/melloddy/SparseChem at commit 258c20f: sparsechem/utils.py
`load_sparse` (.npz through scipy.sparse.load_npz), `load_task_weights` (columns, sizes, ranges, ids) and
sparsechem/train.py / data.py (x and folding rows agree; y_class only +1/-1; y_censor with y_regr's pattern and
values -1/0/+1). Real data: ChEMBL hERG with real qualifiers and auxiliary tasks; the run of tests/reportsetup.py.
"""

from __future__ import annotations

import csv
import stat
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fedchem.opener.config import FingerprintConfig, PreparationConfig
from fedchem.opener.dataset import load_prepared
from fedchem.opener.errors import DataError
from fedchem.opener.prepare import prepare_partner
from fedchem.orchestrator.cli.main import main as cli_main
from fedchem.orchestrator.export import export_model, export_sparsechem, load_exported_model

from prepare_data import herg_partner

# sparsechem/utils.py load_task_weights: the only columns it accepts
SPARSECHEM_WEIGHT_COLUMNS = {"", "task_id", "training_weight", "aggregation_weight", "task_type", "censored_weight",
                             "catalog_id"}


def load_task_weights(path: Path, y: sp.csr_matrix) -> dict[str, np.ndarray]:
    """SparseChem's load_task_weights checks, without pandas: the same renames, asserts and sort."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    header = list(rows[0]) if rows else next(csv.reader(open(path)))
    header = [{"weight": "training_weight"}.get(c, c) for c in header]
    header = [c[:-1] if c.endswith("s") and c[:-1] in SPARSECHEM_WEIGHT_COLUMNS else c for c in header]
    assert "task_id" in header and "training_weight" in header
    assert set(header) <= SPARSECHEM_WEIGHT_COLUMNS, header
    cols = {c: np.array([float(r[c]) if c != "task_type" else r[c] for r in rows]) for c in header}
    order = np.argsort(cols["task_id"], kind="stable")
    cols = {c: v[order] for c, v in cols.items()}
    tid, tw = cols["task_id"], cols["training_weight"]
    assert y.shape[1] == len(rows)
    assert ((0 <= tw) & (tw <= 1)).all()
    assert len(np.unique(tid)) == len(rows) and (tid >= 0).all() and (tid < len(rows)).all()
    assert np.array_equal(tid, np.round(tid))
    for c in ("aggregation_weight", "censored_weight"):
        if c in cols:
            assert (cols[c] >= 0).all()
    return cols


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, public_data_dir) -> Path:
    root = tmp_path_factory.mktemp("herg")
    raw = herg_partner(root / "raw", public_data_dir, n=700, aux_every=3)
    prep = PreparationConfig(min_actives_total=5, min_inactives_total=5, min_regression_values=10)
    prepare_partner(*raw, root / "prepared", FingerprintConfig(size=2048), prep, b"export-test-secret-012345",
                    "pharma-x", workers=1)
    return root / "prepared"


def test_sparsechem_export_passes_sparsechems_loader_rules(prepared, tmp_path):
    ds = load_prepared(prepared)
    out = tmp_path / "sc"
    e = export_sparsechem(prepared, out)
    assert {"X.npz", "Y_class.npz", "Y_regr.npz", "Y_censor.npz", "folds.npy", "weights_class.csv",
            "weights_regr.csv", "tasks.csv", "README.txt"} == {p.name for p in out.iterdir()}
    x = sp.load_npz(out / "X.npz").tocsr()
    y_class, y_regr = sp.load_npz(out / "Y_class.npz").tocsr(), sp.load_npz(out / "Y_regr.npz").tocsr()
    y_censor = sp.load_npz(out / "Y_censor.npz").tocsr()
    folding = np.load(out / "folds.npy")
    assert x.shape[0] == folding.shape[0] == y_class.shape[0] == y_regr.shape[0]
    assert set(np.unique(y_class.data)) == {-1.0, 1.0}
    assert y_regr.shape == y_censor.shape and y_censor.nnz > 0
    assert np.array_equal(y_regr.indptr, y_censor.indptr) and np.array_equal(y_regr.indices, y_censor.indices)
    assert set(np.unique(y_censor.data)) <= {-1.0, 0.0, 1.0} and (y_censor.data != 0).any()
    assert (x != ds.X).nnz == 0 and (y_class != ds.Y_class).nnz == 0 and np.array_equal(folding, ds.folds)
    wc = load_task_weights(out / "weights_class.csv", y_class)
    wr = load_task_weights(out / "weights_regr.csv", y_regr)
    assert list(next(csv.reader(open(out / "weights_class.csv")))) == ["task_id", "training_weight",
                                                                       "aggregation_weight", "task_type"]
    assert "censored_weight" in wr and (wr["censored_weight"] == 1).all()
    tasks = {(t["kind"], int(t["column"])): t for t in ds.tasks}
    for kind, w in (("classification", wc), ("regression", wr)):
        for tid, tw, aw, tt in zip(w["task_id"], w["training_weight"], w["aggregation_weight"], w["task_type"]):
            t = tasks[(kind, int(tid))]
            assert tw == pytest.approx(float(t["weight"])) and tt == t["assay_type"]
            assert aw == (0 if t["auxiliary"] == "true" else 1)
    assert (wc["aggregation_weight"] == 0).any() and (wc["training_weight"] < 1).any(), "auxiliary tasks present"
    assert "--y_censor Y_censor.npz" in e.command and e.command in (out / "README.txt").read_text()
    with pytest.raises(DataError, match="not empty"):
        export_sparsechem(prepared, out)


def test_export_sparsechem_cli(prepared, tmp_path, capsys):
    assert cli_main(["export", "sparsechem", str(prepared), "--out", str(tmp_path / "o")]) == 0
    assert "train with" in capsys.readouterr().out
    assert cli_main(["export", "sparsechem", str(tmp_path / "nothing"), "--out", str(tmp_path / "o2")]) == 2
    assert "not a prepared dataset" in capsys.readouterr().err


def test_model_export_is_a_standard_state_dict_that_predicts_as_the_run(tmp_path):
    import torch

    from fedchem.algo.evaluation import predict
    from fedchem.orchestrator.predict import load_partner_model

    from reportsetup import shared_report_inputs

    inputs = shared_report_inputs()
    run_dir, prepared_dir = Path(inputs["run_dir"]), Path(inputs["prepared"]["partner-1"])
    out = export_model(run_dir, "partner-1", tmp_path / "model.pt", prepared_dir)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    doc = torch.load(out, weights_only=True)  # plain tensors and JSON-like values only
    assert set(doc) == {"state_dict", "config"}
    keys = set(doc["state_dict"])
    assert "trunk.input.weight" in keys and "head.classification.weight" in keys and "head.regression.bias" in keys
    trunk, head, cfg = load_exported_model(out)
    ref = load_partner_model(run_dir, "partner-1", prepared_dir)
    assert cfg["class_tasks"] == ref.class_tasks and cfg["regr_tasks"] == ref.regr_tasks
    X = load_prepared(prepared_dir).X[:50]
    a, b = predict(trunk, head, X), predict(ref.trunk, ref.head, X)
    assert np.array_equal(a.class_scores, b.class_scores) and np.array_equal(a.regr_preds, b.regr_preds)
    assert cli_main(["export", "model", str(run_dir), "--partner", "partner-1", "--out", str(tmp_path / "m2.pt")]) == 0
    assert cli_main(["export", "model", str(run_dir), "--partner", "nobody", "--out", str(tmp_path / "m3.pt")]) == 2
    assert not (tmp_path / "m3.pt").exists()
