"""Hand fedchem's results to other tools unchanged: a prepared folder as SparseChem inputs, a model as a state_dict.

SparseChem (github.com/melloddy/SparseChem, sparsechem/train.py and utils.load_task_weights at commit 258c20f):
  X.npz, Y_class.npz, Y_regr.npz, Y_censor.npz  scipy CSR (`load_sparse` reads .npz with scipy.sparse.load_npz);
      Y_class holds +1/-1 only, Y_censor has Y_regr's sparsity pattern exactly with values -1/0/+1
  folds.npy               one fold id per row (`--folding`; `--fold_va` picks the validation fold)
  weights_class.csv       task_id, training_weight, aggregation_weight, task_type
  weights_regr.csv        task_id, training_weight, censored_weight, aggregation_weight, task_type
      task_id is the column (0..n-1, unique), 0 <= training_weight <= 1 (fedchem's task weight: auxiliary tasks
      get the consortium's auxiliary weight), aggregation_weight 1 for headline tasks and 0 for auxiliary ones
      (they are trained on, never in the aggregated metrics), censored_weight 1 (fedchem's censored loss counts a
      censored value fully); load_task_weights refuses any other column, so task names go to tasks.csv beside.
A kind without tasks gets no files (train.py then runs without its --y_* / --weights_* arguments).

Model: one `torch.save` file, {"state_dict": trunk.* and head.* tensors, "config": plain JSON-like values}, that
`torch.load(path, weights_only=True)` reads; `load_exported_model` rebuilds fedchem's Trunk and Head from it.
It holds the partner's private head: it is written owner-only (0600) and is for the partner alone.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from fedchem.opener.dataset import load_prepared
from fedchem.opener.errors import DataError
from fedchem.opener.fileio import PRIVATE_FILE_MODE, atomic_folder, atomic_write

CLASS_WEIGHT_COLUMNS = ["task_id", "training_weight", "aggregation_weight", "task_type"]
REGR_WEIGHT_COLUMNS = ["task_id", "training_weight", "censored_weight", "aggregation_weight", "task_type"]
MODEL_FORMAT = "fedchem-model/v1"


@dataclass
class SparseChemExport:
    """What `export_sparsechem` wrote and the train.py command line that runs on it."""

    out_dir: Path
    files: list[str]
    n_rows: int
    n_class_tasks: int
    n_regr_tasks: int
    command: str


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise DataError("the output path exists and is not a folder", where=str(out), fix="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise DataError("the output folder exists and is not empty", where=str(out),
                        fix="choose another --out, or pass --force to replace it")


def _weights(tasks: list[dict], kind: str) -> list[dict[str, str]]:
    rows = sorted((t for t in tasks if t["kind"] == kind), key=lambda t: int(t["column"]))
    out = []
    for t in rows:
        weight = float(t.get("weight") or 1.0)
        row = {"task_id": t["column"], "training_weight": format(weight, "g"),
               "aggregation_weight": "0" if t.get("auxiliary") == "true" else "1", "task_type": t["assay_type"]}
        if kind == "regression":
            row["censored_weight"] = "1"
        out.append(row)
    return out


def _write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header, lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def sparsechem_command(files: list[str]) -> str:
    """The SparseChem training command for an export folder (run inside it; sizes are an example)."""
    args = ["python", "sparsechem/examples/chembl/train.py", "--x", "X.npz"]
    for flag, name in (("--y_class", "Y_class.npz"), ("--y_regr", "Y_regr.npz"), ("--y_censor", "Y_censor.npz"),
                       ("--weights_class", "weights_class.csv"), ("--weights_regr", "weights_regr.csv")):
        if name in files:
            args += [flag, name]
    args += ["--folding", "folds.npy", "--fold_va", "0", "--hidden_sizes", "400", "--dropouts_trunk", "0.2",
             "--dev", "cpu"]
    return " ".join(args)


def export_sparsechem(prepared_dir: Path, out_dir: Path, force: bool = False) -> SparseChemExport:
    """Write a prepared folder's matrices, folds and task weights in SparseChem's layout (atomically)."""
    out_dir = Path(out_dir).absolute()
    _check_out(out_dir, force)
    ds = load_prepared(prepared_dir)  # every file checked against the manifest first
    files = ["X.npz", "folds.npy", "tasks.csv"]
    with atomic_folder(out_dir) as tmp:  # private like the prepared folder (the temporary folder is 0700)
        sp.save_npz(tmp / "X.npz", sp.csr_matrix(ds.X, dtype=np.float32))
        np.save(tmp / "folds.npy", np.asarray(ds.folds, dtype=np.int64))
        if ds.Y_class.shape[1]:
            sp.save_npz(tmp / "Y_class.npz", sp.csr_matrix(ds.Y_class, dtype=np.float32))
            _write_csv(tmp / "weights_class.csv", CLASS_WEIGHT_COLUMNS, _weights(ds.tasks, "classification"))
            files += ["Y_class.npz", "weights_class.csv"]
        if ds.Y_regr.shape[1]:
            regr = sp.csr_matrix(ds.Y_regr, dtype=np.float32)
            censor = sp.csr_matrix(ds.Y_censor, dtype=np.float32)
            if not (np.array_equal(regr.indptr, censor.indptr) and np.array_equal(regr.indices, censor.indices)):
                raise DataError("Y_censor does not have Y_regr's stored cells", where=str(prepared_dir),
                                fix="re-run `fedchem prepare` for this partner")
            sp.save_npz(tmp / "Y_regr.npz", regr)
            sp.save_npz(tmp / "Y_censor.npz", censor)
            _write_csv(tmp / "weights_regr.csv", REGR_WEIGHT_COLUMNS, _weights(ds.tasks, "regression"))
            files += ["Y_regr.npz", "Y_censor.npz", "weights_regr.csv"]
        _write_csv(tmp / "tasks.csv", list(ds.tasks[0]) if ds.tasks else ["task"], ds.tasks)  # names, for people
        command = sparsechem_command(files)
        (tmp / "README.txt").write_text(
            "SparseChem inputs exported by `fedchem export sparsechem` (private to this partner).\n"
            "Train with SparseChem (github.com/melloddy/SparseChem) from this folder:\n  " + command + "\n"
            "tasks.csv names the task of each column (task_id = column of its kind); SparseChem does not read it.\n",
            encoding="utf-8")
        files.append("README.txt")
    return SparseChemExport(out_dir, sorted(files), ds.X.shape[0], ds.Y_class.shape[1], ds.Y_regr.shape[1],
                            command)


def export_model(run_dir: Path, partner: str, out: Path, prepared_dir: Path | None = None) -> Path:
    """The run's final trunk and this partner's head as one torch.save'd state_dict with its config (0600)."""
    import torch

    from fedchem.orchestrator.predict import load_partner_model

    run_dir, out = Path(run_dir), Path(out).absolute()
    if out.is_dir():
        raise DataError("the output path is a folder", where=str(out), fix="give a file name, e.g. model.pt")
    model = load_partner_model(run_dir, partner, prepared_dir)
    settings = json.loads((run_dir / "settings.json").read_text())
    state = {f"trunk.{k}": v.detach().clone() for k, v in model.trunk.state_dict().items()}
    state.update({f"head.{k}": v.detach().clone() for k, v in model.head.state_dict().items()})
    config = {"format": MODEL_FORMAT, "partner": partner, "run": run_dir.name,
              "model": settings["model"], "fingerprint": settings["fingerprint"],
              "n_features": int(model.trunk.n_features), "class_tasks": list(model.class_tasks),
              "regr_tasks": list(model.regr_tasks), "torch": str(torch.__version__),
              "inputs": "ECFP rows as `fedchem predict` builds them (standardised, the consortium's fingerprint "
                        "settings, columns scrambled with the consortium secret when fingerprint.scramble)",
              "outputs": "head.classification: logits per class task; head.regression: values per regr task"}
    config = json.loads(json.dumps(config))  # plain str/int/float/list/dict only: torch.load(weights_only=True)
    atomic_write(out, lambda fh: torch.save({"state_dict": state, "config": config}, fh), PRIVATE_FILE_MODE)
    return out


def load_exported_model(path: Path):
    """(trunk, head, config) from an exported model file, read with torch.load(weights_only=True)."""
    import torch

    from fedchem.algo import model as M
    from fedchem.algo.config import ModelConfig

    doc = torch.load(Path(path), weights_only=True)
    if not isinstance(doc, dict) or doc.get("config", {}).get("format") != MODEL_FORMAT:
        raise DataError("not a fedchem model export", where=str(path), fix="export one with `fedchem export model`")
    cfg, state = doc["config"], doc["state_dict"]
    mcfg = ModelConfig(**cfg["model"])
    trunk = M.init_trunk(cfg["n_features"], mcfg, 0)
    head = M.init_head(mcfg, len(cfg["class_tasks"]), len(cfg["regr_tasks"]), 0)
    both = torch.nn.ModuleDict({"trunk": trunk, "head": head})
    both.load_state_dict(state, strict=True)
    return trunk, head, cfg
