"""The selection rule both sides use: per kind, on validation only; its state survives a file; the optimiser's too."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import scipy.sparse as sp

from algo_synthetic import synthetic_dataset
from fedchem.algo import model as M, selection, training
from fedchem.algo.config import ModelConfig, TrainingConfig
from fedchem.algo.train_local import train_local

MCFG = ModelConfig(hidden_sizes=(32,), dropout=0.1)
TCFG = TrainingConfig(batch_size=32, learning_rate=3e-3, epochs=5, early_stopping_patience=0)


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset()


def _permute_test_labels(ds, test_fold: int, seed: int = 1):
    """The same dataset with the test fold's label rows shuffled among themselves (features untouched)."""
    test = np.flatnonzero(np.asarray(ds.folds) == test_fold)
    order = np.arange(ds.n_compounds)
    order[test] = np.random.default_rng(seed).permutation(test)
    pick = lambda m: sp.csr_matrix(m)[order]  # noqa: E731
    return dataclasses.replace(ds, Y_class=pick(ds.Y_class), Y_regr=pick(ds.Y_regr), Y_censor=pick(ds.Y_censor))


def test_the_rule_is_per_kind_strict_and_ignores_nan():
    sel = selection.Selection()
    assert sel.offer(1, {"classification": 0.5, "regression": 1.0}) == ["classification", "regression"]
    for kind in ("classification", "regression"):
        sel.keep(kind, 1, {"classification": 0.5, "regression": 1.0}[kind], np.zeros((2, 1)), np.zeros((3, 1)))
    # higher AUC-PR wins classification only; lower RMSE wins regression only; ties and NaN keep the earlier
    assert sel.offer(2, {"classification": 0.6, "regression": 1.2}) == ["classification"]
    assert sel.offer(3, {"classification": 0.5, "regression": 0.9}) == ["regression"]
    assert sel.offer(4, {"classification": float("nan"), "regression": 1.0}) == []
    assert selection.better("classification", 0.6, 0.6) is False


def test_selection_state_survives_its_file(tmp_path):
    sel = selection.Selection()
    sel.offer(3, {"classification": 0.7})
    sel.keep("classification", 3, 0.7, np.arange(6, dtype=np.float32).reshape(3, 2), np.ones((4, 2)))
    path = selection.save_selection(tmp_path / "selection.npz", sel)
    back = selection.load_selection(path)
    assert back.chosen() == {"classification": 3} and back.history == sel.history
    assert np.array_equal(back.best["classification"].validation, sel.best["classification"].validation)
    with pytest.raises(ValueError):
        selection.load_selection(training.save_optimizer(tmp_path / "opt.npz", _optimizer(synthetic_dataset())[0]))


def test_train_local_picks_by_validation_only_the_test_fold_changes_no_choice(ds, tmp_path):
    """Permuting the test fold's labels changes the test figures, and no choice, figure or prediction of selection."""
    a = train_local(ds, tmp_path / "a", MCFG, TCFG)
    b = train_local(_permute_test_labels(ds, TCFG.test_fold), tmp_path / "b", MCFG, TCFG)
    assert a.selected == b.selected and set(a.selected) == {"classification", "regression"}
    assert [h["validation"] for h in a.history] == [h["validation"] for h in b.history]
    assert np.array_equal(a.test.predictions.class_scores, b.test.predictions.class_scores)
    assert np.array_equal(a.test.predictions.regr_preds, b.test.predictions.regr_preds)
    fa, fb = (r.test.aggregate["classification"]["auc_pr"] for r in (a, b))
    assert math.isfinite(fa) and fa != fb  # the permutation did reach the test figures
    # each kind's choice is its own best validation epoch
    for kind, (metric, higher) in selection.RULE.items():
        curve = [h["validation"]["selection"][kind] for h in a.history]
        want = (int(np.argmax(curve)) if higher else int(np.argmin(curve))) + 1
        assert a.selected[kind] == want


def test_consider_never_reads_test_labels(ds):
    """The function the federated train task calls: same choice, same kept predictions with the test labels
    permuted."""
    folds = np.asarray(ds.folds)
    val, test = np.flatnonzero(folds == 0), np.flatnonzero(folds == 1)
    trunk, head = M.init_trunk(ds.n_features, MCFG, 0), M.init_head(MCFG, 3, 2, 1)
    sels = [selection.Selection(), selection.Selection()]
    for index in (1, 2):
        training.train_epochs(trunk, head, ds, np.flatnonzero(folds >= 2), TCFG, epochs=1.0, seed=index)
        for sel, data in zip(sels, (ds, _permute_test_labels(ds, 1))):
            selection.consider(sel, index, trunk, head, data, val, test)
    assert sels[0].summary() == sels[1].summary()
    for kind in sels[0].best:
        assert np.array_equal(sels[0].best[kind].test, sels[1].best[kind].test)


def _optimizer(ds):
    trunk, head = M.init_trunk(ds.n_features, MCFG, 0), M.init_head(MCFG, 3, 2, 1)
    return training.Optimizer(trunk, head, TCFG), trunk, head


def _after(ds, epochs: int, persist: bool, tmp_path):
    """`epochs` passes of one epoch each: one Adam through all (through its file, as across rounds), or a fresh one
    per pass (what a round did before)."""
    opt, trunk, head = _optimizer(ds)
    rows = np.flatnonzero(np.asarray(ds.folds) >= 2)
    for e in range(1, epochs + 1):
        if persist and e > 1:
            opt2 = training.Optimizer(trunk, head, TCFG)
            training.load_optimizer(training.save_optimizer(tmp_path / f"opt{e}.npz", opt), opt2)
            opt = opt2
        elif not persist:
            opt = training.Optimizer(trunk, head, TCFG)
        training.train_epochs(trunk, head, ds, rows, TCFG, epochs=1.0, seed=e, optimizer=opt)
    return M.trunk_to_arrays(trunk)


def test_optimizer_state_through_its_file_equals_one_optimizer_bit_for_bit(ds, tmp_path):
    opt, trunk, head = _optimizer(ds)
    rows = np.flatnonzero(np.asarray(ds.folds) >= 2)
    for e in (1, 2, 3):
        training.train_epochs(trunk, head, ds, rows, TCFG, epochs=1.0, seed=e, optimizer=opt)
    one = M.trunk_to_arrays(trunk)
    saved = _after(ds, 3, True, tmp_path)
    fresh = _after(ds, 3, False, tmp_path)
    assert all(np.array_equal(one[k], saved[k]) for k in one)
    assert not np.array_equal(one["input.weight"], fresh["input.weight"])  # fresh moments each pass differ


def test_optimizer_state_of_another_model_is_refused(ds, tmp_path):
    opt, _, _ = _optimizer(ds)
    path = training.save_optimizer(tmp_path / "o.npz", opt)
    other = training.Optimizer(M.init_trunk(ds.n_features, ModelConfig(hidden_sizes=(16,)), 0),
                               M.init_head(ModelConfig(hidden_sizes=(16,)), 3, 2, 1), TCFG)
    with pytest.raises(ValueError, match="shape"):
        training.load_optimizer(path, other)
