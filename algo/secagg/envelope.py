"""Authenticated encryption of one share to one peer (ChaCha20-Poly1305), bound to plan, round, sender, recipient, kind.

The associated data names the context, so a ciphertext moved to another round, recipient or kind (a self-mask
share presented as a pairwise-key share) fails authentication instead of decrypting.
"""

from __future__ import annotations

import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from fedchem.algo.secagg.keys import bind
from fedchem.opener.errors import ProtocolError

NONCE_BYTES = 12
KINDS = ("s", "b")  # s: share of the pairwise-mask private key; b: share of the self-mask seed


def share_context(plan_id: str, round_: int, sender: str, recipient: str, kind: str) -> bytes:
    """Associated data of one share ciphertext."""
    if kind not in KINDS:
        raise ValueError(f"unknown share kind {kind!r}")
    return bind("share", plan_id, round_, sender, recipient, kind)


def seal(key: bytes, plaintext: bytes, context: bytes) -> tuple[bytes, bytes]:
    """(nonce, ciphertext+tag) of `plaintext` under `key`, authenticating `context`; the nonce is fresh from the OS."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce, ChaCha20Poly1305(key).encrypt(nonce, plaintext, context)


def open_sealed(key: bytes, nonce: bytes, ciphertext: bytes, context: bytes, where: str) -> bytes:
    """The plaintext, or a ProtocolError if the ciphertext or its context was altered, replayed or redirected."""
    try:
        return ChaCha20Poly1305(key).decrypt(nonce, ciphertext, context)
    except (InvalidTag, ValueError) as exc:
        raise ProtocolError(
            "a share failed authentication: it was tampered with, replayed from another round, or "
            "meant for another recipient or kind",
            where,
            "refuse this request; check the shares files given to the release task",
        ) from exc
