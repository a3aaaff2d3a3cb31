"""Substra functions of the aggregator (numpy only, no torch: the aggregator's tasks stay cheap).

init_trunk: publishes the plan's starting trunk from the aggregator's own dataset sample.
aggregate:  sums the round's masked updates in the ring (the masks cancel, dropped partners' dangling masks are
            removed with the released shares), decodes the weighted mean update and applies it to the trunk.
"""

from __future__ import annotations

import shutil

import numpy as np
import substratools as tools

from fedchem.algo import secagg
from fedchem.algo.task_io import settings_of
from fedchem.algo.params import load_params, save_params
from fedchem.algo.params import flatten, unflatten


@tools.register
def init_trunk(inputs, outputs, task_properties):
    src = inputs["datasamples"].trunk_dir / "trunk.npz"
    shutil.copyfile(src, outputs["trunk"])


def plain_sum(paths: list[str]) -> tuple[np.ndarray, float]:
    """Test-only path (secure aggregation off): the weighted updates in the clear, summed."""
    total, weight = None, 0.0
    for p in paths:
        with np.load(p) as z:
            u = z["weighted_update"].astype(np.float64)
            weight += float(z["weight"])
        total = u if total is None else total + u
    return total, weight


@tools.register
def aggregate(inputs, outputs, task_properties):
    arrays, meta = load_params(inputs["trunk"])
    round_ = meta["round"] + 1
    _, _, cfg = settings_of(meta)
    if meta["settings"]["secure"]:
        publics = {b.party_id: b for b in map(secagg.load_public_bundle, inputs["public_keys"])}
        masked = {m.party_id: m for m in (secagg.load_masked_update(p, mmap=True) for p in inputs["masked_update"])}
        released = {r.party_id: r for r in map(secagg.load_released_shares, inputs.get("released_shares") or [])}
        total, weight = secagg.unmask_sum(meta["plan_id"], round_, sorted(publics), publics, masked, released,
                                          meta["threshold"], cfg)
    else:
        total, weight = plain_sum(inputs["masked_update"])
    mean_update = total / weight
    vector, spec = flatten(arrays)
    new = vector.astype(np.float64) + mean_update
    meta["round"] = round_
    save_params(outputs["trunk"], unflatten(new.astype(np.float32), spec), meta)
