"""A partner's prepared dataset: the files `fedchem prepare` writes and everything downstream reads.

Layout of a prepared folder (matrices in the formats SparseChem's loaders read as they are):
    X.npz         scipy CSR float32, compounds x features (fingerprint columns, possibly scrambled)
    Y_class.npz   scipy CSR float32, compounds x classification tasks, +1 active / -1 inactive (absent = unknown)
    Y_regr.npz    scipy CSR float32, compounds x regression tasks; the stored entries are the labelled cells
                  (explicit zeros are kept: a value of 0.0 is a value)
    Y_censor.npz  scipy CSR float32, same shape and same stored cells as Y_regr: -1 / 0 / +1 for "<" / "=" / ">"
                  (+1: the true value lies above the stored one)
    folds.npy     int64, one fold id per compound row
    tasks.csv     one row per task (see TASK_COLUMNS)
    compounds.csv row -> input_compound_id (private to the partner, for predictions and reports)
    manifest.json sha256 of every file above, shapes, the settings that made them
    prep_report.md what was kept, dropped and why (private to the partner)
Everything is written to a temporary folder and renamed into place, so a failure leaves no half-written result.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from fedchem.opener.errors import DataError, os_errors
from fedchem.opener.output_guard import check_output_folder, is_output_of
from fedchem.opener.fileio import atomic_folder, json_text, lock_down, sha256_file

TASK_COLUMNS = [
    "task",          # unique task name within the partner, e.g. "CHEMBL240_class_6.5" (private to the partner)
    "kind",          # "classification" | "regression"
    "column",        # column index in Y_class or Y_regr
    "assay_id",      # input_assay_id from T0
    "assay_type",    # from T0 (e.g. "ADME", "OTHER", "PANEL", "AUX_HTS")
    "threshold",     # classification threshold on the log scale ("" for regression)
    "direction",     # "high" (value >= threshold is active) | "low"
    "auxiliary",     # "true" | "false": trained on, not headline-reported
    "weight",        # training weight (auxiliary tasks get the consortium's auxiliary_weight)
    "n_labels",      # labelled compounds (classification) / values (regression)
    "n_actives",     # classification: +1 count
    "n_inactives",   # classification: -1 count
    "n_censored",    # regression: values with a "<" or ">" qualifier
]

FILES = ["X.npz", "Y_class.npz", "Y_regr.npz", "Y_censor.npz", "folds.npy", "tasks.csv", "compounds.csv"]


@dataclass
class PreparedDataset:
    """In-memory form of a prepared folder."""

    X: sp.csr_matrix
    Y_class: sp.csr_matrix
    Y_regr: sp.csr_matrix
    Y_censor: sp.csr_matrix
    folds: np.ndarray
    tasks: list[dict[str, str]]
    compound_ids: list[str]
    manifest: dict = field(default_factory=dict)

    @property
    def n_compounds(self) -> int:
        return self.X.shape[0]

    @property
    def n_features(self) -> int:
        return self.X.shape[1]

    def class_tasks(self) -> list[dict[str, str]]:
        return sorted((t for t in self.tasks if t["kind"] == "classification"), key=lambda t: int(t["column"]))

    def regr_tasks(self) -> list[dict[str, str]]:
        return sorted((t for t in self.tasks if t["kind"] == "regression"), key=lambda t: int(t["column"]))



def _save_csr(path: Path, m: sp.spmatrix) -> None:
    """Deterministic .npz of a CSR matrix (fixed zip timestamps, so re-runs are byte-identical)."""
    m = sp.csr_matrix(m)
    m.sort_indices()
    buf = io.BytesIO()
    sp.save_npz(buf, m, compressed=True)
    # numpy stamps zip members with a fixed date, so bytes depend only on content; check once here.
    path.write_bytes(buf.getvalue())


def _write_csv(path: Path, header: list[str], rows: list[dict]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in header})


FORMAT = "fedchem-prepared/1"


def is_prepared(folder: Path) -> bool:
    """True if `folder` is a previous output of `fedchem prepare` (its manifest says so)."""
    return is_output_of(folder, "manifest.json", FORMAT)


def check_prepared_out(out_dir: Path, force: bool = False, protected=(), flag: str = "the output folder") -> None:
    """`fedchem prepare` may replace a previous prepared folder, anything else only with --force (never a folder
    holding its inputs or configs); see opener.output_guard."""
    check_output_folder(out_dir, command="fedchem prepare", is_previous=is_prepared, force=force,
                        protected=protected, flag=flag)


def save_prepared(ds: PreparedDataset, out_dir: Path, report_md: str = "", extra_manifest: dict | None = None,
                  force: bool = False, protected=()) -> Path:
    """Write a prepared folder atomically: everything goes to a temp folder beside `out_dir`, then one rename.
    An existing `out_dir` is replaced only if it is a previous prepared folder, or with `force` (never a folder
    holding one of `protected`, the inputs and configs)."""
    out_dir = Path(out_dir).absolute()
    check_prepared_out(out_dir, force, protected)
    with os_errors(out_dir), atomic_folder(out_dir) as tmp:
        _save_csr(tmp / "X.npz", ds.X.astype(np.float32))
        _save_csr(tmp / "Y_class.npz", ds.Y_class.astype(np.float32))
        _save_csr(tmp / "Y_regr.npz", ds.Y_regr.astype(np.float32))
        _save_csr(tmp / "Y_censor.npz", ds.Y_censor.astype(np.float32))
        with open(tmp / "folds.npy", "wb") as fh:
            np.save(fh, np.asarray(ds.folds, dtype=np.int64))
        _write_csv(tmp / "tasks.csv", TASK_COLUMNS, ds.tasks)
        _write_csv(tmp / "compounds.csv", ["row", "input_compound_id"],
                   [{"row": i, "input_compound_id": c} for i, c in enumerate(ds.compound_ids)])
        (tmp / "prep_report.md").write_text(report_md)
        manifest = dict(extra_manifest or {})
        manifest.update({
            "format": FORMAT,
            "n_compounds": int(ds.X.shape[0]),
            "n_features": int(ds.X.shape[1]),
            "n_class_tasks": int(ds.Y_class.shape[1]),
            "n_regr_tasks": int(ds.Y_regr.shape[1]),
            "files": {name: sha256_file(tmp / name) for name in FILES + ["prep_report.md"]},
        })
        (tmp / "manifest.json").write_text(json_text(manifest))
        check_prepared_out(out_dir, force, protected)  # again: the folder may have changed meanwhile
        lock_down(tmp)  # the partner's data: owner-only whatever the umask
    return out_dir


def load_prepared(path: Path, verify: bool = True) -> PreparedDataset:
    """Read a prepared folder; with `verify`, check every file against the manifest's sha256."""
    path = Path(path)
    mpath = path / "manifest.json"
    if not mpath.is_file():
        raise DataError("this is not a prepared dataset (no manifest.json)", where=str(path),
                        fix="run `fedchem prepare` for this partner first")
    manifest = json.loads(mpath.read_text())
    if verify:
        for name, digest in manifest.get("files", {}).items():
            f = path / name
            if not f.is_file():
                raise DataError(f"prepared file {name} is missing", where=str(path), fix="re-run `fedchem prepare`")
            if sha256_file(f) != digest:
                raise DataError(f"prepared file {name} does not match its manifest hash", where=str(f),
                                fix="the folder was modified after preparation; re-run `fedchem prepare`")
    with open(path / "tasks.csv", newline="") as fh:
        tasks = list(csv.DictReader(fh))
    with open(path / "compounds.csv", newline="") as fh:
        ids = [r["input_compound_id"] for r in csv.DictReader(fh)]
    return PreparedDataset(
        X=sp.load_npz(path / "X.npz").tocsr(),
        Y_class=sp.load_npz(path / "Y_class.npz").tocsr(),
        Y_regr=sp.load_npz(path / "Y_regr.npz").tocsr(),
        Y_censor=sp.load_npz(path / "Y_censor.npz").tocsr(),
        folds=np.load(path / "folds.npy"),
        tasks=tasks,
        compound_ids=ids,
        manifest=manifest,
    )
