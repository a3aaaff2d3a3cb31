"""Masks as keystreams of a standard stream cipher (AES-128-CTR by default, or ChaCha20), added to or subtracted
from ring vectors in place, chunk by chunk, on two threads.

A mask is the keystream of a key read as little-endian k-bit words. Every 32-byte mask key (keys.py) is used for
one mask only, so the cipher's nonce is 0 and its counter starts at the first block. Keystreams are generated
straight into a small reusable buffer (update_into on zeros) and added with numpy's wrapping unsigned arithmetic
while the chunk is still in cache, so masking never holds a full-length mask in memory. A partner's chunk starts as
its first (self) mask, generated in place, and the encoding is added to it (`encoding.encode_add_chunk`, compiled
when numba is loaded): one buffer fewer to write and add.

Why AES-128-CTR by default. Any secure PRG makes the protocol (Bonawitz et al. use AES-CTR). On the project's
machines (AES-NI and VAES) cryptography's AES-128-CTR makes keystream about 1.7 times as fast as its ChaCha20
(10.5-11 against 6.1-6.6 GB/s on one core, measured; bench/secagg.py prints both), and keystream is most of
masking's time.
Its 128-bit key matches the security of the X25519 agreement the keys come from (about 128 bits), so a 256-bit
cipher key would not raise the protocol's. The AES key is derived from the 32-byte mask key with HKDF, bound to the
cipher's name, so one mask key never keys two ciphers. ChaCha20 (the 32-byte key itself) remains for hardware
without AES instructions: `SecAggConfig.mask_cipher`, part of the agreement every partner signs.

Why two threads. The work is keystream generation and numpy's additions and encoding, and on the project's 2-core
machine two threads of it run side by side (measured by bench/secagg.py: two threads generate raw keystream 1.6 to
1.8 times as fast as one when the machine is quiet). A vector is therefore cut into two ranges at chunk boundaries,
and each thread masks one range with keystreams that start at that range's offset (the cipher's block counter seeks
to any block). Every word gets exactly the keystream words and the order of operations of a single pass, so the
result is bit-identical to it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fedchem.algo.secagg.keys import bind, hkdf
from fedchem.algo.worker_thread import KeptWorker

CIPHERS = ("aes-128-ctr", "chacha20")
DEFAULT_CIPHER = "aes-128-ctr"  # SecAggConfig.mask_cipher's default (a test checks they agree)
CHUNK_BYTES = 1 << 19  # 512 KiB per buffer: few Python calls per byte, and the working chunk stays in cache
THREADS = 2  # the project's machines have 2 cores (see the module docstring)
BLOCK_BYTES = 64  # a ChaCha20 block (4 AES blocks): keystreams can start at any multiple of it

T = TypeVar("T")


def cipher_key(key: bytes, cipher: str) -> bytes:
    """The key `cipher` is keyed with for the 32-byte mask key `key`: the key itself for ChaCha20; for AES-128 the
    first 16 bytes of HKDF-SHA256(key) bound to the cipher's name."""
    if cipher == "chacha20":
        return key
    if cipher == "aes-128-ctr":
        return hkdf(key, bind("mask-cipher", cipher))[:16]
    raise ValueError(f"unknown mask cipher {cipher!r}; use one of {', '.join(CIPHERS)}")


def keystream(cipher: str, cipher_key_: bytes, start_byte: int = 0):
    """A cryptography encryptor whose output on zeros is the keystream of `cipher` from byte `start_byte` on (a
    multiple of BLOCK_BYTES)."""
    if start_byte % BLOCK_BYTES or start_byte < 0:
        raise ValueError(f"a keystream can start only at a {BLOCK_BYTES}-byte block boundary, not at byte {start_byte}")
    if cipher == "chacha20":  # cryptography's 16-byte nonce: a 4-byte little-endian block counter, 12 bytes of 0
        if start_byte // 64 >= 1 << 32:
            raise ValueError(f"a ChaCha20 keystream cannot start beyond 256 GiB (byte {start_byte})")
        nonce = (start_byte // 64).to_bytes(4, "little") + bytes(12)
        return Cipher(algorithms.ChaCha20(cipher_key_, nonce), mode=None).encryptor()
    if cipher == "aes-128-ctr":  # a 128-bit big-endian block counter, from 0
        return Cipher(algorithms.AES(cipher_key_), modes.CTR((start_byte // 16).to_bytes(16, "big"))).encryptor()
    raise ValueError(f"unknown mask cipher {cipher!r}; use one of {', '.join(CIPHERS)}")


class KeystreamMask:
    """One mask: the keystream of a 32-byte mask key under `cipher`, read sequentially in chunks from byte
    `start_byte` on, with the sign it enters the sum with (+1/-1)."""

    def __init__(self, key: bytes, sign: int, start_byte: int = 0, cipher: str = DEFAULT_CIPHER):
        if sign not in (1, -1):
            raise ValueError("sign must be +1 or -1")
        self.sign = sign
        self.cipher = cipher
        self._cipher_key = cipher_key(key, cipher)
        self._encryptor = keystream(cipher, self._cipher_key, start_byte)

    def at(self, start_byte: int) -> KeystreamMask:
        """The same mask, read from byte `start_byte` of its keystream on (a multiple of 64); the cipher key is
        reused, so AES's HKDF runs once a mask, not once a thread."""
        other = copy.copy(self)
        other._encryptor = keystream(self.cipher, self._cipher_key, start_byte)
        return other

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


_WORKER = KeptWorker("fedchem-mask")  # masks the second range (algo.worker_thread: no thread started per mask)


def over_ranges(length: int, itemsize: int, work: Callable[[int, int], T]) -> list[T]:
    """`work(lo, hi)` for each range of `split`: the first on this thread, the others (one with THREADS = 2) on
    the worker thread meanwhile; results in order.

    An exception in any range is raised here (after every range has finished)."""
    ranges = split(length, itemsize)
    if len(ranges) == 1 or _WORKER.is_current():  # a range that masks again runs inline: never wait on itself
        return [work(lo, hi) for lo, hi in ranges]
    others = [_WORKER.executor().submit(work, lo, hi) for lo, hi in ranges[1:]]
    try:
        first = work(*ranges[0])
    finally:
        failed = [f.exception() for f in others]  # waited for in every case: no range is still being written
    for exc in failed:
        if exc is not None:
            raise exc
    return [first, *(f.result() for f in others)]


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


def full_mask(key: bytes, length: int, dtype: np.dtype, cipher: str = DEFAULT_CIPHER) -> np.ndarray:
    """The whole keystream of mask key `key` as `length` ring words (for tests and small vectors), in one pass."""
    out = np.zeros(length, dtype=dtype)
    work = ChunkWorkspace(dtype)
    mask = KeystreamMask(key, +1, cipher=cipher)
    for start, stop in chunks(length, work.dtype.itemsize):
        mask.apply(out[start:stop], work.keystream, work.zeros)
    return out
