"""The honest partner's release step: open the shares the aggregator needs for one round, and refuse anything more.

For each survivor it releases its share of that survivor's self-mask seed b; for each dropped partner its share of
that partner's pairwise-mask key s. It refuses a request that names a partner as both survivor and dropped, that
would (with its earlier releases of the round) reveal both kinds for one partner, or that lists fewer survivors than
the threshold (else the aggregator could declare everyone else dropped and unmask one partner's update alone).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from fedchem.algo.secagg.bundles import PublicBundle, ReleasedShares, SecretBundle, SharesBundle
from fedchem.algo.secagg.envelope import open_sealed, share_context
from fedchem.algo.secagg.keys import KEY_BYTES, share_encryption_key
from fedchem.algo.secagg.keysetup import check_public_bundles, check_secret_bundle, check_threshold
from fedchem.opener.errors import ProtocolError


def _check_request(
    party_id: str,
    survivors: Sequence[str],
    dropped: Sequence[str],
    previous: Sequence[ReleasedShares],
    plan_id: str,
    round_: int,
    where: str,
) -> None:
    """Refuse malformed requests and any that would reveal both shares of one partner in this round."""
    fix = (
        "the aggregator may ask each partner only for self-mask shares of survivors and mask-key shares of the dropped"
    )
    if len(set(survivors)) != len(survivors) or len(set(dropped)) != len(dropped):
        raise ProtocolError("a partner is listed twice in the request", where, fix)
    both = set(survivors) & set(dropped)
    if both:
        raise ProtocolError(
            f"refused: partners {sorted(both)} are listed both as survivors and as dropped, which "
            "would reveal both their self-mask seed and their mask key",
            where,
            fix,
        )
    if party_id not in survivors:
        raise ProtocolError(
            f"partner {party_id} is not listed as a survivor, so it takes no part in unmasking", where, fix
        )
    seeds_before = {p for rel in previous for p in rel.seed_shares}
    keys_before = {p for rel in previous for p in rel.key_shares}
    for rel in previous:
        if (rel.plan_id, rel.round, rel.party_id) != (plan_id, round_, party_id):
            raise ProtocolError(
                "an earlier release passed in is not this partner's for this plan and round",
                where,
                "pass only this partner's earlier releases of the same round",
            )
    clash = (set(survivors) & keys_before) | (set(dropped) & seeds_before)
    if clash:
        raise ProtocolError(
            f"refused: together with an earlier release this round, the request would reveal both "
            f"shares of partners {sorted(clash)}",
            where,
            fix,
        )


def _common_setup(shares_for_me: Mapping[str, SharesBundle], plan_id: str, where: str) -> tuple[int, tuple[str, ...]]:
    """(threshold, key-setup roster), which every shares bundle must agree on."""
    setups = {(b.threshold, b.parties) for b in shares_for_me.values()}
    if len(setups) != 1:
        raise ProtocolError(
            "shares bundles disagree on the threshold or the key-setup roster",
            where,
            "pass the shares bundles of one key setup",
        )
    for sender, b in shares_for_me.items():
        if b.sender != sender or b.plan_id != plan_id:
            raise ProtocolError(
                f"shares bundle filed under {sender} is {b.sender}'s of plan {b.plan_id}",
                where,
                "pass each partner's own shares bundle of this plan",
            )
    return setups.pop()


def _open_share(
    plan_id: str,
    round_: int,
    party_id: str,
    sender: str,
    kind: str,
    secret: SecretBundle,
    public_bundles: Mapping[str, PublicBundle],
    shares: SharesBundle,
    where: str,
) -> tuple[int, bytes]:
    """Decrypt the share of `kind` that `sender` sealed to this partner for this round; (index, 32-byte share)."""
    w = f"{where}: share of kind {kind} from {sender}"
    sealed = shares.rounds.get(round_, {}).get(party_id, {}).get(kind)
    if sealed is None:
        raise ProtocolError("no such share in the sender's shares bundle", w, "pass the shares bundle of that partner")
    key = share_encryption_key(
        secret.round(round_, w).share_sk,
        public_bundles[sender].round(round_, w).share_pk,
        plan_id,
        round_,
        sender,
        party_id,
    )
    plain = open_sealed(key, sealed.nonce, sealed.ciphertext, share_context(plan_id, round_, sender, party_id, kind), w)
    index = int.from_bytes(plain[:2], "big")
    if len(plain) != 2 + KEY_BYTES or index != shares.parties.index(party_id) + 1:
        raise ProtocolError("share has the wrong size or index", w, "re-run key setup")
    return index, plain[2:]


def release_shares(
    plan_id: str,
    round: int,
    party_id: str,
    secret_bundle: SecretBundle,
    public_bundles: Mapping[str, PublicBundle],
    shares_for_me: Mapping[str, SharesBundle],
    survivors: Sequence[str],
    dropped: Sequence[str],
    previous: Sequence[ReleasedShares] = (),
) -> ReleasedShares:
    """Open this partner's shares of the survivors' self-mask seeds and of the dropped partners' mask keys.

    `previous`: this partner's earlier releases for the same plan and round, if the plan could ask twice; the union
    must not reveal both kinds for any partner. Raises ProtocolError on any refusal or failed authentication.
    """
    where = f"release of shares by {party_id}, round {round}"
    survivors, dropped = list(survivors), list(dropped)
    _check_request(party_id, survivors, dropped, previous, plan_id, round, where)
    needed = set(survivors) | set(dropped)
    missing = sorted(needed - set(shares_for_me)) + sorted(needed - set(public_bundles))
    if missing:
        raise ProtocolError(
            f"no shares or public bundle for partners {sorted(set(missing))}",
            where,
            "pass the key-setup outputs of every partner named in the request",
        )
    threshold, parties = _common_setup({p: shares_for_me[p] for p in needed}, plan_id, where)
    if party_id not in parties or not needed <= set(parties):
        raise ProtocolError("the request names partners outside the key-setup roster", where, "re-run key setup")
    check_threshold(threshold, len(parties), where)
    if len(survivors) < threshold:
        raise ProtocolError(
            f"refused: {len(survivors)} survivors, fewer than the threshold {threshold}; the round "
            "must stop and nothing may be unmasked",
            where,
            "resume the round when enough partners are back",
        )
    check_public_bundles(plan_id, {p: public_bundles[p] for p in needed | {party_id}}, where)
    check_secret_bundle(plan_id, party_id, secret_bundle, public_bundles[party_id], where, round)
    seed_shares = {
        q: _open_share(plan_id, round, party_id, q, "b", secret_bundle, public_bundles, shares_for_me[q], where)
        for q in survivors
    }
    key_shares = {
        p: _open_share(plan_id, round, party_id, p, "s", secret_bundle, public_bundles, shares_for_me[p], where)
        for p in dropped
    }
    return ReleasedShares(
        plan_id, round, party_id, threshold, tuple(survivors), tuple(dropped), seed_shares, key_shares
    )
