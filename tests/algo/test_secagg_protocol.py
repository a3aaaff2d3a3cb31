"""Secure aggregation end to end with real primitives: exact sums, dropouts at each stage, refusals, hiding."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

import fedchem.algo.secagg as sa
from fedchem.algo.config import SecAggConfig
from fedchem.algo.secagg import encoding, keys, masking, shamir
from fedchem.opener.errors import ProtocolError

PLAN = "plan-7f3a"


@dataclasses.dataclass
class World:
    """Key setup of one plan for partners `ids`, done through the public API."""

    plan: str
    ids: list[str]
    threshold: int
    public: dict
    secret: dict
    shares: dict

    @classmethod
    def make(cls, n: int, rounds=(0, 1), threshold: int | None = None, plan: str = PLAN) -> World:
        ids = [f"MyOrg{i}MSP" for i in range(1, n + 1)]
        pairs = {p: sa.keygen(plan, p, list(rounds)) for p in ids}
        public = {p: k[0] for p, k in pairs.items()}
        secret = {p: k[1] for p, k in pairs.items()}
        t = threshold or sa.default_threshold(n)
        shares = {p: sa.deal_shares(plan, p, secret[p], public, t) for p in ids}
        return cls(plan, ids, t, public, secret, shares)

    def mask(self, rnd, party, update, weight, config, roster=None):
        return sa.mask_update(
            self.plan, rnd, party, roster or self.ids, self.secret[party], self.public, update, weight, config
        )

    def release(self, rnd, party, survivors, dropped, **kw):
        return sa.release_shares(
            self.plan, rnd, party, self.secret[party], self.public, self.shares, survivors, dropped, **kw
        )

    def unmask(self, rnd, masked, released, config, roster=None):
        return sa.unmask_sum(self.plan, rnd, roster or self.ids, self.public, masked, released, self.threshold, config)


def plain_sum(updates, weights, parties, clip):
    return sum(weights[p] * np.clip(updates[p].astype(np.float64), -clip, clip) for p in parties)


def tolerance(config, n_roster, n_summed):
    """Half a quantisation step per summed partner, plus float64 rounding of the plain reference."""
    s = encoding.fixed_point_scale(config.clip, n_roster, config.ring_bits)
    return n_summed * 0.5 * config.max_weight / s + 1e-12 * n_summed * config.clip * config.max_weight


def run_round(world, config, d, rnd=1, drop_before=(), drop_after=(), seed=0, dtype=np.float32, mask_config=None):
    """One round: every partner not in drop_before masks (with mask_config[p] instead of config where given);
    drop_after partners' updates arrive late (ignored)."""
    rng = np.random.default_rng(seed)  # test data only, never a mask
    updates = {p: rng.normal(0, config.clip, d).astype(dtype) for p in world.ids}
    weights = {p: float(rng.uniform(0.05, 1.0)) * config.max_weight for p in world.ids}
    mask_config = mask_config or {}
    masked = {p: world.mask(rnd, p, updates[p], weights[p], mask_config.get(p, config)) for p in world.ids
              if p not in drop_before}
    survivors = [p for p in world.ids if p not in drop_before and p not in drop_after]
    dropped = [p for p in world.ids if p not in survivors]
    released = {p: world.release(rnd, p, survivors, dropped) for p in survivors}
    total, total_w = world.unmask(rnd, masked, released, config)
    return (
        total,
        total_w,
        plain_sum(updates, weights, survivors, config.clip),
        sum(weights[p] for p in survivors),
        masked,
    )


@pytest.mark.parametrize("ring_bits", [32, 64])
@pytest.mark.parametrize("n", range(2, 11))
def test_decoded_sum_equals_plain_weighted_sum(n, ring_bits):
    config = SecAggConfig(ring_bits=ring_bits, clip=0.5, max_weight=250.0)
    world = World.make(n)
    total, total_w, plain, plain_w, _ = run_round(world, config, d=20_011, seed=n)
    assert total.dtype == np.float64 and total.shape == plain.shape
    err = np.abs(total - plain).max()
    assert err <= tolerance(config, n, n)
    assert total_w == pytest.approx(
        plain_w, abs=tolerance(SecAggConfig(clip=1.0, ring_bits=ring_bits, max_weight=250.0), n, n)
    )
    if ring_bits == 32:
        assert err > 0  # the comparison is not vacuous: 32-bit quantisation is visible


@pytest.mark.parametrize("cipher", ["chacha20"])  # the default, aes-128-ctr, runs in every other test here
def test_decoded_sum_with_the_other_mask_cipher(cipher):
    """The agreement may choose ChaCha20 masks (hardware without AES instructions): the sum decodes the same way,
    with a partner dropping out, and a partner masking with the other cipher breaks it (the choice is real)."""
    config = SecAggConfig(ring_bits=64, clip=0.5, max_weight=250.0, mask_cipher=cipher)
    world = World.make(5)
    total, _, plain, _, _ = run_round(world, config, d=20_011, seed=3, drop_after=world.ids[:1])
    assert np.abs(total - plain).max() <= tolerance(config, 5, 4)
    mixed = run_round(world, config, d=20_011, seed=3, mask_config={world.ids[1]: SecAggConfig(
        ring_bits=64, clip=0.5, max_weight=250.0)})
    assert np.abs(mixed[0] - mixed[2]).max() > 1.0


def test_ten_million_coordinates_three_partners():
    config = SecAggConfig(ring_bits=64, clip=1.0, max_weight=1.0)
    world = World.make(3)
    total, total_w, plain, plain_w, masked = run_round(world, config, d=10_000_000, seed=1)
    assert np.abs(total - plain).max() <= tolerance(config, 3, 3)
    assert total_w == pytest.approx(plain_w, rel=1e-12)
    assert all(m.n_clipped > 0 for m in masked.values())  # normal(0, clip): about a third of coordinates clipped


@pytest.mark.slow
@pytest.mark.parametrize("n", range(2, 11))
def test_ten_million_coordinates_all_sizes(n):
    config = SecAggConfig(ring_bits=64, clip=1.0, max_weight=10.0)
    world = World.make(n)
    late = world.ids[:1] if n >= 3 else []  # with 2 partners (t = 2) nobody may drop
    total, total_w, plain, plain_w, _ = run_round(world, config, d=10_000_000, seed=n, drop_after=late)
    assert np.abs(total - plain).max() <= tolerance(config, n, n - len(late))
    assert total_w == pytest.approx(plain_w, rel=1e-12)


@pytest.mark.parametrize("stage", ["before_masking", "after_masking"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_dropout_of_up_to_n_minus_t_partners_recovers(stage, k):
    world = World.make(7)  # t = 4, so up to 3 may drop
    assert world.threshold == 4
    config = SecAggConfig(ring_bits=32, clip=1.0, max_weight=3.0)
    gone = world.ids[1 : 1 + k] if stage == "before_masking" else world.ids[-k:]
    kw = {"drop_before": gone} if stage == "before_masking" else {"drop_after": gone}
    total, total_w, plain, plain_w, masked = run_round(world, config, d=5_003, seed=k, **kw)
    assert np.abs(total - plain).max() <= tolerance(config, 7, 7 - k)
    assert total_w == pytest.approx(plain_w, abs=1e-6)
    if stage == "after_masking":
        assert set(gone) <= set(masked)  # the late updates were there, and were left out of the sum


def test_partner_left_out_of_the_roster_after_key_setup():
    """A partner gone before the round starts is simply not in the round's roster."""
    world = World.make(5)
    config = SecAggConfig()
    roster = world.ids[:4]
    rng = np.random.default_rng(3)
    updates = {p: rng.normal(0, 0.3, 1000) for p in roster}
    masked = {p: world.mask(0, p, updates[p], 1.0, config, roster=roster) for p in roster}
    released = {p: world.release(0, p, roster, []) for p in roster[:3]}  # one survivor does not release: fine
    total, total_w = world.unmask(0, masked, released, config, roster=roster)
    assert np.abs(total - plain_sum(updates, dict.fromkeys(roster, 1.0), roster, 1.0)).max() < 1e-12
    assert total_w == pytest.approx(4.0)


def test_fewer_than_t_survivors_abort():
    world = World.make(5)  # t = 3
    config = SecAggConfig()
    survivors, dropped = world.ids[:2], world.ids[2:]
    with pytest.raises(ProtocolError, match="fewer than the threshold"):
        world.release(1, survivors[0], survivors, dropped)
    # an aggregator holding fewer than t releases stops before unmasking anything
    masked = {p: world.mask(1, p, np.ones(10), 1.0, config) for p in world.ids}
    released = {p: world.release(1, p, world.ids[:4], world.ids[4:]) for p in world.ids[:2]}
    with pytest.raises(ProtocolError, match="only 2 partners released shares, at least 3") as err:
        world.unmask(1, masked, released, config)
    assert "nothing is unmasked" in err.value.message()


def test_request_for_both_shares_of_one_partner_is_refused():
    world = World.make(5)
    ids = world.ids
    with pytest.raises(ProtocolError, match="both as survivors and as dropped"):
        world.release(1, ids[0], ids[:4], ids[3:])
    first = world.release(1, ids[0], ids[:4], ids[4:])
    with pytest.raises(ProtocolError, match="earlier release"):  # asking again with the roles of ids[3], ids[4] swapped
        world.release(1, ids[0], ids[:3] + ids[4:], ids[3:4], previous=[first])
    # the same request again is fine, and so is another round (keys are per round)
    world.release(1, ids[0], ids[:4], ids[4:], previous=[first])
    world.release(0, ids[0], ids[:3] + ids[4:], ids[3:4])


def test_share_kinds_cannot_be_swapped_tampered_replayed_or_redirected():
    world = World.make(3, rounds=(0, 1))
    a, b, c = world.ids
    good = world.shares[b]

    def with_shares(rounds):
        return {**world.shares, b: dataclasses.replace(good, rounds=rounds)}

    def attempt(shares):
        return sa.release_shares(PLAN, 1, a, world.secret[a], world.public, shares, [a, b], [c])

    r1 = good.rounds[1]
    swapped = {**good.rounds, 1: {**r1, a: {"b": r1[a]["s"], "s": r1[a]["b"]}}}  # mask-key share passed off as seed
    ct = r1[a]["b"].ciphertext
    tampered = {
        **good.rounds,
        1: {**r1, a: {**r1[a], "b": dataclasses.replace(r1[a]["b"], ciphertext=bytes([ct[0] ^ 1]) + ct[1:])}},
    }
    replayed = {**good.rounds, 1: {**r1, a: good.rounds[0][a]}}  # round 0's shares offered for round 1
    redirected = {**good.rounds, 1: {**r1, a: r1[c]}}  # c's shares offered to a
    for rounds in (swapped, tampered, replayed, redirected):
        with pytest.raises(ProtocolError, match="failed authentication"):
            attempt(with_shares(rounds))
    assert attempt(world.shares).seed_shares[b][0] == 1  # a holds share index 1


def test_wrong_released_share_is_detected_not_silently_used():
    world = World.make(4)  # t = 3
    config = SecAggConfig()
    masked = {p: world.mask(1, p, np.full(100, 0.25), 1.0, config) for p in world.ids}
    released = {p: world.release(1, p, world.ids, []) for p in world.ids}
    liar = world.ids[0]
    i, share = released[liar].seed_shares[world.ids[1]]
    bad = {**released[liar].seed_shares, world.ids[1]: (i, bytes(32))}
    released[liar] = dataclasses.replace(released[liar], seed_shares=bad)
    with pytest.raises(ProtocolError, match="does not match its commitment"):
        world.unmask(1, masked, released, config)


def _byte_uniformity_pvalue(words: np.ndarray) -> float:
    counts = np.bincount(words.view(np.uint8), minlength=256)
    return stats.chisquare(counts).pvalue


@pytest.mark.parametrize("ring_bits", [32, 64])
def test_single_masked_update_looks_uniform_and_shares_nothing_with_the_encoding(ring_bits):
    world = World.make(3)
    config = SecAggConfig(ring_bits=ring_bits, clip=1.0)
    update = np.linspace(-0.5, 0.5, 200_000)
    m = world.mask(1, world.ids[0], update, 0.5, config)
    s, _ = sa.scales(config.clip, 3, ring_bits)
    plain = np.empty(update.shape[0], dtype=encoding.ring_dtype(ring_bits))
    encoding.encode_chunk(update, 1.0, 0.5 * s, plain, np.empty(update.shape[0]))
    assert _byte_uniformity_pvalue(m.vector[:-1]) > 1e-4
    assert _byte_uniformity_pvalue(plain) < 1e-12  # the same test does reject the unmasked encoding
    assert np.count_nonzero(m.vector[:-1] == plain) <= 2  # ~n / 2^k equal words expected by chance
    assert stats.kstest(m.vector[:-1].astype(np.float64) / 2.0**ring_bits, "uniform").pvalue > 1e-4


@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "compiled"])
@pytest.mark.parametrize("update_dtype", [np.float64, np.float32])
@pytest.mark.parametrize("ring_bits", [32, 64])
def test_two_thread_masking_is_bit_identical_to_one_pass(ring_bits, update_dtype, compiled, monkeypatch):
    """mask_update and unmask_sum split the vector over two threads: the masked words must equal the single-pass
    definition y = enc(w * clip(u)) ++ enc(w) + self mask + sum of signed pairwise masks, and the decoded sum the
    single-pass decoding, word for word; with numpy's encoding and with the compiled one (some chunks clip, most
    do not)."""
    monkeypatch.setattr(masking, "CHUNK_BYTES", 4096)  # many chunks, so both threads get several, odd tail
    monkeypatch.setattr(encoding, "COMPILED", compiled)
    assert (encoding.compiled_encoding() is None) is not compiled
    config = SecAggConfig(ring_bits=ring_bits, clip=0.5)
    world = World.make(4)
    d = 10_007
    assert len(masking.split(d + 1, ring_bits // 8)) == 2
    rng = np.random.default_rng(3)  # test data only, never a mask
    updates = {p: rng.normal(0, 0.1, d).astype(update_dtype) for p in world.ids}
    for u in updates.values():
        u[::3000] = 0.9  # a clipped coordinate in every few chunks; the others need no clipping
    masked = {p: world.mask(1, p, updates[p], 0.5, config) for p in world.ids}
    dtype = encoding.ring_dtype(ring_bits)
    s, sw = sa.scales(config.clip, 4, ring_bits)
    me = world.ids[1]
    ref = np.empty(d + 1, dtype=dtype)
    encoding.encode_chunk(updates[me], config.clip, 0.5 * s, ref[:d], np.empty(d))
    ref[d] = int(np.rint(0.5 * sw))
    ref += masking.full_mask(keys.self_mask_key(world.secret[me].rounds[1].seed, PLAN, 1, me), d + 1, dtype)
    for q in world.ids:
        if q != me:
            key = keys.pairwise_mask_key(world.secret[me].rounds[1].mask_sk, world.public[q].rounds[1].mask_pk,
                                         PLAN, 1, me, q)
            ref = ref + masking.full_mask(key, d + 1, dtype) if q > me else ref - masking.full_mask(key, d + 1, dtype)
    np.testing.assert_array_equal(masked[me].vector, ref)
    released = {p: world.release(1, p, world.ids, []) for p in world.ids}
    total, weight = world.unmask(1, masked, released, config)
    plain = sum(m.vector for m in masked.values())
    for p in world.ids:
        plain -= masking.full_mask(keys.self_mask_key(world.secret[p].rounds[1].seed, PLAN, 1, p), d + 1, dtype)
    expected = np.empty(d)
    encoding.decode_chunk(plain[:d], config.max_weight / s, expected)
    np.testing.assert_array_equal(total, expected)
    assert weight == float(plain[d:].view(encoding.signed_dtype(ring_bits))[0]) * config.max_weight / sw


@pytest.mark.parametrize("compiled", [False, True], ids=["numpy", "compiled"])
def test_masking_in_place_gives_the_same_words(compiled, monkeypatch):
    """A float64 update held in in_place_buffer and masked into that same memory (what the train task does) gives
    the words of masking into a fresh vector, on two threads, with either encoding; the update's own memory is
    the masked vector afterwards."""
    monkeypatch.setattr(masking, "CHUNK_BYTES", 4096)  # many chunks on both threads, an odd tail
    monkeypatch.setattr(encoding, "COMPILED", compiled)
    config = SecAggConfig(clip=0.5)
    world = World.make(4)
    d = 10_007
    rng = np.random.default_rng(8)  # test data only, never a mask
    update = rng.normal(0, 0.1, d)
    update[::2500] = 0.9  # some chunks clip
    fresh = world.mask(1, world.ids[2], update, 0.5, config)
    buffer = sa.in_place_buffer(d)
    buffer[:d] = update
    words = buffer.view(np.uint64)
    got = sa.mask_update(world.plan, 1, world.ids[2], world.ids, world.secret[world.ids[2]], world.public,
                         buffer[:d], 0.5, config, out=words)
    assert np.shares_memory(got.vector, buffer)
    np.testing.assert_array_equal(got.vector, fresh.vector)
    assert got.n_clipped == fresh.n_clipped == 5


def test_masking_refuses_an_output_that_overlaps_the_update_otherwise():
    """An output vector that shares the update's memory shifted by a word, of another dtype (a float32 update, a
    32-bit ring) or of the wrong length is refused before a word is written."""
    world = World.make(3)
    d = 1000
    buffer = sa.in_place_buffer(d + 1)
    buffer[:] = 0.25
    mask = lambda update, out, config=SecAggConfig(): sa.mask_update(  # noqa: E731
        world.plan, 0, world.ids[0], world.ids, world.secret[world.ids[0]], world.public, update, 0.5, config, out=out)
    with pytest.raises(ProtocolError, match="overlaps the update"):
        mask(buffer[1 : d + 1], buffer[: d + 1].view(np.uint64))
    with pytest.raises(ProtocolError, match="overlaps the update"):
        f32 = buffer.view(np.float32)
        mask(f32[:d], buffer[: d + 1].view(np.uint64))
    with pytest.raises(ProtocolError, match="d \\+ 1 = 1001"):
        mask(buffer[:d], buffer.view(np.uint64))
    with pytest.raises(ProtocolError, match="overlaps the update"):  # 32-bit words would overtake the floats
        mask(buffer[:d], buffer.view(np.uint32)[: d + 1], SecAggConfig(ring_bits=32))
    np.testing.assert_array_equal(buffer, 0.25)  # nothing was written


def test_late_update_stays_hidden_when_its_mask_key_is_revealed():
    """Double masking: after the aggregator rebuilds a dropped partner's mask key and strips every pairwise mask from
    its late update, the self mask still hides it."""
    world = World.make(5)
    config = SecAggConfig()
    late = world.ids[2]
    update = np.linspace(-1, 1, 100_000)
    m = world.mask(1, late, update, 1.0, config)
    survivors = [p for p in world.ids if p != late]
    released = {p: world.release(1, p, survivors, [late]) for p in survivors}
    sk = shamir.combine_secret([r.key_shares[late] for r in released.values()], world.threshold, "test")
    stripped = m.vector.copy()
    for q in survivors:
        key = keys.pairwise_mask_key(sk, world.public[q].rounds[1].mask_pk, PLAN, 1, late, q)
        mask = masking.full_mask(key, stripped.shape[0], stripped.dtype)
        stripped = stripped - mask if q > late else stripped + mask
    s, _ = sa.scales(1.0, 5, 64)
    plain = np.empty(update.shape[0], dtype=np.uint64)
    encoding.encode_chunk(update, 1.0, s, plain, np.empty(update.shape[0]))
    assert _byte_uniformity_pvalue(stripped[:-1]) > 1e-4
    assert np.count_nonzero(stripped[:-1] == plain) == 0
    # and with the self mask removed too (which no honest survivor allows), it would be the plain encoding
    self_mask = masking.full_mask(
        keys.self_mask_key(world.secret[late].rounds[1].seed, PLAN, 1, late), stripped.shape[0], stripped.dtype
    )
    np.testing.assert_array_equal((stripped - self_mask)[:-1], plain)


def test_masks_differ_between_rounds_and_plans():
    config = SecAggConfig()
    update = np.zeros(50_000)
    w1 = World.make(3, rounds=(0, 1))
    w2 = World.make(3, rounds=(0, 1), plan="plan-other")
    r0 = w1.mask(0, w1.ids[0], update, 1.0, config).vector
    r1 = w1.mask(1, w1.ids[0], update, 1.0, config).vector
    other = w2.mask(0, w2.ids[0], update, 1.0, config).vector
    again = w1.mask(0, w1.ids[0], update, 1.0, config).vector
    np.testing.assert_array_equal(r0, again)  # deterministic given the keys
    for a, b in ((r0, r1), (r0, other), (r1, other)):
        assert np.count_nonzero(a == b) == 0
        assert np.unique(a - b).shape[0] > 49_000  # not a shifted copy either


def test_clipping_is_counted_and_bounded_in_the_sum():
    world = World.make(2)
    config = SecAggConfig(clip=0.1)
    update = np.array([0.05, 0.2, -0.3, 0.1, -0.1, 0.0, 5.0])
    masked = {p: world.mask(0, p, update, 1.0, config) for p in world.ids}
    assert [m.n_clipped for m in masked.values()] == [3, 3]
    released = {p: world.release(0, p, world.ids, []) for p in world.ids}
    total, _ = world.unmask(0, masked, released, config)
    np.testing.assert_allclose(total, 2 * np.clip(update, -0.1, 0.1), atol=1e-15)


def test_bad_inputs_are_protocol_errors():
    world = World.make(3)
    config = SecAggConfig(max_weight=2.0)
    a = world.ids[0]
    with pytest.raises(ProtocolError, match="weight"):
        world.mask(0, a, np.ones(4), 2.5, config)
    with pytest.raises(ProtocolError, match="weight"):
        world.mask(0, a, np.ones(4), 0.0, config)
    with pytest.raises(ProtocolError, match="1-D"):
        world.mask(0, a, np.ones((2, 2)), 1.0, config)
    with pytest.raises(ProtocolError, match="NaN"):
        world.mask(0, a, np.array([0.0, np.inf]), 1.0, config)
    with pytest.raises(ProtocolError, match="keys for round 5"):
        world.mask(5, a, np.ones(4), 1.0, config)
    with pytest.raises(ProtocolError, match="secret bundle"):
        sa.mask_update(PLAN, 0, a, world.ids, world.secret[world.ids[1]], world.public, np.ones(4), 1.0, config)
    with pytest.raises(ProtocolError, match="not a majority"):
        sa.deal_shares(PLAN, a, world.secret[a], world.public, 1)
    assert [sa.default_threshold(n) for n in (2, 3, 4, 5, 10, 30)] == [2, 2, 3, 3, 6, 16]
    assert sa.threshold_for(None, 7) == 4 and sa.threshold_for(6, 7) == 6
    with pytest.raises(ProtocolError, match="not a majority"):
        sa.threshold_for(3, 7)  # two disjoint groups of 3 could release both shares of one partner


def test_files_round_trip_and_masked_update_streams_from_disk(tmp_path):
    world = World.make(3)
    config = SecAggConfig(ring_bits=32)
    a = world.ids[0]
    sa.save_public_bundle(tmp_path / "pub.json", world.public[a])
    sa.save_secret_bundle(tmp_path / "sec.json", world.secret[a])
    sa.save_shares_bundle(tmp_path / "shares.json", world.shares[a])
    assert (tmp_path / "sec.json").stat().st_mode & 0o077 == 0
    assert sa.load_public_bundle(tmp_path / "pub.json") == world.public[a]
    assert sa.load_secret_bundle(tmp_path / "sec.json") == world.secret[a]
    assert sa.load_shares_bundle(tmp_path / "shares.json") == world.shares[a]
    secret_repr = repr(world.secret[a]) + repr(list(world.secret[a].rounds.values()))
    assert all(
        keys.b64(v) not in secret_repr and repr(v) not in secret_repr
        for k in world.secret[a].rounds.values()
        for v in (k.seed, k.mask_sk, k.share_sk)
    )

    rng = np.random.default_rng(5)
    updates = {p: rng.normal(0, 0.2, 30_001) for p in world.ids}
    loaded = {}
    for p in world.ids:
        sa.save_masked_update(tmp_path / f"{p}.npz", world.mask(0, p, updates[p], 1.0, config))
        loaded[p] = sa.load_masked_update(tmp_path / f"{p}.npz", mmap=True)
        assert loaded[p].n_clipped is None and isinstance(loaded[p].vector, np.memmap)
        np.testing.assert_array_equal(loaded[p].vector, sa.load_masked_update(tmp_path / f"{p}.npz").vector)
    released = {}
    for p in world.ids:
        sa.save_released_shares(tmp_path / f"rel-{p}.json", world.release(0, p, world.ids, []))
        released[p] = sa.load_released_shares(tmp_path / f"rel-{p}.json")
    total, total_w = world.unmask(0, loaded, released, config)
    assert np.abs(total - plain_sum(updates, dict.fromkeys(world.ids, 1.0), world.ids, 1.0)).max() <= tolerance(
        config, 3, 3
    )
    assert total_w == pytest.approx(3.0)
    assert not list(tmp_path.glob(".*.tmp"))  # no temp files left behind

    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ProtocolError, match="not a masked-update file"):
        sa.load_masked_update(tmp_path / "junk.npz")
    (tmp_path / "junk.json").write_text('{"format": "fedchem-secagg-public/1", "plan_id": 3}')
    with pytest.raises(ProtocolError, match="malformed field"):
        sa.load_public_bundle(tmp_path / "junk.json")


def test_secagg_never_imports_torch():
    code = (
        "import sys, numpy as np; import fedchem.algo.secagg as sa; from fedchem.algo.config import SecAggConfig;"
        "pub, sec = sa.keygen('p', 'A', [0]); pub2, sec2 = sa.keygen('p', 'B', [0]);"
        "sa.mask_update('p', 0, 'A', ['A', 'B'], sec, {'A': pub, 'B': pub2}, np.ones(3), 1.0, SecAggConfig());"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
