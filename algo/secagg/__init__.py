"""fedchem.algo.secagg: secure aggregation of trunk updates (Bonawitz et al., CCS 2017), without torch.

Steps, each taking and returning serialisable objects (save_*/load_* write them as files):
  keygen -> deal_shares          key setup, once per plan (per-round keys for every planned round)
  mask_update                    per round, in each partner's train task
  release_shares                 per round, on each survivor
  unmask_sum                     per round, on the aggregator
"""

from fedchem.algo.secagg.bundles import MaskedUpdate, PublicBundle, ReleasedShares, SecretBundle, SharesBundle
from fedchem.algo.secagg.encoding import fixed_point_scale, scales
from fedchem.algo.secagg.files import (
    load_masked_update,
    load_public_bundle,
    load_released_shares,
    load_secret_bundle,
    load_shares_bundle,
    save_masked_update,
    save_public_bundle,
    save_released_shares,
    save_secret_bundle,
    save_shares_bundle,
)
from fedchem.algo.secagg.keysetup import deal_shares, default_threshold, keygen, threshold_for
from fedchem.algo.secagg.protocol import in_place_buffer, mask_update, unmask_sum
from fedchem.algo.secagg.release import release_shares

__all__ = [
    "MaskedUpdate",
    "PublicBundle",
    "ReleasedShares",
    "SecretBundle",
    "SharesBundle",
    "keygen",
    "deal_shares",
    "default_threshold",
    "threshold_for",
    "mask_update",
    "in_place_buffer",
    "release_shares",
    "unmask_sum",
    "fixed_point_scale",
    "scales",
    "save_public_bundle",
    "load_public_bundle",
    "save_secret_bundle",
    "load_secret_bundle",
    "save_shares_bundle",
    "load_shares_bundle",
    "save_released_shares",
    "load_released_shares",
    "save_masked_update",
    "load_masked_update",
]
