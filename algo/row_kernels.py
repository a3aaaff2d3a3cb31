"""Compiled kernels of the input layer's training step: each builds a row's gradient and applies Adam to it in one pass.

Why compiled: in torch the row-sparse step is a dozen small kernels per chunk of rows (gather weights and moments,
the gradient's embedding_bag, the update, scatter back), each a pass over the chunk. Here each touched row is read
once and written once: its gradient (the sum of the grad_out rows of the batch's compounds that use the feature, a
few KB that stay in L1) is made, then Adam updates the weight and moment rows in place. Measured by bench/scale.py
and bench/train_speed.py (README, Figures).

numba compiles them on first use (`cache=True`: once per machine, then loaded from __pycache__ in ~0.5 s).
They release the GIL, so two Python threads can each take a disjoint half of the rows: the result is the same bit
for bit. `error_model="numpy"`: numba's default ("python") guards every float division with a zero test that
raises ZeroDivisionError, and that branch stops LLVM from vectorising the row loop. Without it Adam's loop runs on
SIMD lanes: 3.4x faster per weight (2.3 -> 0.7 ns on Tox21-sized rows, measured), the same results bit for bit
(tested; no denominator here can be 0, each has eps > 0 added). Arithmetic is float32 and follows
torch._fused_adamw_ (what torch.optim.AdamW(fused=True) runs on the CPU), and the rowwise rule of `algo.adam`;
tests compare them with torch within float rounding.

Arguments, shared by both kernels: W (n_features x hidden) weights, M the first moment (same shape), V the second
moment (same shape, or one value a row), G grad_out (batch x hidden); `features` the sorted distinct feature ids
the batch uses, `ends[k]` the end of feature k's run in `rows`/`values` (the batch's non-zeros in feature order:
compound row and value; `values` empty for "all ones"); rows `lo..hi` of `features` are updated.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy", inline="always")
def _gradient_row(g, G, rows, values, start, stop):
    """g = sum over j in [start, stop) of values[j] * G[rows[j]] (values empty: all ones)."""
    H = g.shape[0]
    for h in range(H):
        g[h] = 0.0
    if values.shape[0] > 0:
        for j in range(start, stop):
            r = rows[j]
            s = values[j]
            for h in range(H):
                g[h] += s * G[r, h]
    else:
        for j in range(start, stop):
            r = rows[j]
            for h in range(H):
                g[h] += G[r, h]


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def adam_rows(W, M, V, G, features, ends, rows, values, lo, hi, lr, beta1, beta2, eps, weight_decay, step_size,
              bias_correction2_sqrt):
    """AdamW on rows features[lo:hi], their gradient made from G: torch._fused_adamw_'s arithmetic per weight."""
    H = W.shape[1]
    g = np.empty(H, np.float32)
    one_minus_b1 = np.float32(1.0 - beta1)
    b2 = np.float32(beta2)
    one_minus_b2 = np.float32(1.0 - beta2)
    decay = np.float32(1.0 - lr * weight_decay)
    ss = np.float32(step_size)
    bc2 = np.float32(bias_correction2_sqrt)
    e = np.float32(eps)
    for k in range(lo, hi):
        u = features[k]
        _gradient_row(g, G, rows, values, ends[k - 1] if k > 0 else 0, ends[k])
        for h in range(H):
            p = W[u, h] * decay
            m = M[u, h] + one_minus_b1 * (g[h] - M[u, h])
            v = b2 * V[u, h] + one_minus_b2 * g[h] * g[h]
            M[u, h] = m
            V[u, h] = v
            W[u, h] = p - ss * m / (math.sqrt(v) / bc2 + e)


@njit(nogil=True, cache=True, boundscheck=False, error_model="numpy")
def rowwise_adam_rows(W, M, V, G, features, ends, rows, values, lo, hi, lr, beta1, beta2, eps, weight_decay,
                      bias_correction1, bias_correction2):
    """Partial-rowwise Adam on rows features[lo:hi]: a first moment per weight, one second moment per row (the
    average of the row's mean squared gradient); `algo.adam.RowSparseAdam._rowwise_chunk`'s rule."""
    H = W.shape[1]
    g = np.empty(H, np.float32)
    one_minus_b1 = np.float32(1.0 - beta1)
    decay = np.float32(1.0 - lr * weight_decay)
    for k in range(lo, hi):
        u = features[k]
        _gradient_row(g, G, rows, values, ends[k - 1] if k > 0 else 0, ends[k])
        sq = np.float32(0.0)
        for h in range(H):
            sq += g[h] * g[h]
        v = np.float32(beta2) * V[u] + np.float32(1.0 - beta2) * (sq / np.float32(H))
        V[u] = v
        scale = np.float32(-lr / bias_correction1) / (np.float32(math.sqrt(v / bias_correction2)) + np.float32(eps))
        for h in range(H):
            m = M[u, h] + one_minus_b1 * (g[h] - M[u, h])
            M[u, h] = m
            W[u, h] = W[u, h] * decay + m * scale


@njit(nogil=True, cache=True, boundscheck=False)
def feature_order(indices, offsets, cursor, features, ends, rows, order):
    """A batch's non-zeros in feature order (`algo.batches.feature_order`'s arrays, the same values) by a counting
    sort: writes features[:n] (ascending), ends[:n], rows and order (nnz each) and returns n, the number of
    distinct features, or -1 (nothing written) if a feature id is outside `cursor`. `indices`, `offsets`: the
    batch's CSR feature ids and row starts; `cursor` holds one int64 per input feature and must be all zero; it is
    left all zero. O(nnz + n log n), where torch sorts all nnz."""
    nnz = indices.shape[0]
    n_rows = offsets.shape[0]
    for j in range(nnz):  # the forward pass has checked them; this kernel has no bounds checks of its own
        if indices[j] < 0 or indices[j] >= cursor.shape[0]:
            return -1
    n = 0
    for j in range(nnz):  # count each feature's non-zeros, noting the distinct features on first sight
        f = indices[j]
        if cursor[f] == 0:
            features[n] = f
            n += 1
        cursor[f] += 1
    distinct = np.sort(features[:n])
    start = 0
    for k in range(n):  # each run's start (kept in cursor) and end
        f = distinct[k]
        count = cursor[f]
        cursor[f] = start
        start += count
        ends[k] = start
        features[k] = f
    for i in range(n_rows):  # place the non-zeros, in CSR order within each run: a stable sort
        hi = offsets[i + 1] if i + 1 < n_rows else nnz
        for j in range(offsets[i], hi):
            f = indices[j]
            p = cursor[f]
            rows[p] = i
            order[p] = j
            cursor[f] = p + 1
    for k in range(n):
        cursor[features[k]] = 0
    return n
