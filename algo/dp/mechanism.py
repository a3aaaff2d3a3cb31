"""What a partner does to its round's trunk update under differential privacy, before secure aggregation masks it.

1. Clip the whole update (every trunk parameter, one vector) to L2 norm `clip_norm`.
2. Add its share of the noise: N(0, sigma^2 / t) per coordinate, t the agreed secure-aggregation threshold. Any
   round that completes has s >= t survivors (the secure aggregation aborts below t), so the sum carries noise of
   variance s * sigma^2 / t >= sigma^2: a dropout lowers the noise towards the agreed floor, never below it. The
   price is s / t times more noise than needed when everyone survives.
3. Check the ring bound: the fixed-point encoding (secagg.encoding) cannot wrap when every coordinate lies in
   [-secagg.clip, secagg.clip]. A clipped update has every coordinate within clip_norm, and the agreement requires
   secagg.clip >= clip_norm + TAIL_SIGMAS * (share std), so a coordinate beyond it has probability < 4e-33. If it
   happens anyway the partner sends nothing (a ProtocolError: it drops out of the round) rather than clip a noisy
   coordinate, which would change the noise's distribution.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from fedchem.algo.config import DPConfig, SecAggConfig
from fedchem.algo.dp.noise import standard_normal
from fedchem.opener.errors import ProtocolError

TAIL_SIGMAS = 12.0  # P(|N(0,1)| > 12) = 3.6e-33: the ring bound's margin, in share standard deviations


def noise_share_std(dp: DPConfig, threshold: int) -> float:
    """Standard deviation of the noise one partner adds to each coordinate: sigma / sqrt(t)."""
    return dp.sigma / math.sqrt(threshold)


def ring_clip_needed(dp: DPConfig, threshold: int) -> float:
    """The smallest secagg.clip that holds a clipped, noised coordinate with TAIL_SIGMAS of margin."""
    return dp.clip_norm + TAIL_SIGMAS * noise_share_std(dp, threshold)


def check_ring_bound(dp: DPConfig, secagg: SecAggConfig, threshold: int) -> None:
    """ValueError if the agreed ring bound (secagg.clip) cannot hold the noised update (used by the config
    validator and by the partner on its own agreement)."""
    need = ring_clip_needed(dp, threshold)
    if secagg.clip < need:
        raise ValueError(f"federation.secure_aggregation.clip ({secagg.clip:g}) is too small for differential "
                         f"privacy with clip_norm {dp.clip_norm:g} and noise_multiplier {dp.noise_multiplier:g} at "
                         f"threshold {threshold}: set it to at least {math.ceil(need * 1000) / 1000:g} "
                         f"(clip_norm + {TAIL_SIGMAS:g} noise standard deviations)")


def clip_l2(update: np.ndarray, clip_norm: float) -> tuple[np.ndarray, float]:
    """(update scaled to L2 norm <= clip_norm, its norm before). Never scales up."""
    update = np.asarray(update, dtype=np.float64)
    norm = float(np.linalg.norm(update))
    if not math.isfinite(norm):
        raise ProtocolError("the trunk update contains NaN or infinite values", "differential privacy",
                            "check the local training (learning rate, loss) before sending an update")
    if norm > clip_norm:
        return update * (clip_norm / norm), norm
    return update, norm


@dataclass
class PrivatizeLog:
    """What the partner's private round log records of the mechanism (never shared)."""

    norm_before: float
    clipped: bool
    clip_norm: float
    share_std: float
    threshold: int
    max_abs: float

    def as_dict(self) -> dict:
        return asdict(self)


def privatize(update: np.ndarray, dp: DPConfig, threshold: int, secagg: SecAggConfig,
              noise: np.ndarray | None = None) -> tuple[np.ndarray, PrivatizeLog]:
    """Clip `update` to L2 norm dp.clip_norm, add N(0, sigma^2/t) noise (CSPRNG) per coordinate, check the ring
    bound. `noise` (standard normals) is for tests only. Returns the vector to mask and the private log."""
    where = "differential privacy, partner side"
    try:
        check_ring_bound(dp, secagg, threshold)
    except ValueError as exc:
        raise ProtocolError(f"refused: {exc}", where, "fix the agreement (fedchem agree)") from None
    clipped, norm = clip_l2(update, dp.clip_norm)
    std = noise_share_std(dp, threshold)
    z = standard_normal(clipped.shape[0]) if noise is None else np.asarray(noise, dtype=np.float64)
    noisy = clipped + std * z
    max_abs = float(np.max(np.abs(noisy))) if noisy.size else 0.0
    if not max_abs <= secagg.clip:
        raise ProtocolError(f"a noised coordinate ({max_abs:.4g}) exceeds the ring bound {secagg.clip:g}; this "
                            "partner sends nothing this round rather than clip noise", where,
                            "nothing to do (probability < 4e-33 a coordinate); the round goes on with the others")
    return noisy, PrivatizeLog(norm, norm > dp.clip_norm, dp.clip_norm, std, threshold, max_abs)
