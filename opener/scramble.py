"""Keyed scrambling of fingerprint columns: one secret permutation, the same at every partner of a consortium.

The aggregator sees the trunk's input layer; scrambling its columns with a permutation only secret-holders can
compute stops it from reading that layer as chemistry (which ECFP bit is which substructure), while every partner's
column j still means the same feature. Derivation (no seeded numpy/random anywhere):
    key   = HMAC-SHA256(secret, "fedchem-scramble/v1")
    sort keys: the ChaCha20 keystream of `key` (nonce 0), 8 bytes (little-endian uint64) per column index
    order = stable argsort of the sort keys; old column j moves to new column perm[j] = order[j]
i.e. column indices sorted by a keyed pseudo-random function (ChaCha20 from `cryptography` in place of one HMAC per
index, so 2^26 columns take seconds, not minutes).
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import scipy.sparse as sp
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

DOMAIN = b"fedchem-scramble/v1"


def permutation(secret: bytes, size: int) -> np.ndarray:
    """The secret-derived permutation of `size` columns (int64): old column j -> new column perm[j]."""
    key = hmac.new(secret, DOMAIN, hashlib.sha256).digest()
    stream = Cipher(algorithms.ChaCha20(key, b"\x00" * 16), mode=None).encryptor().update(b"\x00" * (8 * size))
    sort_keys = np.frombuffer(stream, dtype="<u8")
    return np.argsort(sort_keys, kind="stable").astype(np.int64)


def permutation_digest(perm: np.ndarray) -> str:
    """sha256 of the permutation (little-endian int64): partners compare it to check they scramble alike."""
    return hashlib.sha256(np.ascontiguousarray(perm, dtype="<i8").tobytes()).hexdigest()


def scramble_columns(X: sp.csr_matrix, perm: np.ndarray) -> sp.csr_matrix:
    """X with column j moved to perm[j] (indices re-sorted within each row)."""
    out = sp.csr_matrix((X.data.copy(), perm[X.indices].astype(X.indices.dtype), X.indptr.copy()), shape=X.shape)
    out.sort_indices()
    return out
