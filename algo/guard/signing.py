"""Ed25519 signatures over canonical JSON, for receipts and survivor-set confirmations (`cryptography` only)."""

from __future__ import annotations

import json

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from fedchem.algo.secagg.keys import b64, unb64
from fedchem.opener.errors import ProtocolError

CONTEXT = b"fedchem-guard/v1\x00"


def new_signing_key() -> tuple[bytes, bytes]:
    """(private raw 32 bytes, public raw 32 bytes)."""
    sk = Ed25519PrivateKey.generate()
    return sk.private_bytes_raw(), sk.public_key().public_bytes_raw()


def _message(purpose: str, body: dict) -> bytes:
    return CONTEXT + purpose.encode() + b"\x00" + json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def sign(private: bytes, purpose: str, body: dict) -> str:
    """Base64 signature over (purpose, body)."""
    return b64(Ed25519PrivateKey.from_private_bytes(private).sign(_message(purpose, body)))


def verify(public: bytes, purpose: str, body: dict, signature: object) -> bool:
    """True iff `signature` is a valid signature by `public` over (purpose, body)."""
    if not isinstance(signature, str):
        return False
    try:
        raw = unb64(signature, "signature", 64)
        Ed25519PublicKey.from_public_bytes(public).verify(raw, _message(purpose, body))
        return True
    except (InvalidSignature, ValueError, ProtocolError):  # malformed base64 is a ProtocolError from unb64
        return False
