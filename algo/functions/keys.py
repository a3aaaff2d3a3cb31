"""Substra functions of the secure-aggregation key setup and share release (no torch: they stay light).

keygen:          per-round key pairs and self-mask seeds for the rounds of this plan; public keys to everyone.
deal_shares:     t-of-n shares of those secrets, each sealed to its recipient.
release_shares:  after a round's train tasks, open exactly the shares the aggregator needs: the self-mask seeds of
                 the survivors (whose receipts exist) and the mask keys of the partners that dropped out.
"""

from __future__ import annotations

import substratools as tools

from fedchem.algo import secagg
from fedchem.algo.task_io import maybe_fail, partner_name
from fedchem.opener.fileio import read_json
from fedchem.algo.params import load_meta


def _publics(paths: list[str]) -> dict:
    bundles = [secagg.load_public_bundle(p) for p in paths]
    return {b.party_id: b for b in bundles}


@tools.register
def keygen(inputs, outputs, task_properties):
    me = partner_name(inputs["datasamples"].prepared_dir)
    meta = load_meta(inputs["trunk"])
    rounds = list(range(meta["first_round"], meta["last_round"] + 1))
    public, secret = secagg.keygen(meta["plan_id"], me, rounds)
    secagg.save_public_bundle(outputs["public_keys"], public)
    secagg.save_secret_bundle(outputs["secret_keys"], secret)


@tools.register
def deal_shares(inputs, outputs, task_properties):
    me = partner_name(inputs["datasamples"].prepared_dir)
    meta = load_meta(inputs["trunk"])
    secret = secagg.load_secret_bundle(inputs["secret_keys"])
    shares = secagg.deal_shares(meta["plan_id"], me, secret, _publics(inputs["public_keys"]), meta["threshold"])
    secagg.save_shares_bundle(outputs["sealed_shares"], shares)


@tools.register
def release_shares(inputs, outputs, task_properties):
    me = partner_name(inputs["datasamples"].prepared_dir)
    secret = secagg.load_secret_bundle(inputs["secret_keys"])
    publics = _publics(inputs["public_keys"])
    receipts = [read_json(p) for p in inputs["receipt"]]
    rounds = {r["round"] for r in receipts}
    if len(rounds) != 1 or any(r["plan_id"] != secret.plan_id for r in receipts):
        raise SystemExit("release_shares: receipts of different rounds or plans were given; refusing")
    round_ = rounds.pop()
    maybe_fail(me, round_, "release")
    survivors = sorted({r["partner"] for r in receipts})
    dropped = sorted(set(publics) - set(survivors))
    sealed = [secagg.load_shares_bundle(p) for p in inputs["sealed_shares"]]
    released = secagg.release_shares(secret.plan_id, round_, me, secret, publics,
                                     {b.sender: b for b in sealed}, survivors, dropped)
    secagg.save_released_shares(outputs["released_shares"], released)
