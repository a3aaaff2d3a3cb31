"""The trunk's sparse input layer: equal to the dense computation, row-sparse gradients, works at 2^20 columns."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fedchem.algo.batches import rows_from_csr
from fedchem.algo.config import ModelConfig
from fedchem.algo.model import init_trunk, transform_values
from fedchem.algo.adam import DenseAdamW, RowSparseAdam


def _counts(n=7, n_features=40, seed=3) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    dense = rng.integers(0, 4, size=(n, n_features)) * (rng.random((n, n_features)) < 0.3)
    dense[2] = 0  # a compound with no feature at all
    return sp.csr_matrix(dense.astype(np.float32))


@pytest.mark.parametrize("transform", ["none", "binarize", "log1p"])
def test_sparse_input_equals_dense_product(transform):
    X = _counts()
    trunk = init_trunk(X.shape[1], ModelConfig(hidden_sizes=(5,), input_transform=transform), seed=1)
    with torch.no_grad():
        trunk.input.bias.copy_(torch.arange(5, dtype=torch.float32) / 10)
    dense = X.toarray().astype(np.float64)
    if transform == "binarize":
        dense = (dense > 0).astype(np.float64)
    elif transform == "log1p":
        dense = np.log1p(dense)
    W = trunk.input.weight.detach().numpy().astype(np.float64)
    expected = dense @ W + trunk.input.bias.detach().numpy()
    got = trunk.input(rows_from_csr(X)).detach().numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    assert np.allclose(got[2], trunk.input.bias.detach().numpy())  # empty row: only the bias


def test_unknown_transform_is_refused():
    with pytest.raises(ValueError, match="unknown input transform"):
        transform_values(torch.ones(3), "tanh-ish")


def test_gradient_and_adam_step_touch_only_the_used_rows():
    X = _counts(n=5, n_features=60)
    trunk = init_trunk(X.shape[1], ModelConfig(hidden_sizes=(4,), dropout=0.0), seed=2)
    before = trunk.input.weight.detach().clone()
    trunk(X).sum().backward()
    grad = trunk.input.weight.grad
    assert grad.is_sparse  # a dense n_features x hidden gradient is what makes SparseChem slow
    used = np.unique(X.indices)
    assert set(grad.coalesce().indices()[0].tolist()) == set(used.tolist())
    opt = RowSparseAdam(trunk.input.weight, lr=0.1, weight_decay=0.5)
    assert opt.step() == used.size
    changed = np.flatnonzero((trunk.input.weight.detach() != before).any(dim=1).numpy())
    np.testing.assert_array_equal(changed, used)


def test_row_sparse_adam_matches_dense_adam_on_the_touched_rows():
    """With every row in every batch, lazy Adam is plain Adam (and its decay is AdamW's)."""
    torch.manual_seed(0)
    w_sparse = torch.nn.Parameter(torch.randn(6, 3))
    w_dense = torch.nn.Parameter(w_sparse.detach().clone())
    ours = RowSparseAdam(w_sparse, lr=0.01, weight_decay=0.1)
    ref = torch.optim.AdamW([w_dense], lr=0.01, weight_decay=0.1)
    for k in range(5):
        g = torch.randn(6, 3)
        w_sparse.grad = g.to_sparse(1)
        w_dense.grad = g.clone()
        ours.step()
        ref.step()
    np.testing.assert_allclose(w_sparse.detach().numpy(), w_dense.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_two_to_the_twenty_columns_work_without_densifying_x():
    n_features = 1 << 20
    rng = np.random.default_rng(0)
    n, nnz = 64, 50
    cols = np.sort(np.stack([rng.choice(n_features, nnz, replace=False) for _ in range(n)]), axis=1)
    X = sp.csr_matrix((np.ones(n * nnz, np.float32), cols.ravel(), np.arange(0, n * nnz + 1, nnz)),
                      shape=(n, n_features))
    trunk = init_trunk(n_features, ModelConfig(hidden_sizes=(4,), dropout=0.0), seed=0)
    out = trunk(X)
    assert out.shape == (n, 4)
    out.sum().backward()
    g = trunk.input.weight.grad.coalesce()
    assert g.is_sparse and g.indices().shape[1] == np.unique(cols).size


def test_dense_adamw_matches_torch_adamw():
    torch.manual_seed(1)
    ours_p = [torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(3))]
    ref_p = [torch.nn.Parameter(p.detach().clone()) for p in ours_p]
    ours = DenseAdamW(ours_p, lr=0.02, weight_decay=0.05)
    ref = torch.optim.AdamW(ref_p, lr=0.02, weight_decay=0.05, foreach=False)
    for _ in range(6):
        for a, b in zip(ours_p, ref_p):
            g = torch.randn_like(a)
            a.grad, b.grad = g.clone(), g.clone()
        ours.step()
        ref.step()
    for a, b in zip(ours_p, ref_p):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-6, atol=1e-7)
