"""One round of secure aggregation: a partner masks its update; the aggregator sums, removes the masks and decodes.

Partner p sends y_p = enc(w_p * clip(u_p)) ++ enc(w_p) + PRG(b_p) + sum_{q>p} PRG(s_pq) - sum_{q<p} PRG(s_pq) in the
ring Z/2^k (Bonawitz et al., CCS 2017). Over the survivors S the pairwise masks among S cancel; the aggregator, given
t shares of each survivor's seed b and of each dropped partner's mask key, removes the self masks and the masks
between survivors and dropped partners, and decodes the sum of weighted updates and the total weight.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from fedchem.algo.config import SecAggConfig
from fedchem.algo.secagg.bundles import MaskedUpdate, PublicBundle, ReleasedShares, SecretBundle
from fedchem.algo.secagg.encoding import (
    compiled_encoding,
    decode_chunk,
    encode_add_chunk,
    ring_dtype,
    same_memory,
    scales,
    signed_dtype,
)
from fedchem.algo.secagg.keys import pairwise_mask_key, public_key_of, seed_commitment, self_mask_key
from fedchem.algo.secagg.keysetup import check_public_bundles, check_secret_bundle
from fedchem.algo.secagg.masking import ChunkWorkspace, KeystreamMask, chunks, over_ranges
from fedchem.algo.secagg.shamir import combine_secret
from fedchem.opener.errors import ProtocolError


def _check_roster(
    roster: Sequence[str], public_bundles: Mapping[str, PublicBundle], plan_id: str, where: str
) -> list[str]:
    """The roster as a list: at least 2 distinct partners, each with a public bundle of this plan."""
    roster = list(roster)
    if len(roster) < 2 or len(set(roster)) != len(roster):
        raise ProtocolError("the round roster must list at least 2 distinct partners", where, "fix the plan's roster")
    missing = sorted(set(roster) - set(public_bundles))
    if missing:
        raise ProtocolError(
            f"no public bundle for partners {missing}", where, "pass every roster partner's public bundle"
        )
    check_public_bundles(plan_id, {p: public_bundles[p] for p in roster}, where)
    return roster


def _check_weight(weight: float, max_weight: float, where: str) -> float:
    """weight / max_weight, which must lie in (0, 1]."""
    if not (isinstance(weight, (int, float, np.floating, np.integer)) and 0 < float(weight) <= max_weight):
        raise ProtocolError(
            f"weight {weight!r} is not in (0, max_weight={max_weight}]",
            where,
            "pass a positive weight and set secagg.max_weight to its largest possible value",
        )
    return float(weight) / max_weight


def mask_update(
    plan_id: str,
    round: int,
    party_id: str,
    roster: Sequence[str],
    secret_bundle: SecretBundle,
    public_bundles: Mapping[str, PublicBundle],
    update: np.ndarray,
    weight: float,
    config: SecAggConfig,
    out: np.ndarray | None = None,
) -> MaskedUpdate:
    """Encode [weight * clip(update)..., weight] in Z/2^k and add the pairwise and self masks of this round.

    `update`: 1-D float32/float64; `weight` in (0, config.max_weight]. The result's n_clipped counts the clipped
    coordinates (for the partner's own log; it is not saved with the masked vector). `out`, if given, receives the
    d + 1 masked words (a fresh vector otherwise). It may be the very memory of a float64 `update` on the 64-bit
    ring, one word longer (`in_place_buffer`): the update is then masked in place, which spares a train task a
    second trunk-sized array, whose first write is slow on these machines (README, secure aggregation).
    """
    where = f"masking of {party_id}, round {round}"
    roster = _check_roster(roster, public_bundles, plan_id, where)
    if party_id not in roster:
        raise ProtocolError(f"partner {party_id} is not in the round's roster", where, "fix the plan's roster")
    check_secret_bundle(plan_id, party_id, secret_bundle, public_bundles[party_id], where, round)
    update = np.asarray(update)
    if update.ndim != 1 or update.dtype not in (np.float32, np.float64) or update.shape[0] == 0:
        raise ProtocolError(
            f"update must be a non-empty 1-D float32/float64 vector, got {update.dtype} {update.shape}",
            where,
            "flatten the trunk update into one vector",
        )
    w = _check_weight(weight, config.max_weight, where)
    keys = secret_bundle.round(round, where)
    cipher = config.mask_cipher
    masks = [KeystreamMask(self_mask_key(keys.seed, plan_id, round, party_id), +1, cipher=cipher)]
    masks += [
        KeystreamMask(
            pairwise_mask_key(keys.mask_sk, public_bundles[q].round(round, where).mask_pk, plan_id, round, party_id, q),
            +1 if q > party_id else -1,
            cipher=cipher,
        )
        for q in roster
        if q != party_id
    ]
    value_scale, weight_scale = scales(config.clip, len(roster), config.ring_bits)
    dtype = ring_dtype(config.ring_bits)
    d = update.shape[0]
    out, in_place = _output_for(update, out, dtype, where)

    weight_word = np.array([int(np.rint(w * weight_scale))], dtype=signed_dtype(config.ring_bits)).view(dtype)
    kernel = compiled_encoding()

    def mask_range(lo: int, hi: int) -> int:
        """Encode and mask out[lo:hi] (one thread's share); returns the coordinates it clipped.

        Each chunk starts as the first mask's keystream, generated in place, and the encoding is added to it: in
        the ring that is the same word as encoding first and adding every mask after."""
        work = ChunkWorkspace(dtype)
        mine = [m.at(lo * dtype.itemsize) for m in masks]
        n_clipped = 0
        for start, stop in chunks(hi, dtype.itemsize, lo):
            acc = out[start:stop]
            end = min(stop, d)
            # in place, the chunk's floats must be read before its words are written: the self mask goes to scratch
            first = work.keystream[: stop - start] if in_place else acc
            mine[0].write(first, work.zeros)
            if start < end:
                n_clipped += encode_add_chunk(update[start:end], config.clip, w * value_scale, acc[: end - start],
                                              work.floats, work.encoded, kernel, base=first[: end - start])
            if stop == d + 1:
                np.add(first[-1:], weight_word, out=acc[-1:])
            work.apply_all(acc, mine[1:])
        return n_clipped

    n_clipped = sum(over_ranges(d + 1, dtype.itemsize, mask_range))
    return MaskedUpdate(plan_id, round, party_id, config.ring_bits, len(roster), out, n_clipped)


def in_place_buffer(d: int) -> np.ndarray:
    """A float64 vector of d + 1 values: write an update of d coordinates into its first d, and mask_update can mask
    it in place on the 64-bit ring (out=buffer.view(np.uint64)): the masked words take the same memory."""
    return np.empty(d + 1, dtype=np.float64)


def _output_for(update: np.ndarray, out: np.ndarray | None, dtype: np.dtype, where: str) -> tuple[np.ndarray, bool]:
    """(the vector the masked words go to, whether it is the update's own memory); a ProtocolError for an `out`
    of the wrong type or length, or one that overlaps the update other than exactly (in_place_buffer's layout)."""
    d = update.shape[0]
    if out is None:
        return np.empty(d + 1, dtype=dtype), False
    if out.dtype != dtype or out.shape != (d + 1,) or not out.flags.c_contiguous or not out.flags.writeable:
        raise ProtocolError(f"the output vector must be d + 1 = {d + 1} writeable contiguous {dtype} words, got "
                            f"{out.dtype} {out.shape}", where, "pass in_place_buffer(d).view(np.uint64) or none")
    if not np.may_share_memory(update, out):
        return out, False
    exact = update.flags.c_contiguous and same_memory(update, out)
    if not exact:
        raise ProtocolError("the output vector overlaps the update other than word for word", where,
                            "mask in place only a float64 update held in in_place_buffer(d), on the 64-bit ring")
    return out, True


def _check_releases(
    plan_id: str, round_: int, roster: list[str], released: Mapping[str, ReleasedShares], threshold: int, where: str
) -> tuple[list[str], list[str]]:
    """(survivors, dropped) agreed by at least `threshold` consistent releases, else a ProtocolError."""
    if len(released) < threshold:
        raise ProtocolError(
            f"only {len(released)} partners released shares, at least {threshold} are needed; the "
            "round stops and nothing is unmasked",
            where,
            "resume the round when enough partners are back",
        )
    views = set()
    for pid, rel in released.items():
        if (rel.plan_id, rel.round, rel.party_id) != (plan_id, round_, pid) or rel.threshold != threshold:
            raise ProtocolError(
                f"release filed under {pid} is not that partner's for this plan, round and threshold",
                where,
                "pass this round's releases",
            )
        views.add((frozenset(rel.survivors), frozenset(rel.dropped)))
    if len(views) != 1:
        raise ProtocolError(
            "partners released shares for different lists of survivors and dropped partners",
            where,
            "ask every survivor with the same lists",
        )
    survivors, dropped = views.pop()
    if survivors & dropped or (survivors | dropped) != set(roster):
        raise ProtocolError("survivors and dropped partners must split the round's roster", where, "fix the request")
    if not set(released) <= survivors:
        raise ProtocolError("a partner declared dropped released shares", where, "only survivors may release shares")
    if len(survivors) < threshold:
        raise ProtocolError(
            f"{len(survivors)} survivors, fewer than the threshold {threshold}; nothing is unmasked",
            where,
            "resume the round when enough partners are back",
        )
    return [p for p in roster if p in survivors], [p for p in roster if p in dropped]


def _recover(kind: str, owner: str, released: Mapping[str, ReleasedShares], threshold: int, where: str) -> bytes:
    """Rebuild one secret (kind b: self-mask seed; s: mask key) of `owner` from the released shares."""
    shares = [(rel.seed_shares if kind == "b" else rel.key_shares).get(owner) for rel in released.values()]
    return combine_secret([s for s in shares if s is not None], threshold, f"{where}: {kind} secret of {owner}")


def unmask_sum(
    plan_id: str,
    round: int,
    roster: Sequence[str],
    public_bundles: Mapping[str, PublicBundle],
    masked: Mapping[str, MaskedUpdate],
    released: Mapping[str, ReleasedShares],
    threshold: int,
    config: SecAggConfig,
) -> tuple[np.ndarray, float]:
    """Sum the survivors' masked updates, remove all masks, decode: (sum of weight * clip(update), total weight).

    Survivors and dropped partners are those the releases name; a masked update of a dropped partner (a late one)
    is ignored. Fewer than `threshold` releases, inconsistent releases, or a reconstruction that does not match the
    published keys is a ProtocolError, raised before anything is unmasked. The weighted mean is sum / total weight.
    """
    where = f"unmasking, round {round}"
    roster = _check_roster(roster, public_bundles, plan_id, where)
    survivors, dropped = _check_releases(plan_id, round, roster, released, threshold, where)
    dtype = ring_dtype(config.ring_bits)
    for q in survivors:
        m = masked.get(q)
        if m is None:
            raise ProtocolError(f"no masked update from survivor {q}", where, "pass every survivor's masked update")
        if (
            (m.plan_id, m.round, m.party_id, m.ring_bits, m.n_parties)
            != (plan_id, round, q, config.ring_bits, len(roster))
            or m.vector.dtype != dtype
            or m.vector.shape != masked[survivors[0]].vector.shape
        ):
            raise ProtocolError(
                f"masked update of {q} does not belong to this plan, round, roster or ring",
                where,
                "pass this round's masked updates",
            )
    unknown = sorted(set(masked) - set(roster))
    if unknown:
        raise ProtocolError(f"masked updates from partners outside the roster: {unknown}", where, "fix the roster")
    masks = []
    for q in survivors:
        seed = _recover("b", q, released, threshold, where)
        if seed_commitment(seed, plan_id, round, q) != public_bundles[q].round(round, where).seed_commitment:
            raise ProtocolError(
                f"rebuilt self-mask seed of {q} does not match its commitment: a released share is wrong",
                where,
                "re-run the release step",
            )
        masks.append(KeystreamMask(self_mask_key(seed, plan_id, round, q), -1, cipher=config.mask_cipher))
    for p in dropped:
        sk = _recover("s", p, released, threshold, where)
        if public_key_of(sk) != public_bundles[p].round(round, where).mask_pk:
            raise ProtocolError(
                f"rebuilt mask key of {p} does not match its public key: a released share is wrong",
                where,
                "re-run the release step",
            )
        for q in survivors:  # q added +PRG if p > q, else -PRG: take it back
            key = pairwise_mask_key(sk, public_bundles[q].round(round, where).mask_pk, plan_id, round, p, q)
            masks.append(KeystreamMask(key, -1 if p > q else +1, cipher=config.mask_cipher))
    value_scale, weight_scale = scales(config.clip, len(roster), config.ring_bits)
    vectors = [masked[q].vector for q in survivors]
    d = vectors[0].shape[0] - 1
    total = np.empty(d, dtype=np.float64)

    def unmask_range(lo: int, hi: int) -> float | None:
        """Sum, unmask and decode words [lo, hi) (one thread's share); the total weight if the range holds it."""
        work = ChunkWorkspace(dtype)
        mine = [m.at(lo * dtype.itemsize) for m in masks]
        acc_buf = np.empty(work.step, dtype=dtype)
        total_weight = None
        for start, stop in chunks(hi, dtype.itemsize, lo):
            acc = acc_buf[: stop - start]
            np.copyto(acc, vectors[0][start:stop])
            for v in vectors[1:]:
                np.add(acc, v[start:stop], out=acc)
            work.apply_all(acc, mine)
            end = min(stop, d)
            if start < end:
                decode_chunk(acc[: end - start], config.max_weight / value_scale, total[start:end])
            if stop == d + 1:
                weight_word = np.empty(1, dtype=np.float64)
                decode_chunk(acc[-1:], config.max_weight / weight_scale, weight_word)
                total_weight = float(weight_word[0])
        return total_weight

    weights = [w for w in over_ranges(d + 1, dtype.itemsize, unmask_range) if w is not None]
    return total, weights[0]
