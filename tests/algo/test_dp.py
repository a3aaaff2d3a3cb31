"""Distributed differential privacy: the CSPRNG noise, L2 clipping, the noisy secure sum's variance with and without
dropouts, the ring bound, and the accountant against the library and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from fedchem.algo.config import DPConfig, SecAggConfig
from fedchem.algo.dp import TAIL_SIGMAS, accounting, check_ring_bound, clip_l2, noise_share_std, privatize
from fedchem.algo.dp.mechanism import ring_clip_needed
from fedchem.algo.dp.noise import standard_normal
from fedchem.opener.errors import ProtocolError

from securesum import secure_sum


def _dp(clip_norm=1.0, z=0.5, delta=1e-6):
    return DPConfig(clip_norm=clip_norm, noise_multiplier=z, delta=delta)


def _ring(dp, t, ring_bits=64):
    return SecAggConfig(clip=ring_clip_needed(dp, t), ring_bits=ring_bits)


# -- the generator ------------------------------------------------------------------------------------------------
def test_csprng_normals_are_standard_normal_and_never_repeat():
    z = standard_normal(400_001, key=bytes(range(32)))  # a fixed key: deterministic, so the test cannot flake
    assert z.shape == (400_001,) and np.isfinite(z).all()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert abs(z.mean()) < 5 / math.sqrt(z.size) and abs(z.var() - 1) < 5 * math.sqrt(2 / z.size)
    assert np.array_equal(z, standard_normal(400_001, key=bytes(range(32))))
    a, b = standard_normal(1000), standard_normal(1000)  # fresh secret keys: no seed to replay
    assert not np.array_equal(a, b)
    assert abs(np.corrcoef(z[:200_000], z[200_000:400_000])[0, 1]) < 5 / math.sqrt(200_000)


def test_noise_is_not_numpys():
    import inspect

    from fedchem.algo.dp import noise

    src = inspect.getsource(noise)
    assert "default_rng" not in src and "np.random" not in src and "ChaCha20" in src and "secrets" in src


# -- clipping -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e-3, 0.999, 1.0, 1.001, 50.0])
def test_clip_l2_holds_and_keeps_direction(scale):
    rng = np.random.default_rng(1)  # test data only
    u = rng.normal(size=5000)
    u *= scale / np.linalg.norm(u)
    c, before = clip_l2(u, 1.0)
    assert before == pytest.approx(scale)
    assert np.linalg.norm(c) <= 1.0 + 1e-12
    if before <= 1.0:
        assert np.array_equal(c, u)  # never scaled up
    else:
        assert np.allclose(c / np.linalg.norm(c), u / np.linalg.norm(u))


def test_privatize_clips_before_noising_and_logs_privately():
    dp = _dp(clip_norm=2.0, z=0.3)
    u = np.full(10_000, 1.0)  # norm 100
    zero = np.zeros(u.size)
    out, log = privatize(u, dp, 3, _ring(dp, 3), noise=zero)
    assert np.linalg.norm(out) == pytest.approx(2.0) and log.clipped and log.norm_before == pytest.approx(100.0)
    assert log.share_std == pytest.approx(0.3 * 4.0 / math.sqrt(3))
    with pytest.raises(ProtocolError, match="NaN"):
        privatize(np.array([np.nan, 1.0]), dp, 3, _ring(dp, 3))


# -- the noisy secure sum -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n,t,survivors", [(3, 2, 3), (3, 2, 2), (5, 3, 4), (5, 3, 3)])
def test_noisy_secure_sum_has_the_agreed_variance(n, t, survivors):
    """Each partner adds sigma^2/t; the decoded secure sum of s survivors carries s*sigma^2/t >= sigma^2 (fixed keys:
    one fixed set of draws per case, so the chi-square test is deterministic)."""
    dp = _dp(clip_norm=1.0, z=0.5)
    ring = _ring(dp, t)
    d = 40_000
    rng = np.random.default_rng(n * 10 + survivors)  # test data only
    ids = [f"p{i}" for i in range(n)]
    updates = {p: rng.normal(size=d) for p in ids}
    noisy = {}
    for i, p in enumerate(ids):
        key = bytes([i, n, t]) * 8 + bytes(8)  # one fixed key per partner and case
        noisy[p], log = privatize(updates[p], dp, t, ring, noise=standard_normal(d, key=key))
        assert log.clipped
    alive = ids[:survivors]
    total, weight = secure_sum(noisy, {p: ring.max_weight for p in ids}, ring, t, survivors=alive)
    assert weight == pytest.approx(survivors * ring.max_weight)
    signal = sum(clip_l2(updates[p], dp.clip_norm)[0] for p in alive)
    noise = total - signal
    agreed = survivors * dp.sigma ** 2 / t
    assert agreed >= dp.sigma ** 2 - 1e-12  # the guarantee survives the dropouts
    chi2 = float(np.sum(noise ** 2) / agreed)  # ~ chi-square with d degrees of freedom
    assert stats.chi2.sf(chi2, d) > 1e-4 and stats.chi2.cdf(chi2, d) > 1e-4, chi2 / d
    assert abs(noise.mean()) < 5 * math.sqrt(agreed / d)


def test_noise_with_fresh_secret_keys_has_the_agreed_variance():
    dp = _dp(clip_norm=0.5, z=1.0)
    ring = _ring(dp, 2)
    d = 100_000
    outs = [privatize(np.zeros(d), dp, 2, ring)[0] for _ in range(2)]
    var = float(np.var(outs[0] + outs[1]))
    assert var == pytest.approx(dp.sigma ** 2, rel=6 * math.sqrt(2 / d))


# -- the ring bound -------------------------------------------------------------------------------------------------
def test_ring_bound_is_checked_at_its_edge():
    dp = _dp(clip_norm=1.0, z=0.5)
    need = ring_clip_needed(dp, 2)
    assert need == pytest.approx(1.0 + TAIL_SIGMAS * 0.5 * 2.0 / math.sqrt(2))
    check_ring_bound(dp, SecAggConfig(clip=need), 2)
    with pytest.raises(ValueError, match="at least"):
        check_ring_bound(dp, SecAggConfig(clip=need * (1 - 1e-9)), 2)
    with pytest.raises(ProtocolError, match="too small"):
        privatize(np.zeros(4), dp, 2, SecAggConfig(clip=need * 0.5))


@pytest.mark.parametrize("ring_bits", [32, 64])
def test_noised_values_at_the_ring_bound_sum_without_wrapping(ring_bits):
    """Every coordinate of every partner at exactly +bound or -bound: the ring sum decodes to the plain sum, and a
    coordinate past the bound is refused (never clipped)."""
    dp = _dp(clip_norm=1.0, z=0.5)
    n, t = 3, 2
    ring = _ring(dp, t, ring_bits)
    std = noise_share_std(dp, t)
    d = 64
    update = np.zeros(d)
    update[0] = 1.0  # norm exactly clip_norm: not clipped
    z = np.full(d, (ring.clip - 0.0) / std)
    z[0] = (ring.clip - 1.0) / std  # 1 + std*z = clip
    z[1::2] *= -1
    vec, log = privatize(update, dp, t, ring, noise=z)
    assert log.max_abs == pytest.approx(ring.clip) and np.max(np.abs(vec)) <= ring.clip
    total, weight = secure_sum({f"p{i}": vec for i in range(n)}, {f"p{i}": 1.0 for i in range(n)}, ring, t)
    step = n * ring.max_weight / (2 * __import__("fedchem.algo.secagg", fromlist=["x"]).fixed_point_scale(
        ring.clip, n, ring_bits))
    assert np.max(np.abs(total - n * vec)) <= step + 1e-9 * ring.clip
    assert np.sign(total[1]) == -1 and np.sign(total[0]) == 1  # no wrap-around flipped a sign
    z[3] *= 1 + 1e-6
    with pytest.raises(ProtocolError, match="ring bound"):
        privatize(update, dp, t, ring, noise=z)


# -- accounting -----------------------------------------------------------------------------------------------------
def _analytic_gaussian_delta(eps: float, mu: float) -> float:
    """Balle & Wang (2018): the exact delta(eps) of a Gaussian mechanism with mu = sensitivity / sigma."""
    return stats.norm.cdf(-eps / mu + mu / 2) - math.exp(eps + stats.norm.logcdf(-eps / mu - mu / 2))


def _analytic_epsilon(mu: float, delta: float) -> float:
    from scipy.optimize import brentq

    return brentq(lambda e: _analytic_gaussian_delta(e, mu) - delta, 0, 500)


def _classic_rdp_epsilon(zs, delta):
    """Mironov (2017): RDP of a Gaussian is alpha / (2 z^2); eps = min over alpha of RDP + log(1/delta)/(alpha-1)."""
    alphas = np.linspace(1.01, 2000, 400_000)
    rdp = alphas * sum(1 / (2 * z * z) for z in zs)
    return float(np.min(rdp + math.log(1 / delta) / (alphas - 1)))


@pytest.mark.parametrize("z,rounds,delta", [(1.0, 10, 1e-6), (3.0, 12, 1e-5), (0.7, 1, 1e-6)])
def test_accountant_matches_the_library_and_the_closed_forms(z, rounds, delta):
    import dp_accounting
    from dp_accounting.rdp import rdp_privacy_accountant

    ours = accounting.epsilon([z] * rounds, delta)
    lib = rdp_privacy_accountant.RdpAccountant()
    lib.compose(dp_accounting.GaussianDpEvent(z), rounds)
    assert ours == pytest.approx(lib.get_epsilon(delta), rel=1e-12)
    exact = _analytic_epsilon(math.sqrt(rounds) / z, delta)  # R Gaussians = one with mu = sqrt(R)/z
    assert exact <= ours <= _classic_rdp_epsilon([z] * rounds, delta) + 1e-6
    assert ours <= 1.6 * exact  # RDP is an upper bound, and not a loose one here


def test_known_configuration():
    """z = 1, 10 rounds, delta 1e-6: the library's RDP epsilon (19.42 would be the exact PLD; RDP gives 20.55)."""
    assert accounting.epsilon([1.0] * 10, 1e-6) == pytest.approx(20.552, abs=1e-3)
    assert _analytic_epsilon(math.sqrt(10), 1e-6) == pytest.approx(19.42, abs=0.01)


def test_partner_budget_composes_its_own_rounds_and_counts_dropouts():
    dp = _dp(z=1.0)
    rounds = [(1, ["a", "b", "c"]), (2, ["a", "b"]), (3, ["a", "c"])]
    a = accounting.partner_budget(dp, 2, "a", rounds)
    b = accounting.partner_budget(dp, 2, "b", rounds)
    # a: z*sqrt(3/2), then z, z; b: z*sqrt(3/2), z, and nothing in round 3 (not in the sum)
    assert a.epsilon == pytest.approx(accounting.epsilon([math.sqrt(1.5), 1.0, 1.0], dp.delta))
    assert b.epsilon == pytest.approx(accounting.epsilon([math.sqrt(1.5), 1.0], dp.delta))
    assert b.rounds[2].in_sum is False and b.rounds[2].epsilon_round == 0.0
    assert b.rounds[2].epsilon_total == b.rounds[1].epsilon_total
    assert [r.epsilon_total for r in a.rounds] == sorted(r.epsilon_total for r in a.rounds)
    # three survivors' noise is more than the threshold's worst case: a smaller round epsilon
    assert a.rounds[0].epsilon_round < a.rounds[1].epsilon_round
    assert accounting.planned_epsilon(dp, 2, 3) == pytest.approx(accounting.epsilon([1.0] * 3, dp.delta))
    # one colluding partner subtracts its noise: with 2 survivors of threshold 2, z drops by sqrt(2)
    col = accounting.partner_budget(dp, 2, "a", rounds, colluding=1)
    assert col.rounds[1].noise_multiplier == pytest.approx(1 / math.sqrt(2)) and col.epsilon > a.epsilon
