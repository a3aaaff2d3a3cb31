"""per_task_table on sparse and dense label matrices, and the SparseChem-style weighted aggregate."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from fedchem import metrics as fm


def assert_same_rows(got: list[dict], expected: list[dict]) -> None:
    """Rows equal key by key: strings and counts exactly, floats to rounding, NaN equal to NaN."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert list(a) == list(b)
        for key in a:
            if isinstance(a[key], float):
                assert a[key] == pytest.approx(b[key], nan_ok=True), key
            else:
                assert a[key] == b[key], key


def class_matrix(seed: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """A 60 x 5 sparse +1/-1 matrix with missing cells: column 3 has only positives, column 4 no labels."""
    rng = np.random.default_rng(seed)
    n, t = 60, 5
    dense = np.where(rng.random((n, t)) < 0.4, 1.0, -1.0)
    labelled = rng.random((n, t)) < 0.6
    dense[:, 3] = 1.0
    labelled[:, 4] = False
    rows, cols = np.nonzero(labelled)
    Y = sp.csr_matrix((dense[rows, cols], (rows, cols)), shape=(n, t))
    scores = rng.random((n, t))
    return Y, scores


def test_classification_table_uses_only_labelled_cells():
    Y, scores = class_matrix(seed=5)
    table = fm.per_task_table(Y, scores, "classification", task_names=["a", "b", "c", "d", "e"])
    assert [row["task"] for row in table] == ["a", "b", "c", "d", "e"]
    Yc = Y.tocsc()
    for j in range(3):
        rows = Yc.indices[Yc.indptr[j]:Yc.indptr[j + 1]]
        expected = fm.classification_task_metrics(Yc.data[Yc.indptr[j]:Yc.indptr[j + 1]], scores[rows, j])
        assert_same_rows([table[j]], [{"task": table[j]["task"], **expected}])
        assert table[j]["n"] == Y[:, j].nnz < Y.shape[0]
    # scores in missing cells must not matter
    poisoned = scores.copy()
    poisoned[Y.toarray() == 0] = 0.999
    again = fm.per_task_table(Y, poisoned, "classification", task_names=["a", "b", "c", "d", "e"])
    assert_same_rows(again, table)
    assert table[3]["reason"] == "only 0 negatives (< 1 required)" and math.isnan(table[3]["auc_roc"])
    assert table[4]["reason"] == "no labelled values" and table[4]["n"] == 0


def test_dense_nan_matrix_gives_the_same_table():
    Y, scores = class_matrix(seed=6)
    dense = np.full(Y.shape, np.nan)
    coo = Y.tocoo()
    dense[coo.row, coo.col] = coo.data
    assert_same_rows(fm.per_task_table(dense, scores, "classification"), fm.per_task_table(Y, scores, "classification"))
    assert [row["task"] for row in fm.per_task_table(dense, scores, "classification")] == [0, 1, 2, 3, 4]


def test_quorum_settings_reach_every_task():
    Y, scores = class_matrix(seed=7)
    table = fm.per_task_table(Y, scores, "classification", min_pos=1000)
    assert all(row["reason"].startswith("only ") and "< 1000 required" in row["reason"] for row in table[:4])


def regression_matrix(seed: int):
    """A 40 x 3 sparse regression matrix with an explicit 0.0 value, missing cells and aligned censor flags."""
    rng = np.random.default_rng(seed)
    n, t = 40, 3
    labelled = rng.random((n, t)) < 0.5
    labelled[0, 0] = True
    values = rng.normal(5.0, 1.0, (n, t))
    values[0, 0] = 0.0  # a real measured 0.0
    flags = rng.choice([-1.0, 0.0, 1.0], size=(n, t), p=[0.2, 0.6, 0.2])
    flags[0, 0] = 0.0
    rows, cols = np.nonzero(labelled)
    Y = sp.csr_matrix((values[rows, cols], (rows, cols)), shape=(n, t))
    C = sp.csr_matrix((flags[rows, cols], (rows, cols)), shape=(n, t))  # keeps explicit 0 ("=") flags
    preds = rng.normal(5.0, 1.0, (n, t))
    return Y, C, preds, labelled, values, flags


def test_regression_table_counts_explicit_zero_and_uses_censor():
    Y, C, preds, labelled, values, flags = regression_matrix(seed=8)
    assert Y.nnz == labelled.sum()  # the explicit 0.0 is stored
    table = fm.per_task_table(Y, preds, "regression", censor=C)
    for j in range(3):
        rows = np.nonzero(labelled[:, j])[0]
        expected = fm.regression_task_metrics(values[rows, j], preds[rows, j], censor=flags[rows, j])
        assert_same_rows([table[j]], [{"task": table[j]["task"], **expected}])
    assert table[0]["n"] == labelled[:, 0].sum()
    # dropping the explicit 0.0 would change column 0: it really is counted
    rows = np.nonzero(labelled[1:, 0])[0] + 1
    without = fm.regression_task_metrics(values[rows, 0], preds[rows, 0], censor=flags[rows, 0])
    assert table[0]["rmse"] != pytest.approx(without["rmse"])
    # a censor matrix that stores only the non-zero flags is read the same way
    C2 = C.copy()
    C2.eliminate_zeros()
    assert C2.nnz < C.nnz
    assert_same_rows(fm.per_task_table(Y, preds, "regression", censor=C2), table)


def test_misaligned_inputs_raise():
    Y, C, preds, labelled, _, _ = regression_matrix(seed=9)
    stray = C.tolil()
    r, c = np.argwhere(~labelled)[0]
    stray[r, c] = 1.0
    with pytest.raises(ValueError, match="not aligned"):
        fm.per_task_table(Y, preds, "regression", censor=stray.tocsr())
    with pytest.raises(ValueError, match="shape"):
        fm.per_task_table(Y, preds[:, :2], "regression")
    with pytest.raises(ValueError, match="kind"):
        fm.per_task_table(Y, preds, "ranking")
    with pytest.raises(ValueError, match="task names"):
        fm.per_task_table(Y, preds, "regression", task_names=["x"])
    bad = sp.csr_matrix(np.array([[1.0, 0.5], [-1.0, 1.0]]))
    with pytest.raises(ValueError, match="task column 1"):
        fm.per_task_table(bad, np.full((2, 2), 0.5), "classification")


def test_aggregate_weights_exclude_and_skip_nan():
    rows = [
        {"task": "a", "auc_roc": 0.6, "rmse": 1.0},
        {"task": "b", "auc_roc": 0.9, "rmse": 2.0},
        {"task": "c", "auc_roc": 0.1, "rmse": 50.0},  # weight 0: excluded however bad
        {"task": "d", "auc_roc": float("nan"), "rmse": float("nan")},  # under quorum: skipped, counted as NaN
        {"task": "e", "auc_roc": float("nan"), "rmse": 3.0},  # NaN in one metric only
    ]
    agg = fm.aggregate(rows, weights=[1.0, 2.0, 0.0, 1.0, 1.0])
    assert agg["auc_roc"] == pytest.approx((0.6 + 2 * 0.9) / 3)
    assert agg["rmse"] == pytest.approx((1.0 + 2 * 2.0 + 3.0) / 4)
    assert (agg["n_tasks"], agg["n_tasks_excluded"], agg["n_tasks_counted"], agg["n_tasks_nan"]) == (5, 1, 3, 1)
    assert agg["n_counted"] == {"auc_roc": 2, "rmse": 3}
    plain = fm.aggregate(rows)
    assert plain["auc_roc"] == pytest.approx(np.nanmean([0.6, 0.9, 0.1]))
    assert plain["n_tasks_excluded"] == 0
    assert set(fm.aggregate(rows, metrics=["rmse"])) - {"rmse"} == {
        "n_tasks", "n_tasks_excluded", "n_tasks_counted", "n_tasks_nan", "n_counted"}


def test_aggregate_of_a_real_table_matches_a_weighted_nanmean():
    Y, scores = class_matrix(seed=10)
    table = fm.per_task_table(Y, scores, "classification")
    w = np.array([0.5, 1.0, 2.0, 1.0, 1.0])
    agg = fm.aggregate(table, weights=w)
    values = np.array([row["auc_pr"] for row in table])
    ok = ~np.isnan(values)
    assert agg["auc_pr"] == pytest.approx(np.sum(w[ok] * values[ok]) / np.sum(w[ok]))
    assert set(fm.CLASSIFICATION_METRICS) <= set(agg)
    assert "n_pos" not in agg and agg["n_tasks_nan"] == 2


def test_aggregate_edge_cases():
    rows = [{"auc_roc": 0.7}, {"auc_roc": 0.8}]
    assert math.isnan(fm.aggregate(rows, weights=[0, 0])["auc_roc"])
    with pytest.raises(ValueError, match="weights"):
        fm.aggregate(rows, weights=[1, -1])
    with pytest.raises(ValueError, match="weights"):
        fm.aggregate(rows, weights=[1])
    assert fm.aggregate([])["n_tasks"] == 0
