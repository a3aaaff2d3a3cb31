"""Masks as ChaCha20 keystreams, added to or subtracted from ring vectors in place, chunk by chunk.

A mask is the ChaCha20 keystream of a 32-byte key (nonce 0: every key is used for one mask only) read as
little-endian k-bit words. Keystreams are generated straight into a small reusable buffer (update_into on zeros)
and added with numpy's wrapping unsigned arithmetic while the chunk is still in cache, so masking costs little
more than the keystream itself and never holds a full-length mask in memory.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

ZERO_NONCE = bytes(16)
CHUNK_BYTES = 1 << 19  # 512 KiB per buffer: few Python calls per byte, and the working chunk stays in cache


class KeystreamMask:
    """One mask: a ChaCha20 keystream read sequentially in chunks, with the sign it enters the sum with (+1/-1)."""

    def __init__(self, key: bytes, sign: int):
        if sign not in (1, -1):
            raise ValueError("sign must be +1 or -1")
        self.sign = sign
        self._encryptor = Cipher(algorithms.ChaCha20(key, ZERO_NONCE), mode=None).encryptor()

    def apply(self, acc: np.ndarray, scratch: np.ndarray, zeros: memoryview) -> None:
        """acc += sign * next len(acc) words of the keystream (mod 2^k), using `scratch` (same dtype, >= len(acc))."""
        buf = scratch[: acc.shape[0]]
        self._encryptor.update_into(zeros[: buf.nbytes], memoryview(buf).cast("B"))
        if self.sign > 0:
            np.add(acc, buf, out=acc)
        else:
            np.subtract(acc, buf, out=acc)


def chunks(length: int, itemsize: int) -> Iterator[tuple[int, int]]:
    """(start, stop) ranges covering [0, length) in chunks of CHUNK_BYTES."""
    step = max(1, CHUNK_BYTES // itemsize)
    for start in range(0, length, step):
        yield start, min(length, start + step)


class ChunkWorkspace:
    """Reusable scratch buffers for chunked masking of one ring dtype."""

    def __init__(self, dtype: np.dtype):
        self.dtype = np.dtype(dtype)
        self.step = max(1, CHUNK_BYTES // self.dtype.itemsize)
        self.keystream = np.empty(self.step, dtype=self.dtype)
        self.floats = np.empty(self.step, dtype=np.float64)
        self.zeros = memoryview(bytes(self.step * self.dtype.itemsize))

    def apply_all(self, acc: np.ndarray, masks: Sequence[KeystreamMask]) -> None:
        """Apply every mask, in order, to the chunk `acc`."""
        for mask in masks:
            mask.apply(acc, self.keystream, self.zeros)


def full_mask(key: bytes, length: int, dtype: np.dtype) -> np.ndarray:
    """The whole keystream of `key` as `length` ring words (for tests and small vectors)."""
    out = np.zeros(length, dtype=dtype)
    work = ChunkWorkspace(dtype)
    mask = KeystreamMask(key, +1)
    for start, stop in chunks(length, work.dtype.itemsize):
        mask.apply(out[start:stop], work.keystream, work.zeros)
    return out
