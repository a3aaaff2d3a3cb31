"""Everything one partner's report reads, and only that: its own private folder of the run, its own alone baseline,
its own prepared dataset, and the run's public ledger and settings. Nothing of any other partner is opened.

The checks here make sure the federated and the alone predictions speak about the same compounds and tasks of the
same prepared dataset; otherwise the comparison would be meaningless, and the error says what to do.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedchem.algo.predictions import Predictions, load_predictions
from fedchem.opener.dataset import PreparedDataset, load_prepared
from fedchem.opener.errors import DAMAGED, ConfigError, DataError
from fedchem.opener.secret_check import check_manifest
from fedchem.orchestrator.ledger import Ledger, partner_ledger

PREDICTIONS = "test_predictions.npz"
VALIDATION_PREDICTIONS = "validation_predictions.npz"   # the chosen model's, both sides (calibrates the conformal
LAST_PREDICTIONS = "last_test_predictions.npz"          # figures); the federated last round's test predictions
FINETUNED_PREDICTIONS = "finetuned_test_predictions.npz"  # federated, then fine-tuned alone (no rows: not done)


@dataclass
class ReportInputs:
    """One partner's view of a run, aligned: predictions of both models on the same test rows and task columns."""

    partner: str
    run_dir: Path
    data_dir: Path                       # the prepared dataset's folder
    ledger: Ledger
    settings: dict
    data: PreparedDataset
    rows: np.ndarray                     # test rows of the prepared dataset, in prediction order
    federated: Predictions
    alone: Predictions
    round_logs: list[dict] = field(default_factory=list)     # this partner's logs/round_NNN.json, in round order
    federated_metrics: dict = field(default_factory=dict)    # its final metrics.json (validation used for curves)
    alone_metrics: dict = field(default_factory=dict)        # the baseline's metrics.json
    validation_rows: np.ndarray | None = None                # validation rows, in the order of the two below
    federated_validation: Predictions | None = None          # None: made by a fedchem that did not save them
    alone_validation: Predictions | None = None
    federated_last: Predictions | None = None                # the last round's model on the test rows (aligned)
    federated_finetuned: Predictions | None = None           # the last round's model fine-tuned alone (aligned)

    @property
    def training_rows(self) -> np.ndarray:
        """Rows of the folds the models were trained on (neither the validation nor the test fold)."""
        t = self.settings.get("training", {})
        held_out = [t.get("validation_fold", 0), t.get("test_fold", 1)]
        return np.flatnonzero(~np.isin(np.asarray(self.data.folds), held_out))


def _read_json(path: Path, what: str) -> dict:
    if not path.is_file():
        raise DataError(f"the {what} is missing", where=str(path),
                        fix="check the folder (was the run or the baseline completed?)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise DataError(f"the {what} is not valid JSON", where=str(path),
                        fix="the file was damaged; re-run the step that writes it") from None


def _predictions(path: Path, what: str, fix: str) -> Predictions:
    if not path.is_file():
        raise DataError(f"the {what} has no test predictions", where=str(path), fix=fix)
    try:
        return load_predictions(path)
    except DAMAGED as exc:  # a truncated .npz: BadZipFile, EOFError, zlib.error; a foreign one: ValueError, KeyError
        raise DataError(f"the {what}'s test predictions cannot be read ({type(exc).__name__})", where=str(path),
                        fix="the file was damaged or is not a fedchem predictions file; re-run that step") from None


def resolve_prepared_dir(ledger: Ledger, partner: str, run_dir: Path) -> Path:
    """The partner's prepared folder, from the consortium config the run was started with (its partner entry)."""
    from fedchem.orchestrator.config import load_consortium, load_partner

    fix = "pass --prepared DIR (the partner's prepared dataset)"
    if not ledger.consortium_path or not Path(ledger.consortium_path).is_file():
        raise ConfigError("cannot find this partner's prepared dataset: the run does not record an existing "
                          "consortium config", where=str(Path(run_dir) / "ledger.json"), fix=fix)
    consortium = load_consortium(Path(ledger.consortium_path))
    ref = next((p for p in consortium.partners if p.name == partner), None)
    if ref is None:
        raise ConfigError(f"partner '{partner}' is not in the run's consortium config",
                          where=ledger.consortium_path, fix=fix)
    prepared = load_partner(ref.config).prepared_dir
    if prepared is None:
        raise ConfigError(f"partner '{partner}' names no prepared_dir", where=str(ref.config), fix=fix)
    return prepared


def _check_alignment(p: Predictions, data: PreparedDataset, what: str, where: Path) -> None:
    """The predictions' rows, compound ids and task names belong to this prepared dataset."""
    fix = "make the baseline and the run from the same prepared dataset (re-run `fedchem train-local` on it)"
    rows = np.asarray(p.rows)
    if rows.size and (rows.min() < 0 or rows.max() >= data.n_compounds):
        raise DataError(f"the {what} predictions name rows outside the prepared dataset", where=str(where), fix=fix)
    if p.compound_ids is not None and [data.compound_ids[i] for i in rows] != [str(c) for c in p.compound_ids]:
        raise DataError(f"the {what} predictions were made on other compounds than this prepared dataset's",
                        where=str(where), fix=fix)
    for kind, names, n in (("classification", p.class_tasks, data.Y_class.shape[1]),
                           ("regression", p.regr_tasks, data.Y_regr.shape[1])):
        expected = [t["task"] for t in (data.class_tasks() if kind == "classification" else data.regr_tasks())]
        width = (p.class_scores if kind == "classification" else p.regr_preds).shape[1]
        if width != n or (names is not None and [str(x) for x in names] != expected):
            raise DataError(f"the {what} predictions have other {kind} tasks than the prepared dataset",
                            where=str(where), fix=fix)


def _check_values(p: Predictions, what: str, where: Path) -> None:
    """Every prediction is a finite number, every class score a probability: a model that diverged (NaN or
    infinite outputs) is reported as such, not as a figure."""
    fix = "the model diverged or the file was damaged: retrain it (e.g. with a lower learning rate) and evaluate again"
    for kind, a in (("classification", p.class_scores), ("regression", p.regr_preds)):
        a = np.asarray(a, dtype=np.float64)
        bad = ~np.isfinite(a)
        if bad.any():
            raise DataError(f"the {what} predictions hold {int(bad.sum())} non-finite {kind} values (NaN or "
                            f"infinite) in {int(bad.any(axis=0).sum())} task(s)", where=str(where), fix=fix)
        if kind == "classification" and a.size and (a.min() < 0.0 or a.max() > 1.0):
            raise DataError(f"the {what} classification predictions are not probabilities (range {a.min():.3g} to "
                            f"{a.max():.3g})", where=str(where), fix=fix)


def _aligned_to(p: Predictions, rows: np.ndarray) -> Predictions:
    """The same predictions reordered to `rows` (both sets of rows were checked to be equal as sets)."""
    pos = {int(r): i for i, r in enumerate(np.asarray(p.rows))}
    idx = np.asarray([pos[int(r)] for r in rows], dtype=np.int64)
    pick = lambda a: None if a is None else np.asarray(a)[idx]  # noqa: E731
    return Predictions(class_scores=pick(p.class_scores), regr_preds=pick(p.regr_preds), class_std=pick(p.class_std),
                       regr_std=pick(p.regr_std), rows=np.asarray(rows), compound_ids=pick(p.compound_ids),
                       class_tasks=p.class_tasks, regr_tasks=p.regr_tasks)


def round_logs(partner_dir: Path) -> list[dict]:
    """This partner's per-round logs (logs/round_NNN.json), in round order; unreadable ones are skipped."""
    logs = []
    for path in sorted((partner_dir / "logs").glob("round_*.json")):
        try:
            logs.append(json.loads(path.read_text()))
        except (OSError, json.JSONDecodeError):
            continue
    return sorted(logs, key=lambda d: d.get("round", 0))


def load_inputs(run_dir: Path, partner: str, alone_dir: Path, prepared_dir: Path | None = None) -> ReportInputs:
    """Read and cross-check one partner's report inputs (FedchemError with what to do when they don't fit)."""
    run_dir, alone_dir = Path(run_dir), Path(alone_dir)
    ledger = partner_ledger(run_dir, partner)
    pdir = run_dir / "partners" / partner
    settings_path = run_dir / "settings.json"
    settings = _read_json(settings_path, "run's settings file") if settings_path.is_file() else {}
    prepared_dir = Path(prepared_dir) if prepared_dir else resolve_prepared_dir(ledger, partner, run_dir)
    data = load_prepared(prepared_dir, verify=True)
    # the prepared dataset is this partner's, made with the run's consortium secret (its ledger's fingerprints)
    if not ledger.secret_fingerprints:
        raise ConfigError("the run records no consortium secret fingerprints (made by an older fedchem), so its "
                          "prepared dataset cannot be checked", where=str(run_dir / "ledger.json"),
                          fix="re-run it with this fedchem version")
    check_manifest(data.manifest, partner, ledger.secret_fingerprints, prepared_dir / "manifest.json",
                   against="the run's")
    fed = _predictions(pdir / PREDICTIONS, "federated run", f"finish the run: fedchem run --resume {run_dir}")
    alone = _predictions(alone_dir / PREDICTIONS, "alone baseline",
                         f"train the baseline first: fedchem train-local {prepared_dir} --out {alone_dir}")
    _check_alignment(fed, data, "federated", pdir / PREDICTIONS)
    _check_alignment(alone, data, "alone", alone_dir / PREDICTIONS)
    _check_values(fed, "federated", pdir / PREDICTIONS)
    _check_values(alone, "alone", alone_dir / PREDICTIONS)
    if sorted(map(int, fed.rows)) != sorted(map(int, alone.rows)):
        raise DataError("the federated and the alone predictions cover different test compounds",
                        where=f"{pdir / PREDICTIONS} and {alone_dir / PREDICTIONS}",
                        fix="use the same validation/test folds for the baseline as the consortium's training section")
    test_fold = settings.get("training", {}).get("test_fold")
    rows = np.asarray(fed.rows, dtype=np.int64)
    if test_fold is not None and rows.size and not np.all(np.asarray(data.folds)[rows] == test_fold):
        raise DataError("the predictions are not on the run's test fold", where=str(pdir / PREDICTIONS),
                        fix="re-run the final evaluation (fedchem run --resume) with the same consortium config")
    fed_metrics = _read_json(pdir / "metrics.json", "run's final metrics") if (pdir / "metrics.json").is_file() else {}
    alone_metrics = (_read_json(alone_dir / "metrics.json", "baseline's metrics")
                     if (alone_dir / "metrics.json").is_file() else {})
    inp = ReportInputs(partner=partner, run_dir=run_dir, data_dir=prepared_dir, ledger=ledger, settings=settings,
                       data=data, rows=rows,
                       federated=fed, alone=_aligned_to(alone, rows), round_logs=round_logs(pdir),
                       federated_metrics=fed_metrics, alone_metrics=alone_metrics)
    _optional_predictions(inp, pdir, alone_dir, settings)
    return inp


def _optional(path: Path, what: str, data: PreparedDataset) -> Predictions | None:
    """Predictions a newer fedchem writes beside the test predictions; None when the file is not there."""
    if not path.is_file():
        return None
    p = _predictions(path, what, "re-run the step that writes it")
    _check_alignment(p, data, what, path)
    _check_values(p, what, path)
    return p


def _optional_predictions(inp: ReportInputs, pdir: Path, alone_dir: Path, settings: dict) -> None:
    """The chosen models' validation predictions (both sides, for the conformal figures) and the federated last
    round's test predictions, each checked like the test predictions; absent files leave those sections out."""
    for attr, fname, what in (("federated_last", LAST_PREDICTIONS, "federated last round"),
                              ("federated_finetuned", FINETUNED_PREDICTIONS, "federated fine-tuned")):
        p = _optional(pdir / fname, what, inp.data)
        if p is None or (attr == "federated_finetuned" and np.asarray(p.rows).size == 0):
            continue
        if sorted(map(int, p.rows)) != sorted(map(int, inp.rows)):
            raise DataError(f"the {what} predictions cover other compounds than the run's test predictions",
                            where=str(pdir / fname), fix="re-run the final evaluation (fedchem run --resume)")
        setattr(inp, attr, _aligned_to(p, inp.rows))
    fed_val = _optional(pdir / VALIDATION_PREDICTIONS, "federated validation", inp.data)
    alone_val = _optional(alone_dir / VALIDATION_PREDICTIONS, "alone validation", inp.data)
    if fed_val is None or alone_val is None:
        return
    val_fold = settings.get("training", {}).get("validation_fold")
    rows = np.asarray(fed_val.rows, dtype=np.int64)
    if sorted(map(int, rows)) != sorted(map(int, alone_val.rows)) or (
            val_fold is not None and rows.size and not np.all(np.asarray(inp.data.folds)[rows] == val_fold)):
        raise DataError("the federated and the alone validation predictions are not both on the run's validation "
                        "fold", where=f"{pdir / VALIDATION_PREDICTIONS} and {alone_dir / VALIDATION_PREDICTIONS}",
                        fix="use the same validation/test folds for the baseline as the consortium's training section")
    inp.validation_rows = rows
    inp.federated_validation = fed_val
    inp.alone_validation = _aligned_to(alone_val, rows)
