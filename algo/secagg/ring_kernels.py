"""Compiled fixed-point encoding fused with a ring addition: acc += rint(clip(values) * factor) mod 2^k, in one pass.

Why: numpy clips and encodes a chunk in five or six passes (clip, count, multiply, rint, cast to the ring) and adds
it in another; measured on one core per 512 KiB chunk, that is ~150 µs when the chunk needs clipping (~60 µs when
not), against ~17 µs for this loop. The arithmetic is `encoding.encode_chunk`'s (float64 clip and multiply, round
half to even, two's complement in the ring), so the words are the same bit for bit (tested). numba is imported only
when the process already holds it (`encoding.compiled_encoding`): its ~0.4 s start would cost a short task more
than the kernel saves.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(nogil=True, cache=True, boundscheck=False)
def add_encoded(values, clip, factor, base, out):
    """out = base + the ring encoding of clip(values) * factor, wrapping; returns how many were clipped.

    `base` and `out` are ring vectors read as signed words (int64 for the 64-bit ring, int32 for the 32-bit one,
    the caller's views): numba's integer addition wraps in two's complement, and a 32-bit word keeps the low 32
    bits, which is the ring arithmetic. `out` may be `base` (acc += encoding) or share memory with `values` (a
    float64 update masked in place, word i written after value i is read). `values` must be finite: the caller
    checks, with a min/max pass that also brings the chunk into cache (counting here instead made this loop,
    reading from memory, slower than both passes together: measured)."""
    n_clipped = 0
    for i in range(values.shape[0]):
        x = np.float64(values[i])
        y = x if x < clip else clip
        y = y if y > -clip else -clip
        n_clipped += np.int64(y != x)
        out[i] = base[i] + np.int64(np.rint(y * factor))
    return n_clipped
