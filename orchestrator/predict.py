"""Scoring new structures with a partner's federated model: the run's final global trunk and its own private head.

New SMILES go through exactly the preparation steps of training (opener.standardize, opener.fingerprints with the
consortium's settings, and the keyed column scrambling from the consortium secret), so a compound the partner
trained on gets the same input row it had in its prepared dataset. A SMILES that cannot be parsed or
standardised gets a reason (a problem type, never the text) and no prediction; the others are still scored.
Uncertainty: MC dropout (dropout kept on; mean and standard deviation over several passes).
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from fedchem.opener import fingerprints, scramble, standardize
from fedchem.opener.config import FingerprintConfig
from fedchem.opener.errors import DAMAGED, ConfigError, DataError, os_errors
from fedchem.opener.fileio import PRIVATE_FILE_MODE, atomic_write_text


@dataclass
class Featurised:
    """Fingerprint rows of the SMILES that could be used, and a reason ("" when fine) per input SMILES."""

    X: sp.csr_matrix          # one row per usable input, in input order
    usable: np.ndarray        # input positions of the rows of X
    errors: list[str]         # per input SMILES


def featurise_smiles(smiles: list[str], fingerprint: FingerprintConfig, standardise: bool, secret: bytes,
                     workers: int = 1) -> Featurised:
    """Standardise, fingerprint and (if the consortium scrambles) permute columns, as `fedchem prepare` does."""
    std = standardize.standardize_all([s.strip() for s in smiles], standardise, workers)
    errors = list(std.errors)
    ok = [i for i, can in enumerate(std.smiles) if can]
    feats = fingerprints.featurize_all([std.smiles[i] for i in ok], fingerprint, workers)
    keep = []
    for j, i in enumerate(ok):
        if feats.errors[j]:
            errors[i] = feats.errors[j]
        else:
            keep.append(j)
    X = sp.csr_matrix(feats.X[keep], dtype=np.float32)
    if fingerprint.scramble:
        X = scramble.scramble_columns(X, scramble.permutation(secret, fingerprint.size))
    return Featurised(X=X, usable=np.asarray([ok[j] for j in keep], dtype=np.int64), errors=errors)


def check_secret(run_dir: Path, partner: str, prepared_dir: Path | None, fingerprint: FingerprintConfig,
                 secret: bytes) -> None:
    """Refuse a consortium secret other than the run's (its ledger) and, when the partner's prepared folder is at
    hand, a prepared dataset made for another partner or with another secret: scores would be silently wrong."""
    from fedchem.opener.secret_check import check_manifest, check_recorded, secret_fingerprints
    from fedchem.orchestrator.ledger import Ledger

    expected = secret_fingerprints(secret, fingerprint)
    check_recorded(Ledger.load(run_dir).secret_fingerprints, expected, Path(run_dir) / "ledger.json")
    manifest = Path(prepared_dir) / "manifest.json" if prepared_dir is not None else None
    if manifest is not None and manifest.is_file():
        check_manifest(json.loads(manifest.read_text()), partner, expected, manifest)


@dataclass
class PartnerModel:
    """A partner's federated model and what its outputs mean."""

    trunk: object
    head: object
    class_tasks: list[str]
    regr_tasks: list[str]
    fingerprint: FingerprintConfig
    dropout: float


def _task_names(prepared_dir: Path | None, pdir: Path, kind: str, n: int) -> list[str]:
    """Task names per head column: the prepared tasks.csv, else the names stored with the run's predictions."""
    if prepared_dir is not None and (Path(prepared_dir) / "tasks.csv").is_file():
        with open(Path(prepared_dir) / "tasks.csv", newline="") as fh:
            tasks = [t for t in csv.DictReader(fh) if t["kind"] == kind]
        names = [t["task"] for t in sorted(tasks, key=lambda t: int(t["column"]))]
        if len(names) == n:
            return names
    pred = pdir / "test_predictions.npz"
    if pred.is_file():
        from fedchem.algo.predictions import load_predictions

        p = load_predictions(pred)
        stored = p.class_tasks if kind == "classification" else p.regr_tasks
        if stored is not None and len(stored) == n:
            return [str(x) for x in stored]
    return [f"{kind}_{j}" for j in range(n)]


def load_partner_model(run_dir: Path, partner: str, prepared_dir: Path | None = None) -> PartnerModel:
    """The final global trunk and the partner's own head (RUN_DIR/partners/NAME/trunk.npz and head.npz)."""
    from fedchem.algo import model as M
    from fedchem.algo.config import ModelConfig
    from fedchem.algo.params import load_params
    from fedchem.orchestrator.ledger import partner_ledger

    run_dir = Path(run_dir)
    partner_ledger(run_dir, partner)
    pdir = run_dir / "partners" / partner
    trunk_path, head_path = pdir / "trunk.npz", pdir / "head.npz"  # the partner's final model
    for path, what in ((trunk_path, "final global trunk"), (head_path, "head")):
        if not path.is_file():
            raise DataError(f"the run holds no {what} for partner '{partner}'", where=str(path),
                            fix=f"finish the run first: fedchem run --resume {run_dir}")
    settings_path = run_dir / "settings.json"
    if not settings_path.is_file():
        raise DataError("the run folder has no settings.json", where=str(run_dir), fix="give a complete run folder")
    reading = settings_path
    try:
        settings = json.loads(settings_path.read_text(encoding="utf-8"))
        reading = trunk_path
        arrays, _ = load_params(trunk_path)
        mcfg = ModelConfig(**settings["model"])
        n_features = int(arrays["input.weight"].shape[0])
        trunk = M.init_trunk(n_features, mcfg, 0)
        M.load_trunk_arrays(trunk, arrays)
        reading = head_path
        head_arrays, _ = load_params(head_path)
        n_class = int(head_arrays["classification.weight"].shape[0])
        n_regr = int(head_arrays["regression.weight"].shape[0])
        head = M.init_head(mcfg, n_class, n_regr, 0)
        M.load_head_arrays(head, head_arrays)
        fingerprint = FingerprintConfig(**settings["fingerprint"])
    except DAMAGED as exc:
        raise DataError(f"the model of partner '{partner}' in the run folder cannot be read ({type(exc).__name__}: "
                        "the file is damaged, truncated or not written by `fedchem run`)", where=str(reading),
                        fix=f"finish or repeat the run (fedchem run --resume {run_dir}), or give the right run "
                            "folder") from None
    return PartnerModel(trunk=trunk, head=head,
                        class_tasks=_task_names(prepared_dir, pdir, "classification", n_class),
                        regr_tasks=_task_names(prepared_dir, pdir, "regression", n_regr),
                        fingerprint=fingerprint, dropout=mcfg.dropout)


def selection_note(run_dir: Path, partner: str) -> str:
    """"" when the final model (what predict scores with) is the one the run's selection chose for every kind of
    task; else a line naming the rounds the run's own figures (metrics.json, the report) come from."""
    path = Path(run_dir) / "partners" / partner / "metrics.json"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""  # no figures to be consistent with
    final, selected = doc.get("after_round"), doc.get("selected") or {}
    earlier = {kind: r for kind, r in sorted(selected.items()) if r != final}
    if final is None or not earlier:
        return ""
    chosen = ", ".join(f"{kind}: round {r}" for kind, r in earlier.items())
    return (f"note: these are the final model's scores (after round {final}); the run's own figures (metrics.json, "
            f"the report) are of the round chosen on validation ({chosen}), whose model is not kept")


def read_smiles_file(path: Path, smiles_column: str = "smiles", id_column: str | None = None
                     ) -> tuple[list[str], list[str] | None, str | None]:
    """SMILES (and ids) from a CSV/TSV with a header, or a .smi/.txt file (SMILES, then an optional id, per line).
    UTF-8 text, with or without a byte-order mark (as `fedchem prepare` reads T2). Returns (smiles, ids or None,
    name of the id column or None)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("the SMILES file does not exist" if not path.exists() else "the SMILES path is not a file",
                        where=str(path), fix="check the path")
    try:
        return _read_smiles(path, smiles_column, id_column)
    except UnicodeDecodeError as exc:
        raise DataError(f"the SMILES file is not UTF-8 text (byte {exc.start + 1} cannot be decoded)",
                        where=str(path), fix="save it as UTF-8 (e.g. `iconv -f latin1 -t utf-8 IN > OUT`)") from None
    except csv.Error as exc:
        raise DataError(f"the SMILES file is not a readable CSV ({exc})", where=str(path),
                        fix="export it as a plain CSV/TSV with a header row") from None


def _read_smiles(path: Path, smiles_column: str, id_column: str | None):
    if path.suffix.lower() in (".smi", ".txt"):
        smiles, ids = [], []
        for line in path.read_text(encoding="utf-8-sig").splitlines():
            if not line.strip():
                continue
            bits = line.split(maxsplit=1)
            smiles.append(bits[0])
            ids.append(bits[1].strip() if len(bits) > 1 else "")
        if not smiles:
            raise DataError("the SMILES file is empty", where=str(path), fix="give one SMILES per line")
        return smiles, (ids if any(ids) else None), ("id" if any(ids) else None)
    delimiter = "\t" if path.suffix.lower() in (".tsv", ".tab") else ","
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.DictReader(fh, delimiter=delimiter)
        header = [h.strip() for h in (reader.fieldnames or [])]
        reader.fieldnames = header
        if smiles_column not in header:
            shown = ", ".join(h for h in header if len(h) <= 40)
            raise DataError(f"the SMILES file has no column '{smiles_column}' (columns: {shown or 'none'})",
                            where=str(path), fix="name the right column with --smiles-column")
        if id_column is not None and id_column not in header:
            raise DataError(f"the SMILES file has no column '{id_column}'", where=str(path),
                            fix="name the right column with --id-column, or leave it out")
        if id_column is None and "input_compound_id" in header:
            id_column = "input_compound_id"
        rows = list(reader)
    if not rows:
        raise DataError("the SMILES file has no data rows", where=str(path), fix="add at least one SMILES")
    smiles = [(r.get(smiles_column) or "") for r in rows]
    ids = [(r.get(id_column) or "") for r in rows] if id_column else None
    return smiles, ids, id_column


def check_out_file(out: Path, inputs=()) -> None:
    """--out must name a file that is not a folder, a device or one of the inputs (it is replaced atomically)."""
    from fedchem.opener.output_guard import holds

    out = Path(out)
    if out.is_dir():
        raise ConfigError("--out names a folder; predictions are one CSV file", where=str(out),
                          fix=f"give a file name, e.g. --out {out / 'predictions.csv'}")
    if out.exists() and not out.is_file():
        raise ConfigError("--out names something that is not a regular file (a device, a pipe?)", where=str(out),
                          fix="give the path of a new or an existing .csv file")
    for p in inputs:
        if p and holds(out, p):
            raise ConfigError("--out names one of the inputs; writing the predictions would replace it",
                              where=str(out), fix="give the predictions a file of their own")


@dataclass
class Scored:
    """Per input row: a status ("ok" or the reason it was not scored); per usable row: predictions and spread."""

    status: list[str]
    usable: np.ndarray
    class_scores: np.ndarray     # usable x classification tasks: probability of "active"
    regr_preds: np.ndarray       # usable x regression tasks: predicted value (the task's log scale)
    class_std: np.ndarray | None
    regr_std: np.ndarray | None


def score(model: PartnerModel, feats: Featurised, mc_samples: int = 30, seed: int = 0) -> Scored:
    """Predict every usable row (MC dropout with `mc_samples` passes when > 0 and the model has dropout)."""
    from fedchem.algo.evaluation import predict

    n_feat = model.trunk.n_features
    if feats.X.shape[1] != n_feat:
        raise ConfigError(f"the fingerprints have {feats.X.shape[1]} columns, the model's input {n_feat}",
                          where="consortium config, fingerprint.size",
                          fix="use the consortium config the run was trained with")
    use_mc = mc_samples > 0 and model.dropout > 0
    p = predict(model.trunk, model.head, feats.X, mc_samples=mc_samples if use_mc else 0, seed=seed)
    status = ["ok" if not e else f"not scored: {e}" for e in feats.errors]
    return Scored(status=status, usable=feats.usable, class_scores=p.class_scores, regr_preds=p.regr_preds,
                  class_std=p.class_std, regr_std=p.regr_std)


def _fmt(v: float) -> str:
    return format(float(v), ".6g")


def write_predictions_csv(path: Path, model: PartnerModel, scored: Scored, ids: list[str] | None,
                          id_column: str | None, layout: str = "wide") -> Path:
    """Write the predictions atomically. wide: one line per input row (row, id, status, then per task its
    prediction and `<task> std`); long: one line per input row and task (row, id, status, task, kind,
    prediction, std); a row that was not scored keeps its line(s) with the reason and empty predictions."""
    path = Path(path)
    id_name = id_column or "id"
    tasks = [(t, "classification", j) for j, t in enumerate(model.class_tasks)] + \
            [(t, "regression", j) for j, t in enumerate(model.regr_tasks)]
    where = {int(i): k for k, i in enumerate(scored.usable)}

    def value(kind: str, j: int, k: int) -> tuple[str, str]:
        pred = scored.class_scores if kind == "classification" else scored.regr_preds
        std = scored.class_std if kind == "classification" else scored.regr_std
        return _fmt(pred[k, j]), (_fmt(std[k, j]) if std is not None else "")

    fh = io.StringIO(newline="")
    w = csv.writer(fh, lineterminator="\n")
    if layout == "wide":
        head = ["row", id_name, "status"]
        for t, _, _ in tasks:
            head += [t, f"{t} std"]
        w.writerow(head)
        for i, status in enumerate(scored.status):
            line = [i + 1, ids[i] if ids else "", status]
            k = where.get(i)
            for t, kind, j in tasks:
                line += list(value(kind, j, k)) if k is not None else ["", ""]
            w.writerow(line)
    elif layout == "long":
        w.writerow(["row", id_name, "status", "task", "kind", "prediction", "std"])
        for i, status in enumerate(scored.status):
            k = where.get(i)
            if k is None:
                w.writerow([i + 1, ids[i] if ids else "", status, "", "", "", ""])
                continue
            for t, kind, j in tasks:
                w.writerow([i + 1, ids[i] if ids else "", status, t, kind, *value(kind, j, k)])
    else:
        raise ValueError(f"unknown layout {layout!r}")
    check_out_file(path)
    with os_errors(path):
        return atomic_write_text(path, fh.getvalue(), PRIVATE_FILE_MODE)  # predictions on own compounds
