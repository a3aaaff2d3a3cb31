"""Standard normal samples from a cryptographically secure generator, not numpy's.

The random bits are the ChaCha20 keystream (the `cryptography` package) of a fresh 256-bit key from
`secrets.token_bytes`, used once (nonce 0). Each 64-bit word gives a uniform in (0, 1) with 53 random bits,
u = (x >> 11) + 1/2) / 2^53, never 0 or 1; pairs of uniforms become pairs of independent standard normals by the
Box-Muller transform, z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2). No seed exists outside
the call, so no one (not even the partner) can replay its noise. The samples are float64; the accounting models the
continuous Gaussian (floating-point effects: see README, threat model).
"""

from __future__ import annotations

import secrets

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

_CHUNK = 1 << 20  # normals per keystream call: bounded memory for long vectors


def _uniforms(encryptor, n: int) -> np.ndarray:
    words = np.frombuffer(encryptor.update(bytes(8 * n)), dtype="<u8")
    return ((words >> np.uint64(11)).astype(np.float64) + 0.5) * (1.0 / (1 << 53))


def standard_normal(n: int, key: bytes | None = None) -> np.ndarray:
    """n independent N(0, 1) samples (float64). `key` (32 bytes) is for tests only; by default a fresh secret one."""
    if n < 0:
        raise ValueError("n must be >= 0")
    key = secrets.token_bytes(32) if key is None else key
    encryptor = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        stop = min(n, start + _CHUNK)
        half = (stop - start + 1) // 2
        u1, u2 = _uniforms(encryptor, half), _uniforms(encryptor, half)
        r = np.sqrt(-2.0 * np.log(u1))
        theta = 2.0 * np.pi * u2
        pair = np.concatenate([r * np.cos(theta), r * np.sin(theta)])
        out[start:stop] = pair[: stop - start]
    return out
