"""A partner training alone: epochs with a step learning-rate schedule, early stopping on the validation fold, the
best epoch of each kind chosen by the federated run's own rule (fedchem.algo.selection), then validation/test metrics
and predictions written to one output folder.

This is the baseline every federated result is compared with; `fedchem train-local` is its command line and
bench/quality.py calls it directly. The output folder is built in a temporary folder and renamed into place.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import torch

from fedchem.algo import evaluation, model as M, selection, training
from fedchem.algo.adam import COMPILE_MIN_STEPS
from fedchem.algo.batches import BatchSource
from fedchem.algo.config import ModelConfig, TrainingConfig
from fedchem.algo.evaluation import EvalResult, json_ready
from fedchem.algo.predictions import save_predictions
from fedchem.algo.params import save_params
from fedchem.opener.fileio import atomic_folder
from fedchem.opener.dataset import PreparedDataset
from fedchem.opener.errors import ConfigError, DataError, os_errors
from fedchem.opener.output_guard import check_output_folder

OUTPUT_FILES = ["trunk.npz", "head.npz", "model.json", "metrics.json", "metrics_per_task.csv",
                "test_predictions.npz", "validation_predictions.npz", "history.json"]

# (event, info): "epoch_start" {epoch, epochs, steps}, "step" {done, steps, loss}, "epoch_end" {history row}
Reporter = Callable[[str, dict], None]


@dataclass
class Folds:
    train: np.ndarray
    validation: np.ndarray
    test: np.ndarray


def split_folds(data: PreparedDataset, cfg: TrainingConfig, where: str = "") -> Folds:
    """Training rows = every fold but the validation and test folds; FedchemError when that cannot work."""
    folds = np.asarray(data.folds)
    present = sorted(int(f) for f in np.unique(folds))
    if cfg.validation_fold == cfg.test_fold:
        raise ConfigError(f"the validation fold and the test fold are both {cfg.test_fold}",
                          where="training.validation_fold / training.test_fold",
                          fix="choose two different folds (e.g. --validation-fold 0 --test-fold 1)")
    for name, f in (("validation", cfg.validation_fold), ("test", cfg.test_fold)):
        if f not in present:
            raise DataError(f"the {name} fold {f} holds no compound (folds present: "
                            f"{', '.join(map(str, present)) or 'none'})", where=where,
                            fix=f"choose a {name} fold among those present")
    out = Folds(train=np.flatnonzero(~np.isin(folds, [cfg.validation_fold, cfg.test_fold])),
                validation=np.flatnonzero(folds == cfg.validation_fold),
                test=np.flatnonzero(folds == cfg.test_fold))
    if out.train.size == 0:
        raise DataError("no compound is left for training once the validation and test folds are set aside",
                        where=where, fix="prepare with more folds, or use more data")
    if training.labelled_counts(data, out.train) == 0:
        raise DataError("no task has a label in the training folds", where=where,
                        fix="check the prepared tasks (prep_report.md) and the validation/test fold settings")
    return out


def lr_at(cfg: TrainingConfig, epoch: int, base: float | None = None) -> float:
    """Learning rate of 0-based `epoch`: multiplied by lr_gamma at each of lr_steps already reached."""
    base = cfg.learning_rate if base is None else base
    return base * cfg.lr_gamma ** sum(1 for s in cfg.lr_steps if s <= epoch)


def _summary(res: EvalResult) -> dict:
    name, value, _ = evaluation.headline(res)
    out = {"select_on": name, "value": value, "selection": selection.figures(res)}
    c = res.aggregate.get("classification")
    r = res.aggregate.get("regression")
    if c:
        out.update(auc_roc=c.get("auc_roc"), auc_pr=c.get("auc_pr"))
    if r:
        out.update(rmse=r.get("rmse"), r2=r.get("r2"), pearson=r.get("pearson"))
    return out


@dataclass
class LocalRun:
    """What `train_local` produced (also written to its output folder)."""

    out_dir: Path
    best_epoch: int
    epochs_run: int
    validation: EvalResult
    test: EvalResult
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    selected: dict[str, int] = field(default_factory=dict)  # kind -> chosen epoch (1-based)


def _per_task_csv(path: Path, results: dict[str, EvalResult]) -> None:
    keys: list[str] = []
    rows = []
    for split, res in results.items():
        for r in res.per_task:
            row = {"split": split, **r}
            rows.append(row)
            keys += [k for k in row if k not in keys]
    first = ["split", "task", "kind", "column", "auxiliary"]
    header = first + [k for k in keys if k not in first and k != "reason"] + ["reason"]
    with open(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=header, lineterminator="\n")
        w.writeheader()
        for row in rows:
            w.writerow({k: ("" if isinstance(v, float) and math.isnan(v) else v) for k, v in row.items()})


def _validate(trunk: M.Trunk, head: M.Head, data: PreparedDataset, rows: np.ndarray) -> EvalResult:
    """An epoch's validation: every figure, and the predictions the selection keeps when the epoch wins a kind."""
    return evaluation.evaluate(trunk, head, data, rows)


def _snapshot(trunk: M.Trunk, head: M.Head, into: tuple[dict, dict] | None = None) -> tuple[dict, dict]:
    """Copies of the trunk's and head's tensors (the best epoch so far), without deepcopy's object walk; written
    into the previous snapshot's tensors when given (no new 100 MB allocation per improved epoch)."""
    if into is None:
        return ({k: v.detach().clone() for k, v in trunk.state_dict().items()},
                {k: v.detach().clone() for k, v in head.state_dict().items()})
    with torch.no_grad():
        for module, saved in zip((trunk, head), into):
            for k, v in module.state_dict().items():
                saved[k].copy_(v)
    return into


def _reusable(snapshots: dict[str, tuple[dict, dict]], won: list[str]) -> tuple[dict, dict] | None:
    """A snapshot that only kinds in `won` hold (so it may be overwritten by the new best epoch), or None: reusing
    it spares a fresh allocation of the whole trunk per improved epoch (page faults: ~0.15 s at 32k x 1000)."""
    kept = {id(s) for k, s in snapshots.items() if k not in won}
    return next((s for k, s in snapshots.items() if k in won and id(s) not in kept), None)


def _set_up(data: PreparedDataset, folds: Folds, model_cfg: ModelConfig, train_cfg: TrainingConfig,
            steps: int) -> tuple[M.Trunk, M.Head, training.Optimizer, BatchSource, tuple[dict, dict] | None]:
    """A fresh trunk, head and optimiser, the training batches, and a blank snapshot or None. When the run takes
    the compiled step and may use two threads, the worker thread builds the model (torch's initialisation releases
    the GIL: ~0.2 s for a 32k x 1000 trunk and its zeroed moments) and then the blank snapshot the first improved
    epoch is copied into (its pages faulted in here, not in the epoch loop), while this thread starts numba
    (~0.45 s, RowSparseAdam.preload) and slices the batches. The model is the same bit for bit either way (seeded
    generators of its own)."""
    seed, partner = train_cfg.seed, data.manifest.get("partner")
    n_features, nc, nr = data.n_features, data.Y_class.shape[1], data.Y_regr.shape[1]
    regr_bias = training.regression_means(data, folds.train)

    def build() -> tuple[M.Trunk, M.Head, training.Optimizer]:
        trunk = M.init_trunk(n_features, model_cfg, seed)
        head = M.init_head(model_cfg, nc, nr, training.head_seed(seed, partner), regr_bias=regr_bias)
        return trunk, head, training.Optimizer(trunk, head, train_cfg, expected_steps=steps)

    optimiser = training.RowSparseAdam  # the input layer's (algo.reference swaps in the one of before)
    if steps < COMPILE_MIN_STEPS or training.step_threads() < 2 or not optimiser.has_compiled_step:
        built = build()
        return (*built, BatchSource(data, folds.train), None)

    def build_and_blank() -> tuple[M.Trunk, M.Head, training.Optimizer, tuple[dict, dict]]:
        trunk, head, opt = build()
        return trunk, head, opt, _blank_snapshot(trunk, head)
    pending = optimiser.pool().submit(build_and_blank)
    try:
        optimiser.preload(train_cfg.input_optimizer_state)
        source = BatchSource(data, folds.train)
    finally:
        trunk, head, opt, blank = pending.result()  # waited for even when this thread failed
    return trunk, head, opt, source, blank


def _blank_snapshot(trunk: M.Trunk, head: M.Head) -> tuple[dict, dict]:
    """Zeroed tensors shaped as a snapshot: written once, so that their memory is mapped before `_snapshot` fills
    them (a first copy into fresh memory faults 32,000 pages at 32k x 1000)."""
    with torch.no_grad():
        return ({k: torch.zeros_like(v) for k, v in trunk.state_dict().items()},
                {k: torch.zeros_like(v) for k, v in head.state_dict().items()})


def train_local(data: PreparedDataset, out_dir: Path, model_cfg: ModelConfig, train_cfg: TrainingConfig,
                report: Reporter | None = None, where: str = "", overwrite: bool = False,
                protected: tuple = ()) -> LocalRun:
    """Train a fresh trunk and head on the training folds, pick per kind the epoch with the best validation figure
    (fedchem.algo.selection: the rule the federated run uses for its rounds; early stopping after
    `early_stopping_patience` epochs in which no kind improved, 0 runs every epoch), evaluate the chosen epochs on
    the validation and test folds, and write everything to `out_dir` (see OUTPUT_FILES).

    Epoch e draws the batches and dropout masks of federated round e of the same partner (training.pass_seed), and
    one Adam state runs through all epochs, as it runs through a federated partner's rounds."""
    t_start = time.perf_counter()
    out_dir = Path(out_dir).absolute()
    check_local_out(out_dir, overwrite, protected)
    folds = split_folds(data, train_cfg, where)
    report = report or (lambda event, info: None)
    seed, partner = train_cfg.seed, data.manifest.get("partner")
    n_steps = math.ceil(folds.train.size / train_cfg.batch_size)
    trunk, head, opt, source, blank = _set_up(data, folds, model_cfg, train_cfg, n_steps * train_cfg.epochs)
    history: list[dict] = []
    sel = selection.Selection()
    snapshots: dict[str, tuple[dict, dict]] = {}  # kind -> (trunk state, head state) of its chosen epoch
    since_best = 0
    for epoch in range(train_cfg.epochs):
        lr = lr_at(train_cfg, epoch)
        report("epoch_start", {"epoch": epoch + 1, "epochs": train_cfg.epochs, "steps": n_steps})
        stats = training.train_epochs(
            trunk, head, data, folds.train, train_cfg, epochs=1.0, seed=training.pass_seed(seed, partner, epoch + 1),
            lr=lr, optimizer=opt, source=source,
            progress=lambda done, total, loss: report("step", {"done": done, "steps": total, "loss": loss}))
        val, won = selection.consider(sel, epoch + 1, trunk, head, data, folds.validation, folds.test,
                                      validate=_validate)
        if won:  # one copy shared by the kinds it won
            into = _reusable(snapshots, won)
            if into is None and blank is not None:
                into, blank = blank, None
            state = _snapshot(trunk, head, into=into)
            for kind in won:
                snapshots[kind] = state
        improved = any(sel.best[k].value is not None and sel.best[k].index == epoch + 1 for k in won)
        since_best = 0 if improved else since_best + 1
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": stats.mean_loss, "train_seconds": stats.seconds,
               "compounds_per_second": stats.compounds_per_second, "validation": _summary(val),
               "best": bool(improved), "best_for": [k for k in won if sel.best[k].value is not None]}
        history.append(row)
        report("epoch_end", row)
        if train_cfg.early_stopping_patience and since_best >= train_cfg.early_stopping_patience:
            break
    chosen = sel.chosen()
    primary = "classification" if "classification" in snapshots else "regression"
    # the model files hold the primary kind's chosen epoch (classification when there is any), written from its
    # snapshot's own tensors: loading it back into the trunk would be one more 131 MB copy at 32k x 1000
    if snapshots:
        trunk_arrays, head_arrays = ({k: v.numpy() for k, v in part.items()} for part in snapshots[primary])
    else:
        trunk_arrays, head_arrays = M.trunk_to_arrays(trunk, copy=False), M.head_to_arrays(head, copy=False)
    nc, nr = data.Y_class.shape[1], data.Y_regr.shape[1]
    best_epoch = chosen.get(primary, len(history))

    with os_errors(out_dir), atomic_folder(out_dir) as tmp, _written_beside(save_params, tmp / "trunk.npz",
                                                                        trunk_arrays):  # views: no copy needed
        (vc, vr), (tc, tr) = selection.chosen_predictions(sel, folds.validation.size, folds.test.size, nc, nr)
        val = evaluation.evaluate_predictions(data, folds.validation, vc, vr)
        test = evaluation.evaluate_predictions(data, folds.test, tc, tr)
        seconds = time.perf_counter() - t_start
        save_params(tmp / "head.npz", head_arrays)
        (tmp / "model.json").write_text(json.dumps({
            "n_features": data.n_features, "n_class_tasks": int(data.Y_class.shape[1]),
            "n_regr_tasks": int(data.Y_regr.shape[1]), "model": model_cfg.model_dump(mode="json"),
            "epoch": best_epoch, "holds": primary}, indent=2) + "\n")
        metrics_doc = json_ready({
            "settings": {"model": model_cfg.model_dump(mode="json"), "training": train_cfg.model_dump(mode="json")},
            "dataset": {"n_compounds": data.n_compounds, "n_features": data.n_features,
                        "content": data.manifest.get("files", {}).get("X.npz", "")[:16]},
            "folds": {"n_train": int(folds.train.size), "n_validation": int(folds.validation.size),
                      "n_test": int(folds.test.size)},
            "best_epoch": best_epoch, "selected": chosen, "selection": sel.summary(),
            "epochs_run": len(history), "seconds": seconds,
            "validation": val.as_dict()["aggregate"], "test": test.as_dict()["aggregate"],
        })
        (tmp / "metrics.json").write_text(json.dumps(metrics_doc, indent=2, sort_keys=True) + "\n")
        _per_task_csv(tmp / "metrics_per_task.csv", {"validation": val, "test": test})
        for name, res in (("test_predictions.npz", test), ("validation_predictions.npz", val)):
            p = res.predictions
            save_predictions(tmp / name, p.rows, p.compound_ids, p.class_scores, p.regr_preds,
                             class_tasks=p.class_tasks, regr_tasks=p.regr_tasks)
        (tmp / "history.json").write_text(json.dumps(json_ready(history), indent=2) + "\n")
        check_local_out(out_dir, overwrite, protected)  # again: the folder may have changed while training
    return LocalRun(out_dir=out_dir, best_epoch=best_epoch, epochs_run=len(history), validation=val, test=test,
                    history=history, seconds=seconds, selected=chosen)


def _write_beside(write: Callable, *args) -> Future:
    """`write(*args)` started on the worker thread: the trunk's file (131 MB at 32k x 1000, whose copy into the
    page cache, CRC and fsync release the GIL) is written while this thread evaluates and writes the rest."""
    return training.RowSparseAdam.pool().submit(write, *args)


@contextlib.contextmanager
def _written_beside(write: Callable, *args) -> Iterator[None]:
    """The block runs while `_write_beside(write, *args)` does; on leaving, the write has ended: its error is
    raised after a clean block, and after a failed one the block's own error (the folder is then removed)."""
    done = _write_beside(write, *args)
    try:
        yield
    except BaseException:
        done.exception()
        raise
    done.result()


def is_local_output(folder: Path) -> bool:
    """True if `folder` is a previous `fedchem train-local` output (its model.json says what it holds)."""
    try:
        doc = json.loads((Path(folder) / "model.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(doc, dict) and {"n_features", "model"} <= set(doc) and (Path(folder) / "metrics.json").is_file()


def check_local_out(out_dir: Path, overwrite: bool = False, protected: tuple = ()) -> None:
    """A previous train-local output may be replaced; anything else only with --overwrite, never a folder holding
    the prepared dataset or the configs (opener.output_guard)."""
    check_output_folder(out_dir, command="fedchem train-local", is_previous=is_local_output, force=overwrite,
                        force_flag="--overwrite", protected=protected, flag="--out")
