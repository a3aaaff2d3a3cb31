"""Compiled fixed-point encoding fused with a ring addition: acc += rint(clip(values) * factor) mod 2^k, in one pass.

Why: numpy clips and encodes a chunk in five or six passes (clip, count, multiply, rint, cast to the ring) and adds
it in another; measured on one core per 512 KiB chunk, that is ~150 µs when the chunk needs clipping (~60 µs when
not), against ~20 µs for these loops. The arithmetic is `encoding.encode_chunk`'s (float64 clip and multiply, round
half to even, two's complement in the ring), so the words are the same bit for bit (tested). numba is imported only
when the process already holds it (`encoding.compiled_encoding`): its ~0.4 s start would cost a short task more
than the kernel saves.

Why two kernels and not one with an output argument: LLVM vectorises a loop only when it can rule out that its
arrays overlap, and for two array arguments it checks at run time and falls back to a scalar loop when they do. A
single kernel called with out = base (acc += ...) or out = values (in place) therefore ran scalar, ~4x slower
(78 against 19 µs a 512 KiB chunk, measured). Each kernel below has one array per role, and the in-place one reads
and writes the same buffer through a view, which LLVM sees as one pointer.

Why the kernels count non-finite values themselves: the separate min/max pass numpy needs for it cost a train task
masking on two threads ~15 % of its time at 3 partners (measured), the counting in the loop ~2 %. The price: a
chunk with a NaN has been written when it is refused. Nothing of it is sent (mask_update raises), and the caller's
buffer is the task's own update, which a refused task discards.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(inline="always")
def _encode(x, clip, factor):
    """One value's ring word (int64, before the caller's wrap to its ring) and whether it was clipped and whether it
    was NaN or infinite (x - x is 0 only for finite x; such a value is clipped like any other, its word garbage):
    encoding.encode_chunk's arithmetic (float64 clip and multiply, round half to even). Inlined into each kernel."""
    y = x if x < clip else clip
    y = y if y > -clip else -clip
    return np.int64(np.rint(y * factor)), np.int64(y != x), np.int64((x - x) != 0.0)


@njit(nogil=True, cache=True, boundscheck=False)
def add_encoded(values, clip, factor, acc):
    """acc += the ring encoding of clip(values) * factor, wrapping; returns (how many were clipped, how many were
    NaN or infinite: the caller refuses the chunk when that count is not 0).

    `acc` is a ring vector read as signed words (int64 for the 64-bit ring, int32 for the 32-bit one, the caller's
    view), not sharing memory with `values`: numba's integer addition wraps in two's complement, and a 32-bit word
    keeps the low 32 bits, which is the ring arithmetic."""
    n_clipped = 0
    n_bad = 0
    for i in range(values.shape[0]):
        word, clipped, bad = _encode(np.float64(values[i]), clip, factor)
        n_clipped += clipped
        n_bad += bad
        acc[i] += word
    return n_clipped, n_bad


@njit(nogil=True, cache=True, boundscheck=False)
def encode_over(values, clip, factor, base):
    """The float64 `values` overwritten by their own 64-bit ring words, base + encoding (wrapping); returns (how
    many were clipped, how many were NaN or infinite), as add_encoded. Word i is written after value i is read (a
    train task's update masked in its own memory). `base` (int64) must not share memory with `values`."""
    words = values.view(np.int64)
    n_clipped = 0
    n_bad = 0
    for i in range(values.shape[0]):
        word, clipped, bad = _encode(values[i], clip, factor)
        n_clipped += clipped
        n_bad += bad
        words[i] = base[i] + word
    return n_clipped, n_bad
