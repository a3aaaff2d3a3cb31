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


@njit(nogil=True, cache=True, boundscheck=False, inline="always")
def _clipped_word(x, clip, factor):
    """(the signed ring word of clip(x) * factor, 1 if x was clipped else 0): encode_chunk's float64 arithmetic."""
    y = x if x < clip else clip
    y = y if y > -clip else -clip
    return np.int64(np.rint(y * factor)), np.int64(y != x)


@njit(nogil=True, cache=True, boundscheck=False)
def add_encoded_u8(values, clip, factor, acc):
    """acc (uint64) += the 64-bit ring encoding of clip(values) * factor, wrapping; returns how many were clipped.
    `values` must be finite (the caller checks)."""
    n_clipped = 0
    for i in range(values.shape[0]):
        word, clipped = _clipped_word(np.float64(values[i]), clip, factor)
        acc[i] += np.uint64(word)
        n_clipped += clipped
    return n_clipped


@njit(nogil=True, cache=True, boundscheck=False)
def add_encoded_u4(values, clip, factor, acc):
    """The same for a uint32 ring: its words are the low 32 bits of the signed encoding."""
    n_clipped = 0
    for i in range(values.shape[0]):
        word, clipped = _clipped_word(np.float64(values[i]), clip, factor)
        acc[i] += np.uint32(word)
        n_clipped += clipped
    return n_clipped
