"""The objects that cross task boundaries in secure aggregation, and their JSON form (bytes as base64).

PublicBundle  (everyone):      per round, the partner's X25519 public keys and a commitment to its self-mask seed.
SecretBundle  (owner only):    per round, the two X25519 private keys and the self-mask seed.
SharesBundle  (all partners):  per round and recipient, the AEAD ciphertexts of the partner's shares.
ReleasedShares (aggregator):   the plaintext shares one survivor releases for one round.
MaskedUpdate  (aggregator):    one partner's masked, encoded update of one round (a ring vector; stored as npz).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from fedchem.algo.secagg.keys import KEY_BYTES, b64, unb64
from fedchem.algo.secagg.envelope import KINDS, NONCE_BYTES
from fedchem.opener.errors import ProtocolError


def _need(d: Any, key: str, kind: type, where: str) -> Any:
    """d[key] if d is a dict holding a value of type `kind` there (a bool is not an int), else a ProtocolError."""
    value = d.get(key) if isinstance(d, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ProtocolError(f"missing or malformed field {key!r}", where, "re-create the file with fedchem")
    return d[key]


def _check_format(d: Any, expected: str, where: str) -> None:
    """The dict declares the expected file format, else a ProtocolError."""
    if _need(d, "format", str, where) != expected:
        raise ProtocolError(f"not a {expected} file (format {d.get('format')!r})", where, "pass the right file")


def _rounds(d: dict, where: str) -> dict[int, dict]:
    """The per-round mapping with integer round keys."""
    raw = _need(d, "rounds", dict, where)
    try:
        return {int(r): v for r, v in raw.items()}
    except ValueError as exc:
        raise ProtocolError("round keys must be integers", where, "re-create the file with fedchem") from exc


@dataclass(frozen=True)
class RoundPublic:
    """One round's public key material of one partner."""

    mask_pk: bytes  # X25519 public key for pairwise-mask agreement ("s" key)
    share_pk: bytes  # X25519 public key for encrypting shares to this partner ("c" key)
    seed_commitment: bytes  # SHA-256 commitment to the self-mask seed b


@dataclass(frozen=True)
class PublicBundle:
    """A partner's public key material for every planned round of one plan."""

    FORMAT = "fedchem-secagg-public/1"
    plan_id: str
    party_id: str
    rounds: dict[int, RoundPublic]
    sign_pk: bytes | None = None  # Ed25519 key of this plan for receipts and survivor-set confirmations

    def to_dict(self) -> dict:
        """JSON-able form (bytes as base64)."""
        rounds = {
            str(r): {"mask_pk": b64(k.mask_pk), "share_pk": b64(k.share_pk), "seed_commitment": b64(k.seed_commitment)}
            for r, k in sorted(self.rounds.items())
        }
        out = {"format": self.FORMAT, "plan_id": self.plan_id, "party_id": self.party_id, "rounds": rounds}
        if self.sign_pk is not None:
            out["sign_pk"] = b64(self.sign_pk)
        return out

    @classmethod
    def from_dict(cls, d: Any, where: str = "public bundle") -> PublicBundle:
        """Parse and validate the JSON-able form; malformed input is a ProtocolError."""
        _check_format(d, cls.FORMAT, where)
        rounds = {}
        for r, k in _rounds(d, where).items():
            w = f"{where}, round {r}"
            rounds[r] = RoundPublic(
                *(unb64(_need(k, f, str, w), w, KEY_BYTES) for f in ("mask_pk", "share_pk", "seed_commitment"))
            )
        sign_pk = unb64(_need(d, "sign_pk", str, where), where, KEY_BYTES) if "sign_pk" in d else None
        return cls(_need(d, "plan_id", str, where), _need(d, "party_id", str, where), rounds, sign_pk)

    def round(self, round_: int, where: str) -> RoundPublic:
        """This partner's keys for one round, or a ProtocolError if the round was not set up."""
        if round_ not in self.rounds:
            raise ProtocolError(
                f"partner {self.party_id} has no keys for round {round_}", where, "run key setup for all planned rounds"
            )
        return self.rounds[round_]


@dataclass(frozen=True, repr=False)
class RoundSecret:
    """One round's secret key material of one partner (repr hides it)."""

    mask_sk: bytes
    share_sk: bytes
    seed: bytes

    def __repr__(self) -> str:
        """Never prints the keys (they could end up in a log)."""
        return "RoundSecret(<hidden>)"


@dataclass(frozen=True, repr=False)
class SecretBundle:
    """A partner's secret key material for every planned round (owner only; repr hides it)."""

    FORMAT = "fedchem-secagg-secret/1"
    plan_id: str
    party_id: str
    rounds: dict[int, RoundSecret]

    def __repr__(self) -> str:
        """Names the bundle without printing any secret."""
        return f"SecretBundle(plan_id={self.plan_id!r}, party_id={self.party_id!r}, rounds={sorted(self.rounds)})"

    def to_dict(self) -> dict:
        """JSON-able form (bytes as base64)."""
        rounds = {
            str(r): {"mask_sk": b64(k.mask_sk), "share_sk": b64(k.share_sk), "seed": b64(k.seed)}
            for r, k in sorted(self.rounds.items())
        }
        return {"format": self.FORMAT, "plan_id": self.plan_id, "party_id": self.party_id, "rounds": rounds}

    @classmethod
    def from_dict(cls, d: Any, where: str = "secret bundle") -> SecretBundle:
        """Parse and validate the JSON-able form; malformed input is a ProtocolError."""
        _check_format(d, cls.FORMAT, where)
        rounds = {}
        for r, k in _rounds(d, where).items():
            w = f"{where}, round {r}"
            rounds[r] = RoundSecret(
                *(unb64(_need(k, f, str, w), w, KEY_BYTES) for f in ("mask_sk", "share_sk", "seed"))
            )
        return cls(_need(d, "plan_id", str, where), _need(d, "party_id", str, where), rounds)

    def round(self, round_: int, where: str) -> RoundSecret:
        """This partner's secret keys for one round, or a ProtocolError if the round was not set up."""
        if round_ not in self.rounds:
            raise ProtocolError(f"no secret keys for round {round_}", where, "run key setup for all planned rounds")
        return self.rounds[round_]


@dataclass(frozen=True)
class SealedShare:
    """One share encrypted to one recipient."""

    nonce: bytes
    ciphertext: bytes


@dataclass(frozen=True)
class SharesBundle:
    """A partner's encrypted shares: rounds[r][recipient][kind] with kind "s" (mask key) or "b" (self-mask seed)."""

    FORMAT = "fedchem-secagg-shares/1"
    plan_id: str
    sender: str
    threshold: int
    parties: tuple[str, ...]  # the key-setup roster; share index of parties[i] is i + 1
    rounds: dict[int, dict[str, dict[str, SealedShare]]]

    def to_dict(self) -> dict:
        """JSON-able form (bytes as base64)."""
        rounds = {
            str(r): {
                q: {k: {"nonce": b64(s.nonce), "ciphertext": b64(s.ciphertext)} for k, s in sorted(by_kind.items())}
                for q, by_kind in sorted(per_q.items())
            }
            for r, per_q in sorted(self.rounds.items())
        }
        return {
            "format": self.FORMAT,
            "plan_id": self.plan_id,
            "sender": self.sender,
            "threshold": self.threshold,
            "parties": list(self.parties),
            "rounds": rounds,
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "shares bundle") -> SharesBundle:
        """Parse and validate the JSON-able form; malformed input is a ProtocolError."""
        _check_format(d, cls.FORMAT, where)
        parties = _need(d, "parties", list, where)
        if not all(isinstance(p, str) for p in parties):
            raise ProtocolError("party ids must be strings", where, "re-create the file with fedchem")
        rounds: dict[int, dict[str, dict[str, SealedShare]]] = {}
        for r, per_q in _rounds(d, where).items():
            rounds[r] = {}
            for q, by_kind in per_q.items():
                w = f"{where}, round {r}, recipient {q}"
                rounds[r][q] = {
                    k: SealedShare(
                        unb64(_need(_need(by_kind, k, dict, w), "nonce", str, w), w, NONCE_BYTES),
                        unb64(_need(by_kind[k], "ciphertext", str, w), w),
                    )
                    for k in KINDS
                }
        return cls(
            _need(d, "plan_id", str, where),
            _need(d, "sender", str, where),
            _need(d, "threshold", int, where),
            tuple(parties),
            rounds,
        )


@dataclass(frozen=True)
class ReleasedShares:
    """The plaintext shares one surviving partner releases to the aggregator for one round.

    seed_shares:  survivor id -> (index, share of its self-mask seed b)
    key_shares:   dropped id -> (index, share of its pairwise-mask private key)
    """

    FORMAT = "fedchem-secagg-released/1"
    plan_id: str
    round: int
    party_id: str
    threshold: int
    survivors: tuple[str, ...]
    dropped: tuple[str, ...]
    seed_shares: dict[str, tuple[int, bytes]] = field(default_factory=dict)
    key_shares: dict[str, tuple[int, bytes]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-able form (bytes as base64)."""

        def enc(shares: dict[str, tuple[int, bytes]]) -> dict:
            return {p: {"index": i, "share": b64(s)} for p, (i, s) in sorted(shares.items())}

        return {
            "format": self.FORMAT,
            "plan_id": self.plan_id,
            "round": self.round,
            "party_id": self.party_id,
            "threshold": self.threshold,
            "survivors": list(self.survivors),
            "dropped": list(self.dropped),
            "seed_shares": enc(self.seed_shares),
            "key_shares": enc(self.key_shares),
        }

    @classmethod
    def from_dict(cls, d: Any, where: str = "released shares") -> ReleasedShares:
        """Parse and validate the JSON-able form; malformed input is a ProtocolError."""
        _check_format(d, cls.FORMAT, where)

        def dec(name: str) -> dict[str, tuple[int, bytes]]:
            return {
                p: (_need(v, "index", int, where), unb64(_need(v, "share", str, where), where, KEY_BYTES))
                for p, v in _need(d, name, dict, where).items()
            }

        ids = [tuple(_need(d, name, list, where)) for name in ("survivors", "dropped")]
        return cls(
            _need(d, "plan_id", str, where),
            _need(d, "round", int, where),
            _need(d, "party_id", str, where),
            _need(d, "threshold", int, where),
            ids[0],
            ids[1],
            dec("seed_shares"),
            dec("key_shares"),
        )


@dataclass(frozen=True)
class MaskedUpdate:
    """One partner's masked update of one round: ring words [masked encoded update..., masked encoded weight].

    n_clipped is for the partner's own log; it is not written to the file the aggregator reads (None after loading).
    """

    plan_id: str
    round: int
    party_id: str
    ring_bits: int
    n_parties: int  # roster size of the round: fixes the fixed-point scale
    vector: np.ndarray = field(repr=False)
    n_clipped: int | None = None

    @property
    def n_values(self) -> int:
        """Length of the update (without the weight word)."""
        return int(self.vector.shape[0]) - 1

    def header(self) -> dict:
        """Metadata stored beside the vector (no n_clipped: that stays with the partner)."""
        return {
            "format": "fedchem-secagg-masked/1",
            "plan_id": self.plan_id,
            "round": self.round,
            "party_id": self.party_id,
            "ring_bits": self.ring_bits,
            "n_parties": self.n_parties,
        }
