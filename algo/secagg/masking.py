"""Masks as ChaCha20 keystreams, added to or subtracted from ring vectors in place, chunk by chunk, on two threads.

A mask is the ChaCha20 keystream of a 32-byte key (nonce 0: every key is used for one mask only) read as
little-endian k-bit words. Keystreams are generated straight into a small reusable buffer (update_into on zeros)
and added with numpy's wrapping unsigned arithmetic while the chunk is still in cache, so masking never holds a
full-length mask in memory. A partner's chunk starts as its first (self) mask, generated in place, and the encoding
is added to it (`encoding.encode_add_chunk`, compiled when numba is loaded): one buffer fewer to write and add.

Why two threads. The work is keystream generation and numpy's additions and encoding, and on the project's 2-core
machine two threads of it run side by side (measured by bench/secagg.py: two threads generate raw keystream 1.6 to
1.8 times as fast as one when the machine is quiet). A vector is therefore cut into two ranges at chunk boundaries,
and each thread masks one range with keystreams that start at that range's offset (ChaCha20's 32-bit block counter,
the first 4 bytes of cryptography's 16-byte nonce, seeks to any 64-byte block). Every word gets exactly the
keystream words and the order of operations of a single pass, so the result is bit-identical to it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

ZERO_NONCE = bytes(16)
CHUNK_BYTES = 1 << 19  # 512 KiB per buffer: few Python calls per byte, and the working chunk stays in cache
THREADS = 2  # the project's machines have 2 cores (see the module docstring)
BLOCK_BYTES = 64  # a ChaCha20 block: keystreams can start at any multiple of it

T = TypeVar("T")


def _nonce_at(start_byte: int) -> bytes:
    """cryptography's 16-byte ChaCha20 nonce: a 4-byte little-endian block counter, then the 12-byte nonce (0)."""
    if start_byte % BLOCK_BYTES or not 0 <= start_byte // BLOCK_BYTES < 1 << 32:
        raise ValueError(f"a keystream can start only at a block boundary below 256 GiB, not at byte {start_byte}")
    return (start_byte // BLOCK_BYTES).to_bytes(4, "little") + ZERO_NONCE[4:]


class KeystreamMask:
    """One mask: a ChaCha20 keystream read sequentially in chunks from byte `start_byte` on, with the sign it enters
    the sum with (+1/-1)."""

    def __init__(self, key: bytes, sign: int, start_byte: int = 0):
        if sign not in (1, -1):
            raise ValueError("sign must be +1 or -1")
        self.sign = sign
        self._key = key
        self._encryptor = Cipher(algorithms.ChaCha20(key, _nonce_at(start_byte)), mode=None).encryptor()

    def at(self, start_byte: int) -> KeystreamMask:
        """The same mask, read from byte `start_byte` of its keystream on (a multiple of 64)."""
        return KeystreamMask(self._key, self.sign, start_byte)

    def write(self, acc: np.ndarray, zeros: memoryview) -> None:
        """acc = sign * next len(acc) words of the keystream (mod 2^k), generated straight into `acc` (contiguous)."""
        self._encryptor.update_into(zeros[: acc.nbytes], memoryview(acc).cast("B"))
        if self.sign < 0:
            np.negative(acc, out=acc)

    def apply(self, acc: np.ndarray, scratch: np.ndarray, zeros: memoryview) -> None:
        """acc += sign * next len(acc) words of the keystream (mod 2^k), using `scratch` (same dtype, >= len(acc))."""
        buf = scratch[: acc.shape[0]]
        self._encryptor.update_into(zeros[: buf.nbytes], memoryview(buf).cast("B"))
        if self.sign > 0:
            np.add(acc, buf, out=acc)
        else:
            np.subtract(acc, buf, out=acc)


def chunks(length: int, itemsize: int, start: int = 0) -> Iterator[tuple[int, int]]:
    """(start, stop) ranges covering [start, length) in chunks of CHUNK_BYTES (`start` on a chunk boundary)."""
    step = max(1, CHUNK_BYTES // itemsize)
    for lo in range(start, length, step):
        yield lo, min(length, lo + step)


def split(length: int, itemsize: int, parts: int | None = None) -> list[tuple[int, int]]:
    """[0, length) cut into at most `parts` (default THREADS) ranges of whole chunks (each starts on a keystream
    block boundary)."""
    parts = THREADS if parts is None else parts
    step = max(1, CHUNK_BYTES // itemsize)
    if (step * itemsize) % BLOCK_BYTES:
        raise ValueError(f"CHUNK_BYTES must be a multiple of {BLOCK_BYTES}")
    n_chunks = max(1, -(-length // step))
    parts = max(1, min(parts, n_chunks))
    cuts = [min(length, (n_chunks * i // parts) * step) for i in range(parts + 1)]
    return [(cuts[i], cuts[i + 1]) for i in range(parts)]


def over_ranges(length: int, itemsize: int, work: Callable[[int, int], T]) -> list[T]:
    """`work(lo, hi)` for each range of `split`, on its own thread when there are several; results in order.

    An exception in any range is raised here (after every thread has finished)."""
    ranges = split(length, itemsize)
    if len(ranges) == 1:
        return [work(*ranges[0])]
    with ThreadPoolExecutor(max_workers=len(ranges), thread_name_prefix="fedchem-mask") as pool:
        futures = [pool.submit(work, lo, hi) for lo, hi in ranges]
        return [f.result() for f in futures]


class ChunkWorkspace:
    """Reusable scratch buffers for chunked masking of one ring dtype (one per thread)."""

    def __init__(self, dtype: np.dtype):
        self.dtype = np.dtype(dtype)
        self.step = max(1, CHUNK_BYTES // self.dtype.itemsize)
        self.keystream = np.empty(self.step, dtype=self.dtype)
        self.floats = np.empty(self.step, dtype=np.float64)
        self.encoded = np.empty(self.step, dtype=self.dtype)
        self.zeros = memoryview(bytes(self.step * self.dtype.itemsize))

    def apply_all(self, acc: np.ndarray, masks: Sequence[KeystreamMask]) -> None:
        """Apply every mask, in order, to the chunk `acc`."""
        for mask in masks:
            mask.apply(acc, self.keystream, self.zeros)


def full_mask(key: bytes, length: int, dtype: np.dtype) -> np.ndarray:
    """The whole keystream of `key` as `length` ring words (for tests and small vectors), in one pass."""
    out = np.zeros(length, dtype=dtype)
    work = ChunkWorkspace(dtype)
    mask = KeystreamMask(key, +1)
    for start, stop in chunks(length, work.dtype.itemsize):
        mask.apply(out[start:stop], work.keystream, work.zeros)
    return out
