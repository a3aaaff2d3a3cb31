"""What an operator or aggregator with a token can do to a plan, for the partner-guard end-to-end tests.

It adds tasks to a live plan straight through Substra (the orchestrator's privacy checker is NOT called, so the
partner-side guard stands alone), registers crafted trunk files on the aggregator's node, and tries to recover one
partner's individual update from everything the aggregator can read. Only the real SDK and real crypto are used.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

import numpy as np

from fedchem.algo import secagg
from fedchem.algo.secagg.encoding import decode_chunk, ring_dtype, scales
from fedchem.algo.secagg.keys import pairwise_mask_key, self_mask_key
from fedchem.algo.secagg.masking import full_mask
from fedchem.algo.secagg.shamir import combine_secret
from fedchem.algo.params import load_params, save_params
from fedchem.orchestrator.run import backend as sb
from fedchem.orchestrator.run import plan as planner


class Attacker:
    """The aggregator's organisation (it submits plans and reads masked updates and released shares)."""

    def __init__(self, result):
        self.res, self.net = result, result.network
        self.plan_id = result.ledger.plans[-1]["plan_id"]
        self.work = result.run_dir / "substra-work" / self.plan_id[:8]
        self.agg = self.net.aggregator
        self.names = list(result.ledger.partners)
        datasets = {}
        for t in result.tasks.values():
            owner = "aggregator" if t.function == "init_trunk" else next(
                (n for n in self.names if self.net.orgs[n] == t.worker), None)
            refs = [r for r in t.inputs if r.asset_key is not None]
            if owner and refs and owner not in datasets:
                datasets[owner] = planner.DatasetKeys(refs[0].asset_key, tuple(r.asset_key for r in refs[1:]))
        self.ctx = planner.PlanContext(plan_id=self.plan_id, partner_orgs={n: self.net.orgs[n] for n in self.names},
                                       aggregator_org=self.net.orgs[self.agg], datasets=datasets)

    def task(self, name: str) -> planner.TaskPlan:
        return self.res.tasks[self.ctx.task_id(name)]

    def renamed(self, task: planner.TaskPlan, suffix: str, **changes) -> planner.TaskPlan:
        name = task.name + suffix
        return dataclasses.replace(task, task_id=self.ctx.task_id(name), name=name, **changes)

    def submit(self, task: planner.TaskPlan) -> bool:
        """Add one task to the live plan, unchecked; True if it ran, False if it failed (was refused)."""
        with sb.working_directory(self.work):
            try:
                sb.add_tasks(self.net, self.plan_id, [task])
            except sb.TaskFailed:
                return False
        self.res.tasks[task.task_id] = task
        return True

    def output(self, task: planner.TaskPlan, identifier: str, reader: str | None = None) -> Path | None:
        """Download an output as `reader` (default the aggregator); None if the task produced none."""
        reader = reader or self.agg
        dest = self.work / "attacker" / uuid.uuid4().hex[:8]
        dest.mkdir(parents=True)
        with sb.working_directory(self.work):
            try:
                return Path(self.net.clients[reader].download_model_from_task(task.task_id, identifier=identifier,
                                                                           folder=dest))
            except Exception:  # noqa: BLE001 - no such output (the task failed): nothing to read
                return None

    def crafted_trunk(self, label: str, **meta_changes) -> planner.TaskPlan:
        """A trunk output on the aggregator's node whose metadata says what the attacker wants."""
        arrays, meta = load_params(self.output(self.task("init_trunk"), "trunk"))
        for key, value in meta_changes.items():
            if key == "settings":
                meta["settings"] = {**meta["settings"], **value}
            else:
                meta[key] = value
        folder = self.work / "crafted" / label
        save_params(folder / "trunk.npz", arrays, meta)
        with sb.working_directory(self.work):
            keys = sb.register_dataset(self.net, self.agg, f"crafted-{label}", [folder],
                                       self.work / "datasets" / f"crafted-{label}")
        name = f"init_trunk/crafted-{label}"
        task = planner.TaskPlan(self.ctx.task_id(name), name, "init_trunk", self.ctx.aggregator_org,
                                (planner.Ref("opener", asset_key=keys.opener),)
                                + tuple(planner.Ref("datasamples", asset_key=k) for k in keys.samples),
                                (("trunk", self.ctx.consortium_orgs),))
        assert self.submit(task)
        return task

    def released(self, round_: int) -> list:
        """Every released-shares output of a round the aggregator can read (honest and attack tasks alike)."""
        out = []
        for t in list(self.res.tasks.values()):
            if t.function == "release_shares" and t.round == round_:
                p = self.output(t, "released_shares")
                if p is not None:
                    out.append(secagg.load_released_shares(p))
        return out

    def recover_update(self, victim: str, round_: int, extra_releases=()) -> np.ndarray:
        """Try to strip every mask off `victim`'s masked update of a round from what the aggregator holds: needs
        t shares of its self-mask seed AND t shares of its mask key. Raises ProtocolError when it cannot."""
        releases = self.released(round_) + list(extra_releases)
        threshold = releases[0].threshold if releases else 2
        where = f"attacker recovering {victim}'s update of round {round_}"
        seed = combine_secret([r.seed_shares[victim] for r in releases if victim in r.seed_shares], threshold, where)
        mask_sk = combine_secret([r.key_shares[victim] for r in releases if victim in r.key_shares], threshold, where)
        masked = secagg.load_masked_update(self.output(self.task(f"train/{victim}/{round_}"), "masked_update"))
        publics = {b.party_id: b for b in (secagg.load_public_bundle(self.output(self.task(f"keygen/{n}"),
                                                                                 "public_keys")) for n in self.names)}
        dtype = ring_dtype(masked.ring_bits)
        vec = masked.vector.copy()
        vec -= full_mask(self_mask_key(seed, self.plan_id, round_, victim), vec.shape[0], dtype)
        for q in self.names:
            if q == victim:
                continue
            key = pairwise_mask_key(mask_sk, publics[q].round(round_, where).mask_pk, self.plan_id, round_, victim, q)
            m = full_mask(key, vec.shape[0], dtype)
            vec = vec - m if q > victim else vec + m
        return vec  # the victim's encoded weighted update, in the clear

    def decoded_weight(self, encoded: np.ndarray, n_parties: int, clip: float = 1.0, max_weight: float = 1.0) -> float:
        _, weight_scale = scales(clip, n_parties, 64 if encoded.dtype == np.uint64 else 32)
        out = np.empty(1, dtype=np.float64)
        decode_chunk(encoded[-1:], max_weight / weight_scale, out)
        return float(out[0])

