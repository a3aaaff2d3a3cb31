"""One round of real secure aggregation in-process (fedchem.algo.secagg's public API, real X25519/ChaCha20/Shamir):
key setup, every partner masks, survivors release, the aggregator unmasks. For DP tests and the reconstruction
probe, where Substra's task plumbing adds nothing but time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

import fedchem.algo.secagg as sa
from fedchem.algo.config import SecAggConfig


def secure_sum(vectors: Mapping[str, np.ndarray], weights: Mapping[str, float], config: SecAggConfig,
               threshold: int, survivors: Sequence[str] | None = None, plan: str = "plan-dp",
               rnd: int = 1) -> tuple[np.ndarray, float]:
    """(decoded sum of weight * vector over the survivors, total weight); every partner in `vectors` masks, only
    `survivors` (default: all) are summed (the others' masks are removed with released shares)."""
    ids = sorted(vectors)
    pairs = {p: sa.keygen(plan, p, [rnd]) for p in ids}
    public = {p: k[0] for p, k in pairs.items()}
    secret = {p: k[1] for p, k in pairs.items()}
    shares = {p: sa.deal_shares(plan, p, secret[p], public, threshold) for p in ids}
    survivors = sorted(survivors) if survivors is not None else ids
    dropped = [p for p in ids if p not in survivors]
    masked = {p: sa.mask_update(plan, rnd, p, ids, secret[p], public, np.asarray(vectors[p], dtype=np.float64),
                                weights[p], config) for p in survivors}
    released = {p: sa.release_shares(plan, rnd, p, secret[p], public, shares, survivors, dropped)
                for p in survivors}
    return sa.unmask_sum(plan, rnd, ids, public, masked, released, threshold, config)
