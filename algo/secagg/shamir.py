"""t-of-n Shamir sharing of 32-byte secrets (X25519 private keys, self-mask seeds) with pycryptodome.

pycryptodome's `Shamir` shares 16-byte secrets in GF(2^128); a 32-byte secret is split into two 16-byte halves,
each shared with its own independent random polynomial, and a share is the two half-shares at the same index.
Fewer than t shares of either half reveal nothing about it, so fewer than t shares reveal nothing of the secret.
"""

from __future__ import annotations

from Crypto.Protocol.SecretSharing import Shamir

from fedchem.opener.errors import ProtocolError

SECRET_BYTES = 32
HALF = 16


def split_secret(secret: bytes, threshold: int, n_shares: int) -> list[tuple[int, bytes]]:
    """Shares (index 1..n, 32 bytes) of a 32-byte secret; any `threshold` of them rebuild it."""
    if len(secret) != SECRET_BYTES:
        raise ValueError(f"secret must be {SECRET_BYTES} bytes, got {len(secret)}")
    if not 2 <= threshold <= n_shares:
        raise ProtocolError(
            f"threshold {threshold} is not in 2..{n_shares}",
            "secure aggregation key setup",
            "choose a threshold between 2 and the number of partners",
        )
    low = Shamir.split(threshold, n_shares, secret[:HALF])
    high = Shamir.split(threshold, n_shares, secret[HALF:])
    return [(i, a + b) for (i, a), (_, b) in zip(low, high, strict=True)]


def combine_secret(shares: list[tuple[int, bytes]], threshold: int, where: str) -> bytes:
    """The 32-byte secret from at least `threshold` distinct shares (the t lowest indices are used).

    Too few shares or duplicate indices is a ProtocolError; a wrong share gives a wrong secret, so callers check the
    result against a public commitment."""
    indices = [i for i, _ in shares]
    if len(set(indices)) != len(indices):
        raise ProtocolError("duplicate share indices", where, "each partner must release its own share once")
    if len(shares) < threshold:
        raise ProtocolError(
            f"{len(shares)} shares, at least {threshold} needed",
            where,
            "wait for more partners to release their shares, or resume the round later",
        )
    if any(len(s) != SECRET_BYTES for _, s in shares):
        raise ProtocolError("a share has the wrong length", where, "re-run the release step")
    used = sorted(shares)[:threshold]  # exactly t points define the polynomial
    low = Shamir.combine([(i, s[:HALF]) for i, s in used])
    high = Shamir.combine([(i, s[HALF:]) for i, s in used])
    return low + high
