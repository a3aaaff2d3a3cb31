"""Applicability domain: how far each test compound is from the partner's own training set.

Nearest-neighbour Tanimoto similarity on the binarised fingerprint rows (set bits; the keyed column scrambling
does not change it, being one permutation for all rows): for rows a, b, |a & b| / (|a| + |b| - |a & b|), with the
intersections from a sparse matrix product, chunked over the query rows so memory stays bounded.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

# bin edges of the nearest-neighbour similarity: [0, 0.3), [0.3, 0.5), [0.5, 0.7), [0.7, 1]
EDGES = (0.3, 0.5, 0.7)


def binarise(X: sp.spmatrix) -> sp.csr_matrix:
    """The set bits of each row as a 0/1 float32 CSR matrix (stored zeros dropped)."""
    B = sp.csr_matrix(X, dtype=np.float32, copy=True)
    B.eliminate_zeros()
    B.data[:] = 1.0
    return B


def nearest_similarity(query: sp.spmatrix, reference: sp.spmatrix, max_cells: int = 20_000_000) -> np.ndarray:
    """Highest Tanimoto similarity of each query row to any reference row (0 when they share no bit or the
    reference is empty); a chunk of query rows is multiplied at a time, about `max_cells` products at most."""
    Q, R = binarise(query), binarise(reference)
    out = np.zeros(Q.shape[0], dtype=np.float64)
    if Q.shape[0] == 0 or R.shape[0] == 0:
        return out
    q_bits = np.diff(Q.indptr).astype(np.float64)
    r_bits = np.diff(R.indptr).astype(np.float64)
    RT = R.T.tocsc()
    chunk = max(1, min(Q.shape[0], max_cells // max(1, R.shape[0])))
    for lo in range(0, Q.shape[0], chunk):
        inter = (Q[lo:lo + chunk] @ RT).tocoo()
        if inter.nnz == 0:
            continue
        union = q_bits[lo + inter.row] + r_bits[inter.col] - inter.data
        sim = np.divide(inter.data, union, out=np.zeros(inter.nnz), where=union > 0)
        np.maximum.at(out, lo + inter.row, sim)
    return out


def bin_labels(edges: tuple[float, ...] = EDGES) -> list[str]:
    """Human labels of the similarity bins, e.g. "< 0.3", "0.3–0.5", "≥ 0.7"."""
    labels = [f"< {edges[0]:g}"]
    labels += [f"{a:g}–{b:g}" for a, b in zip(edges[:-1], edges[1:])]
    labels.append(f"≥ {edges[-1]:g}")
    return labels


def assign_bins(similarity: np.ndarray, edges: tuple[float, ...] = EDGES) -> np.ndarray:
    """Bin index of each similarity (0 .. len(edges)); a value equal to an edge goes to the upper bin."""
    return np.searchsorted(np.asarray(edges), similarity, side="right")
