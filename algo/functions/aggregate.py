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
            u = z["weighted_update"]
            weight += float(z["weight"])
        if total is None:
            total = u.astype(np.float64)
        else:
            total += u
    return total, weight


def apply_mean_update(vector: np.ndarray, total: np.ndarray, weight: float) -> np.ndarray:
    """vector (float32, the trunk) + total / weight (float64, the summed weighted updates), computed in float64 and
    rounded to float32 into `vector`, using `total` as the scratch: the bits of
    `(vector.astype(np.float64) + total / weight).astype(np.float32)` without its three trunk-sized float64
    temporaries (24 bytes a parameter on an aggregator that holds the whole trunk). Returns `vector`."""
    np.divide(total, weight, out=total)
    np.add(total, vector, out=total)  # IEEE addition commutes: the same bits as vector + total
    np.copyto(vector, total, casting="same_kind")
    return vector


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
    vector, spec = flatten(arrays)
    meta["round"] = round_
    save_params(outputs["trunk"], unflatten(apply_mean_update(vector, total, weight), spec, copy=False), meta)
