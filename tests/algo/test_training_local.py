"""Training on a small planted-signal dataset: reproducible, learns, fractional epochs, sparse updates, evaluation."""

from __future__ import annotations

import numpy as np
import pytest

from algo_synthetic import synthetic_dataset
from fedchem.algo import evaluation, model as M, training
from fedchem.algo.config import ModelConfig, TrainingConfig

MCFG = ModelConfig(hidden_sizes=(32,), dropout=0.1)
TCFG = TrainingConfig(batch_size=32, learning_rate=3e-3)


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset()


def _rows(ds):
    folds = np.asarray(ds.folds)
    return np.flatnonzero(folds >= 2), np.flatnonzero(folds == 0)


def _fresh(ds, seed=0):
    trunk = M.init_trunk(ds.n_features, MCFG, seed)
    head = M.init_head(MCFG, ds.Y_class.shape[1], ds.Y_regr.shape[1], seed + 1)
    return trunk, head


def _arrays(trunk, head):
    return {**M.trunk_to_arrays(trunk), **{f"head.{k}": v for k, v in M.head_to_arrays(head).items()}}


def test_same_seed_same_trained_weights_bit_for_bit(ds):
    train, _ = _rows(ds)
    runs = []
    for seed in (5, 5, 6):
        trunk, head = _fresh(ds)
        training.train_epochs(trunk, head, ds, train, TCFG, epochs=1.5, seed=seed)
        runs.append(_arrays(trunk, head))
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not np.array_equal(runs[0]["input.weight"], runs[2]["input.weight"])


def test_training_lowers_the_loss_and_beats_chance(ds):
    train, val = _rows(ds)
    trunk, head = _fresh(ds)
    head = M.init_head(MCFG, ds.Y_class.shape[1], ds.Y_regr.shape[1], 1,
                       regr_bias=training.regression_means(ds, train))
    before = evaluation.evaluate(trunk, head, ds, val)
    opt = training.Optimizer(trunk, head, TCFG)
    losses = [training.train_epochs(trunk, head, ds, train, TCFG, epochs=1, seed=e, optimizer=opt).mean_loss
              for e in range(10)]
    after = evaluation.evaluate(trunk, head, ds, val)
    assert losses[-1] < 0.6 * losses[0]
    auc = after.aggregate["classification"]["auc_roc"]
    assert auc > 0.6 and auc > before.aggregate["classification"]["auc_roc"] + 0.05
    assert after.aggregate["regression"]["rmse"] < before.aggregate["regression"]["rmse"]
    assert len(after.per_task) == ds.Y_class.shape[1] + ds.Y_regr.shape[1]
    assert {r["kind"] for r in after.per_task} == {"classification", "regression"}


def test_fractional_epochs_process_that_share_of_the_rows(ds):
    train, _ = _rows(ds)
    trunk, head = _fresh(ds)
    stats = training.train_epochs(trunk, head, ds, train, TCFG, epochs=0.5, seed=0)
    assert stats.compounds == round(0.5 * train.size)
    assert stats.steps == -(-stats.compounds // TCFG.batch_size)
    order = training.epoch_order(10, 2.5, seed=1)
    assert order.size == 25 and sorted(order[:10]) == list(range(10)) and sorted(order[10:20]) == list(range(10))


def test_weight_decay_leaves_unused_input_rows_alone(ds):
    train, _ = _rows(ds)
    trunk, head = _fresh(ds)
    before = M.trunk_to_arrays(trunk)["input.weight"]
    cfg = TCFG.model_copy(update={"weight_decay": 0.5})
    training.train_epochs(trunk, head, ds, train[:3], cfg, epochs=1, seed=0)
    after = M.trunk_to_arrays(trunk)["input.weight"]
    used = np.unique(ds.X[train[:3]].indices)
    changed = np.flatnonzero((after != before).any(axis=1))
    np.testing.assert_array_equal(changed, used)


def test_mc_dropout_gives_a_spread_and_plain_prediction_is_deterministic(ds):
    trunk, head = _fresh(ds)
    X = ds.X[:20]
    p1 = evaluation.predict(trunk, head, X)
    p2 = evaluation.predict(trunk, head, X)
    assert np.array_equal(p1.class_scores, p2.class_scores) and p1.class_std is None
    assert p1.class_scores.shape == (20, 3) and p1.regr_preds.shape == (20, 2)
    assert ((p1.class_scores > 0) & (p1.class_scores < 1)).all()
    mc = evaluation.predict(trunk, head, X, mc_samples=8, seed=3)
    assert mc.class_std.shape == (20, 3) and (mc.class_std > 0).mean() > 0.9
    assert np.abs(mc.class_scores - p1.class_scores).mean() < 0.1
    assert trunk.training  # the caller's mode is restored


def test_auxiliary_tasks_weigh_zero_in_the_aggregate(ds):
    trunk, head = _fresh(ds)
    _, val = _rows(ds)
    tasks = [dict(t) for t in ds.tasks]
    tasks[0]["auxiliary"] = "true"
    aux = type(ds)(**{**vars(ds), "tasks": tasks})
    res = evaluation.evaluate(trunk, head, aux, val)
    agg = res.aggregate["classification"]
    assert agg["n_tasks_excluded"] == 1
    others = [r["auc_roc"] for r in res.per_task if r["kind"] == "classification" and not r["auxiliary"]]
    assert np.isclose(agg["auc_roc"], np.mean(others))
