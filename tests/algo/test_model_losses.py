"""Losses against hand-computed values: masked BCE with task weights, censored MSE on each side of a bound."""

from __future__ import annotations

import math

import numpy as np
import torch

from fedchem.algo.batches import Labels
from fedchem.algo.losses import batch_loss, censored_mse, censored_mse_terms, masked_bce


def _sp(x: float) -> float:
    return math.log1p(math.exp(x))


def test_masked_bce_by_hand_with_task_weights():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    labels = torch.tensor([[1.0, 0.0], [-1.0, 1.0]])
    weights = torch.tensor([1.0, 3.0])
    # cell (0,0): +1, z=0 -> log 2; cell (0,1) missing; (1,0): -1, z=1 -> log(1+e); (1,1): +1, z=-1 -> 3*log(1+e)
    expected = _sp(0.0) + _sp(1.0) + 3 * _sp(1.0)
    assert math.isclose(float(masked_bce(logits, labels, weights)), expected, rel_tol=1e-6)


def test_masked_bce_ignores_missing_labels():
    labels = torch.tensor([[1.0, 0.0, -1.0]])
    a = masked_bce(torch.tensor([[0.3, 5.0, -0.2]]), labels)
    b = masked_bce(torch.tensor([[0.3, -40.0, -0.2]]), labels)
    assert float(a) == float(b)
    assert float(masked_bce(torch.tensor([[9.0]]), torch.tensor([[0.0]]))) == 0.0


def test_censored_mse_is_zero_on_the_right_side_of_the_bound_and_squared_otherwise():
    target = torch.tensor([5.0, 5.0, 5.0, 5.0, 5.0, 5.0])
    censor = torch.tensor([1.0, 1.0, -1.0, -1.0, 0.0, 0.0])  # > 5, > 5, < 5, < 5, = 5, = 5
    pred = torch.tensor([6.0, 4.0, 4.0, 6.5, 6.0, 3.0])
    terms = censored_mse_terms(pred, target, censor).tolist()
    assert terms == [0.0, 1.0, 0.0, 2.25, 1.0, 4.0]
    mask = torch.tensor([True, True, True, True, True, False])
    w = torch.tensor([2.0] * 6)
    assert float(censored_mse(pred, target, censor, mask, w)) == 2 * (1.0 + 2.25 + 1.0)


def test_batch_loss_on_labelled_cells_equals_the_dense_masked_form():
    rng = np.random.default_rng(0)
    n, tc, tr = 6, 3, 2
    logits = torch.tensor(rng.normal(size=(n, tc)), dtype=torch.float32)
    regr = torch.tensor(rng.normal(size=(n, tr)), dtype=torch.float32)
    Yc = rng.choice([-1.0, 0.0, 1.0], size=(n, tc)).astype(np.float32)
    Yr_mask = rng.random((n, tr)) < 0.6
    Yr = rng.normal(size=(n, tr)).astype(np.float32)
    Cen = rng.choice([-1.0, 0.0, 1.0], size=(n, tr)).astype(np.float32)
    wc = torch.tensor([1.0, 0.1, 2.0])
    wr = torch.tensor([0.5, 1.5])
    cr, cc = np.nonzero(Yc)
    rr, rc = np.nonzero(Yr_mask)
    y_class = Labels(torch.from_numpy(cr), torch.from_numpy(cc), torch.from_numpy(Yc[cr, cc]))
    y_regr = Labels(torch.from_numpy(rr), torch.from_numpy(rc), torch.from_numpy(Yr[rr, rc]),
                    torch.from_numpy(Cen[rr, rc]))
    total, c_part, r_part = batch_loss(logits, regr, y_class, y_regr, wc, wr, n_rows=n)
    c_dense = float(masked_bce(logits, torch.from_numpy(Yc), wc)) / n
    r_dense = float(censored_mse(regr, torch.from_numpy(Yr), torch.from_numpy(Cen), torch.from_numpy(Yr_mask),
                                 wr)) / n
    assert math.isclose(c_part, c_dense, rel_tol=1e-5)
    assert math.isclose(r_part, r_dense, rel_tol=1e-5)
    assert math.isclose(float(total), c_dense + r_dense, rel_tol=1e-5)
