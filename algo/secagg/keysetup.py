"""Key setup, run once per plan before round 1: per-round key pairs and seeds, then t-of-n shares sealed to each peer.

Step 1, `keygen`: every partner draws, for EVERY planned round, two fresh X25519 key pairs (s: pairwise masks,
c: encrypting shares) and a self-mask seed b. Per-round keys mean a secret revealed to recover one round (the mask
key of a dropped partner, the seeds of survivors) says nothing about any other round.
Step 2, `deal_shares`: every partner splits each round's s private key and b seed t-of-n among all partners
(itself included) and seals each share to its recipient with ChaCha20-Poly1305.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fedchem.algo.secagg.bundles import PublicBundle, RoundPublic, RoundSecret, SealedShare, SecretBundle, SharesBundle
from fedchem.algo.secagg.envelope import seal, share_context
from fedchem.algo.secagg.keys import new_private_key, new_seed, public_key_of, seed_commitment, share_encryption_key
from fedchem.algo.secagg.shamir import split_secret
from fedchem.opener.errors import ProtocolError


def default_threshold(n_parties: int) -> int:
    """Majority threshold t = floor(n/2) + 1 (at least 2): survivors needed to finish a round."""
    return max(2, n_parties // 2 + 1)


def threshold_for(configured: int | None, n_parties: int) -> int:
    """The threshold to use: SecAggConfig.threshold if set, else the majority; checked against n_parties."""
    t = default_threshold(n_parties) if configured is None else configured
    check_threshold(t, n_parties, "secagg.threshold")
    return t


def check_threshold(threshold: int, n_parties: int, where: str) -> None:
    """t must satisfy n/2 < t <= n (and t >= 2): then no two disjoint groups of t honest partners exist, so one
    partner's self-mask seed and mask key can never both be rebuilt in one round."""
    if n_parties < 2:
        raise ProtocolError(
            f"secure aggregation needs at least 2 partners, got {n_parties}",
            where,
            "add partners or disable secure aggregation",
        )
    if not (2 * threshold > n_parties and 2 <= threshold <= n_parties):
        raise ProtocolError(
            f"threshold {threshold} is not a majority of {n_parties} partners",
            where,
            f"use a threshold between {default_threshold(n_parties)} and {n_parties}",
        )


def keygen(plan_id: str, party_id: str, rounds: Sequence[int]) -> tuple[PublicBundle, SecretBundle]:
    """Fresh per-round key pairs and self-mask seeds for one partner: (public bundle for all, secret bundle for it)."""
    rounds = list(rounds)
    if not rounds or len(set(rounds)) != len(rounds) or not all(isinstance(r, int) and r >= 0 for r in rounds):
        raise ProtocolError(
            "rounds must be distinct non-negative integers",
            f"key setup of {party_id}",
            "pass the planned round numbers",
        )
    public, secret = {}, {}
    for r in rounds:
        mask_sk, share_sk, seed = new_private_key(), new_private_key(), new_seed()
        secret[r] = RoundSecret(mask_sk, share_sk, seed)
        public[r] = RoundPublic(
            public_key_of(mask_sk), public_key_of(share_sk), seed_commitment(seed, plan_id, r, party_id)
        )
    return PublicBundle(plan_id, party_id, public), SecretBundle(plan_id, party_id, secret)


def check_public_bundles(plan_id: str, public_bundles: Mapping[str, PublicBundle], where: str) -> None:
    """Every bundle belongs to this plan and to the partner it is filed under."""
    for pid, bundle in public_bundles.items():
        if bundle.plan_id != plan_id or bundle.party_id != pid:
            raise ProtocolError(
                f"public bundle filed under {pid} belongs to partner {bundle.party_id} of plan {bundle.plan_id}",
                where,
                "pass each partner's own public bundle of this plan",
            )


def check_secret_bundle(
    plan_id: str, party_id: str, secret: SecretBundle, public: PublicBundle, where: str, round_: int | None = None
) -> None:
    """The secret bundle is this partner's, of this plan, and matches its published keys (of one round, if given)."""
    if secret.plan_id != plan_id or secret.party_id != party_id:
        raise ProtocolError(
            f"secret bundle is partner {secret.party_id}'s of plan {secret.plan_id}",
            where,
            "pass this partner's own secret bundle",
        )
    for r in secret.rounds if round_ is None else [round_]:
        keys, pub = secret.round(r, where), public.round(r, where)
        if public_key_of(keys.mask_sk) != pub.mask_pk or public_key_of(keys.share_sk) != pub.share_pk:
            raise ProtocolError(
                f"secret keys of round {r} do not match the published public keys",
                where,
                "pass the secret bundle made together with the published public bundle",
            )


def deal_shares(
    plan_id: str, party_id: str, secret_bundle: SecretBundle, public_bundles: Mapping[str, PublicBundle], threshold: int
) -> SharesBundle:
    """Seal t-of-n shares of each round's mask key and self-mask seed to every partner in `public_bundles`.

    The key-setup roster is sorted(public_bundles); partner parties[i] holds share index i + 1.
    """
    where = f"key setup (shares) of {party_id}"
    parties = tuple(sorted(public_bundles))
    if party_id not in public_bundles:
        raise ProtocolError(f"partner {party_id} is not among the public bundles", where, "include its own bundle")
    check_threshold(threshold, len(parties), where)
    check_public_bundles(plan_id, public_bundles, where)
    check_secret_bundle(plan_id, party_id, secret_bundle, public_bundles[party_id], where)
    rounds: dict[int, dict[str, dict[str, SealedShare]]] = {}
    for r, keys in sorted(secret_bundle.rounds.items()):
        split = {
            "s": split_secret(keys.mask_sk, threshold, len(parties)),
            "b": split_secret(keys.seed, threshold, len(parties)),
        }
        rounds[r] = {}
        for pos, q in enumerate(parties):
            key = share_encryption_key(
                keys.share_sk, public_bundles[q].round(r, where).share_pk, plan_id, r, party_id, q
            )
            rounds[r][q] = {}
            for kind, shares in split.items():
                index, share = shares[pos]
                if index != pos + 1:  # pycryptodome numbers shares 1..n in order; the roster relies on it
                    raise RuntimeError("unexpected share numbering from pycryptodome")
                nonce, ct = seal(key, index.to_bytes(2, "big") + share, share_context(plan_id, r, party_id, q, kind))
                rounds[r][q][kind] = SealedShare(nonce, ct)
    return SharesBundle(plan_id, party_id, threshold, parties, rounds)
