"""Mini-batches straight from CSR matrices, in the training process (no worker processes forked per epoch).

The rows a run trains on are sliced out of X and the label matrices once; each batch is then a contiguous CSR
slice turned into torch tensors without copying: X as (indices, offsets, values) for `embedding_bag`, labels as
their labelled cells (row, column, value) so the loss never builds a dense compounds x tasks matrix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch

from fedchem.opener.dataset import PreparedDataset


class SparseRows(NamedTuple):
    """A CSR block of compounds as torch tensors: feature `indices`, row start `offsets`, feature `values`."""

    indices: torch.Tensor  # int64, nnz
    offsets: torch.Tensor  # int64, n_rows (start of each row in `indices`)
    values: torch.Tensor   # float32, nnz (raw fingerprint values; the trunk applies its input transform)
    n_rows: int


class FeatureOrder(NamedTuple):
    """A batch's non-zeros in feature order (its CSC order, ties in CSR order): the distinct features it uses
    (sorted), where each feature's run ends, and per non-zero in that order its compound row and its position
    among the batch's CSR non-zeros (to reorder the values)."""

    features: torch.Tensor  # int64, distinct features, ascending
    ends: torch.Tensor      # int64, end of features[k]'s run in rows/order
    rows: torch.Tensor      # int64, nnz
    order: torch.Tensor     # int64, nnz


def feature_order(indices: torch.Tensor, offsets: torch.Tensor, n_rows: int) -> FeatureOrder:
    """The batch's FeatureOrder with torch (a stable sort of the feature ids); `algo.row_kernels.feature_order` makes
    the same arrays in one compiled pass."""
    sorted_idx, order = torch.sort(indices, stable=True)
    features, per_feature = torch.unique_consecutive(sorted_idx, return_counts=True)
    counts = torch.diff(offsets, append=offsets.new_tensor([indices.numel()]))
    rows = torch.repeat_interleave(torch.arange(n_rows), counts)[order]
    return FeatureOrder(features, torch.cumsum(per_feature, 0), rows, order)


def rows_from_csr(X: sp.csr_matrix) -> SparseRows:
    """View a scipy CSR matrix as SparseRows (never densifies; copies only to change the index dtype)."""
    X = sp.csr_matrix(X)
    indptr = np.asarray(X.indptr, dtype=np.int64)
    return SparseRows(
        indices=torch.from_numpy(np.asarray(X.indices, dtype=np.int64)),
        offsets=torch.from_numpy(indptr[:-1].copy()),
        values=torch.from_numpy(np.asarray(X.data, dtype=np.float32)),
        n_rows=int(X.shape[0]),
    )


@dataclass
class Labels:
    """The labelled cells of one batch: rows local to the batch, task columns, values (and censor flags)."""

    rows: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor
    censor: torch.Tensor | None = None

    def __len__(self) -> int:
        return int(self.rows.numel())


@dataclass
class Batch:
    x: SparseRows
    y_class: Labels
    y_regr: Labels

    @property
    def n_rows(self) -> int:
        return self.x.n_rows


def _cells(Y: sp.csr_matrix, lo: int, hi: int, drop_zeros: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, slice]:
    """Row (local), column, value and the data slice of the stored cells of rows lo..hi of a CSR matrix."""
    a, b = int(Y.indptr[lo]), int(Y.indptr[hi])
    counts = np.diff(Y.indptr[lo:hi + 1])
    rows = np.repeat(np.arange(hi - lo, dtype=np.int64), counts)
    cols = np.asarray(Y.indices[a:b], dtype=np.int64)
    vals = np.asarray(Y.data[a:b], dtype=np.float32)
    if drop_zeros:
        keep = vals != 0
        return rows[keep], cols[keep], vals[keep], slice(a, b)
    return rows, cols, vals, slice(a, b)


def aligned_censor(Y_regr: sp.csr_matrix, Y_censor: sp.csr_matrix) -> np.ndarray:
    """Censor flags at each stored cell of Y_regr, in Y_regr's storage order (robust to a differently stored mask)."""
    if Y_regr.nnz == 0:
        return np.zeros(0, dtype=np.float32)
    if (Y_censor.nnz == Y_regr.nnz and np.array_equal(Y_censor.indptr, Y_regr.indptr)
            and np.array_equal(Y_censor.indices, Y_regr.indices)):
        return np.asarray(Y_censor.data, dtype=np.float32)
    coo_rows = np.repeat(np.arange(Y_regr.shape[0]), np.diff(Y_regr.indptr))
    return np.asarray(Y_censor[coo_rows, Y_regr.indices], dtype=np.float32).ravel()


class BatchSource:
    """The training rows of a prepared dataset, sliced once, served as batches in any order."""

    def __init__(self, data: PreparedDataset, rows: np.ndarray):
        rows = np.asarray(rows, dtype=np.int64)
        self.rows = rows
        every = rows.size == data.X.shape[0] and np.array_equal(rows, np.arange(rows.size))

        def take(M) -> sp.csr_matrix:  # every row in order: share the arrays (no copy of X, whose size is the data)
            return _csr(M) if every else _csr(M[rows])
        self.X = take(data.X)
        self.Yc = take(data.Y_class)
        self.Yr = take(data.Y_regr)
        C = _csr(data.Y_regr).copy()
        C.data = aligned_censor(_csr(data.Y_regr), _csr(data.Y_censor))
        self.C = take(C)
        self.n_class = int(data.Y_class.shape[1])
        self.n_regr = int(data.Y_regr.shape[1])

    def __len__(self) -> int:
        return int(self.rows.size)

    def batch(self, local_rows: np.ndarray) -> Batch:
        """The batch of the given positions (0..len-1) in this source."""
        local_rows = np.asarray(local_rows, dtype=np.int64)
        if local_rows.size and np.all(np.diff(local_rows) == 1):
            lo, hi = int(local_rows[0]), int(local_rows[-1]) + 1
            return _slice(self.X, self.Yc, self.Yr, self.C, lo, hi)
        return _slice(*(_csr(M[local_rows]) for M in (self.X, self.Yc, self.Yr, self.C)), 0, local_rows.size)

    def batches(self, order: np.ndarray, batch_size: int) -> Iterator[Batch]:
        """Batches over `order` (positions in this source), `batch_size` rows each (the last may be smaller).

        The rows of a block of batches (about BLOCK_ROWS compounds) are gathered once into new CSR matrices and
        each batch is a contiguous slice of them: the same batches as `batch(order[a:b])`, without building four
        scipy matrices per batch; the extra memory is one block, not the epoch."""
        order = np.asarray(order, dtype=np.int64)
        per_block = batch_size * max(1, BLOCK_ROWS // batch_size)
        for a in range(0, len(order), per_block):
            part = order[a:a + per_block]
            mats = tuple(_csr(M[part]) for M in (self.X, self.Yc, self.Yr, self.C))
            for lo in range(0, part.size, batch_size):
                yield _slice(*mats, lo, min(lo + batch_size, part.size))


BLOCK_ROWS = 1 << 14  # compounds gathered at once by BatchSource.batches


def batch_sizes(n_positions: int, batch_size: int) -> list[int]:
    """The number of compounds of each batch `BatchSource.batches` makes from n_positions positions."""
    per_block = batch_size * max(1, BLOCK_ROWS // batch_size)
    out = []
    for a in range(0, n_positions, per_block):
        part = min(per_block, n_positions - a)
        out += [min(batch_size, part - lo) for lo in range(0, part, batch_size)]
    return out


def _slice(X: sp.csr_matrix, Yc: sp.csr_matrix, Yr: sp.csr_matrix, C: sp.csr_matrix, lo: int, hi: int) -> Batch:
    """Rows lo..hi of the four matrices as a Batch (torch tensors over the CSR arrays, no densifying)."""
    a, b = int(X.indptr[lo]), int(X.indptr[hi])
    x = SparseRows(
        indices=torch.from_numpy(np.asarray(X.indices[a:b], dtype=np.int64)),
        offsets=torch.from_numpy(np.asarray(X.indptr[lo:hi], dtype=np.int64) - a),
        values=torch.from_numpy(np.asarray(X.data[a:b], dtype=np.float32)),
        n_rows=hi - lo,
    )
    cr, cc, cv, _ = _cells(Yc, lo, hi, drop_zeros=True)
    rr, rc, rv, part = _cells(Yr, lo, hi, drop_zeros=False)
    cens = np.asarray(C.data[part], dtype=np.float32)
    return Batch(
        x=x,
        y_class=Labels(torch.from_numpy(cr), torch.from_numpy(cc), torch.from_numpy(cv)),
        y_regr=Labels(torch.from_numpy(rr), torch.from_numpy(rc), torch.from_numpy(rv), torch.from_numpy(cens)),
    )


def x_batches(X: sp.csr_matrix, batch_size: int) -> Iterator[SparseRows]:
    """Consecutive row blocks of a CSR matrix as SparseRows (for prediction)."""
    X = _csr(X)
    for lo in range(0, X.shape[0], batch_size):
        yield rows_from_csr(X[lo:lo + batch_size])


def _csr(M) -> sp.csr_matrix:
    M = sp.csr_matrix(M)
    if not M.has_sorted_indices:
        M.sort_indices()
    return M
