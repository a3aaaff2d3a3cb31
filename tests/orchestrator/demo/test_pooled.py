"""The pooled-central bound of bench/payoff.py (issue 16): pooling keeps every label in its partner's block, folds
carry over, and cutting the pooled model's predictions back gives exactly a partner's own rows and task columns."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp

from fedchem.algo.predictions import Predictions
from fedchem.opener.errors import DataError
from fedchem.orchestrator.demo.pooled import cut, pool

from algo_synthetic import synthetic_dataset


@pytest.fixture
def partners():
    return {"a": synthetic_dataset(n=60, n_class=3, n_regr=2, seed=1),
            "b": synthetic_dataset(n=45, n_class=2, n_regr=1, seed=2),
            "c": synthetic_dataset(n=30, n_class=4, n_regr=0, seed=3)}


def test_every_label_stays_in_its_partners_block(partners):
    pooled, layout = pool(partners)
    assert pooled.X.shape == (135, partners["a"].n_features)
    assert pooled.Y_class.shape == (135, 9) and pooled.Y_regr.shape == (135, 3)
    for name, d in partners.items():
        b = layout[name]
        r = slice(b.row_offset, b.row_offset + b.n_rows)
        for attr, off, width in (("Y_class", b.class_offset, b.n_class), ("Y_regr", b.regr_offset, b.n_regr),
                                 ("Y_censor", b.regr_offset, b.n_regr)):
            P = sp.csr_matrix(getattr(pooled, attr))
            assert (P[r, off:off + width] != sp.csr_matrix(getattr(d, attr))).nnz == 0
            # nothing of this partner's rows outside its own columns
            assert P[r].nnz == sp.csr_matrix(getattr(d, attr)).nnz
        assert (pooled.X[r] != d.X).nnz == 0
        assert np.array_equal(pooled.folds[r], d.folds)
        cols = sorted(int(t["column"]) for t in pooled.tasks if t["task"].startswith(f"{name}/")
                      and t["kind"] == "classification")
        assert cols == list(range(b.class_offset, b.class_offset + b.n_class))


def test_cutting_back_gives_a_partners_own_rows_and_columns(partners):
    pooled, layout = pool(partners)
    n, tc, tr = pooled.n_compounds, pooled.Y_class.shape[1], pooled.Y_regr.shape[1]
    rows = np.random.default_rng(0).permutation(n)[: n // 2]          # e.g. the test fold, in any order
    enc = lambda r, c: r * 100.0 + c  # noqa: E731  (each cell names its pooled row and column)
    pred = Predictions(class_scores=np.array([[enc(r, c) for c in range(tc)] for r in rows]),
                       regr_preds=np.array([[enc(r, c) for c in range(tr)] for r in rows]), rows=rows)
    for name, d in partners.items():
        b = layout[name]
        mine = cut(pred, b, d)
        expect_rows = rows[(rows >= b.row_offset) & (rows < b.row_offset + b.n_rows)] - b.row_offset
        assert np.array_equal(mine.rows, expect_rows)
        assert mine.class_scores.shape == (expect_rows.size, d.Y_class.shape[1])
        for i, r in enumerate(mine.rows):
            assert list(mine.class_scores[i]) == [enc(r + b.row_offset, b.class_offset + c) for c in range(b.n_class)]
            assert list(mine.regr_preds[i]) == [enc(r + b.row_offset, b.regr_offset + c) for c in range(b.n_regr)]
        assert list(mine.compound_ids) == [d.compound_ids[r] for r in mine.rows]
        assert list(mine.class_tasks) == [t["task"] for t in d.class_tasks()]


def test_partners_of_different_fingerprints_are_refused(partners):
    other = dataclasses.replace(partners["b"], X=sp.csr_matrix((45, 7)))
    with pytest.raises(DataError, match="differ in width"):
        pool({"a": partners["a"], "b": other})
