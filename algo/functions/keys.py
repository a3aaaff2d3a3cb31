"""Substra functions of the secure-aggregation key setup, consistency step and share release (no torch).

keygen:             per-round key pairs and self-mask seeds for the rounds of this plan, plus the plan's signing
                    key (kept in the partner's node state); public keys to everyone.
deal_shares:        t-of-n shares of those secrets, each sealed to its recipient; pins every partner's public keys.
confirm_survivors:  Bonawitz's consistency step: sign the one survivor set of a round (from signed receipts).
release_shares:     open exactly the shares the aggregator needs for a survivor set at least t partners confirmed,
                    or, when the receipts of the partner's whole roster are given, the self-mask shares of all
                    (no confirmation wave when nobody dropped out); never both kinds for one partner in one
                    round (checked against the partner's own records).
Every function first checks the plan against the partner's own agreement (fedchem.algo.guard).
"""

from __future__ import annotations

import dataclasses

import substratools as tools

from fedchem.algo import secagg
from fedchem.algo.guard.rules import PartnerGuard
from fedchem.algo.params import load_meta
from fedchem.algo.task_io import maybe_fail, partner_name
from fedchem.opener.fileio import read_json, write_json


def _publics(paths: list[str]) -> dict:
    bundles = [secagg.load_public_bundle(p) for p in paths]
    return {b.party_id: b for b in bundles}


def guard_of(inputs, function: str) -> PartnerGuard:
    """This task's partner guard (its agreement and state, found through the partner's own opener)."""
    data = inputs["datasamples"]
    return PartnerGuard(partner_name(data.prepared_dir), data.node_dir, function)


def _key_setup(inputs, function: str) -> tuple[PartnerGuard, dict]:
    """The guard and the plan's metadata of a key-setup task, refused unless the plan is a secure one."""
    guard = guard_of(inputs, function)
    meta = load_meta(inputs["trunk"])
    if guard.check_meta(meta):
        raise guard.refuse("secure aggregation is mandatory", "key setup of a plain plan")
    return guard, meta


@tools.register
def keygen(inputs, outputs, task_properties):
    guard, meta = _key_setup(inputs, "keygen")
    first, last, roster = guard.check_plan_range(meta)
    with guard.state.locked():
        sign_pk = guard.record_keygen(meta["plan_id"], first, last, roster)
        public, secret = secagg.keygen(meta["plan_id"], guard.me, list(range(first, last + 1)))
        public = dataclasses.replace(public, sign_pk=sign_pk)
        guard.record_own_public(meta["plan_id"], public)
    secagg.save_public_bundle(outputs["public_keys"], public)
    secagg.save_secret_bundle(outputs["secret_keys"], secret)


@tools.register
def deal_shares(inputs, outputs, task_properties):
    guard, meta = _key_setup(inputs, "deal_shares")
    maybe_fail(guard.me, meta["first_round"], "deal")  # test hook: the key setup fails after the secrets exist
    secret = secagg.load_secret_bundle(inputs["secret_keys"])
    publics = _publics(inputs["public_keys"])
    with guard.state.locked():
        guard.record_dealing(meta["plan_id"], publics)
    shares = secagg.deal_shares(meta["plan_id"], guard.me, secret, publics, guard.agreement.threshold)
    secagg.save_shares_bundle(outputs["sealed_shares"], shares)


@tools.register
def confirm_survivors(inputs, outputs, task_properties):
    guard = guard_of(inputs, "confirm_survivors")
    receipts = [read_json(p) for p in inputs["receipt"]]
    plan_id, round_ = guard.plan_and_round(receipts)
    maybe_fail(guard.me, round_ if isinstance(round_, int) else -1, "confirm")
    with guard.state.locked():
        rec = guard.plan_record(plan_id)
        guard.pinned_publics(rec, _publics(inputs["public_keys"]))
        confirmation = guard.confirm(plan_id, round_, receipts)
    write_json(outputs["confirmation"], confirmation)


@tools.register
def release_shares(inputs, outputs, task_properties):
    guard = guard_of(inputs, "release_shares")
    confirmations = [read_json(p) for p in inputs.get("confirmation") or []]
    receipts = [read_json(p) for p in inputs.get("receipt") or []]
    if bool(confirmations) == bool(receipts):
        raise guard.refuse("consistency", "a release takes either survivor-set confirmations or, when nobody "
                                          "dropped out, the whole roster's receipts: not both, not neither")
    secret = secagg.load_secret_bundle(inputs["secret_keys"])
    plan_id = secret.plan_id
    publics = _publics(inputs["public_keys"])
    sealed = {b.sender: b for b in map(secagg.load_shares_bundle, inputs["sealed_shares"])}
    with guard.state.locked():
        rec = guard.plan_record(plan_id)
        guard.pinned_publics(rec, publics)
        if receipts:
            round_, survivors, dropped = guard.unanimous_release_plan(plan_id, receipts)
        else:
            round_, survivors, dropped = guard.release_plan(plan_id, confirmations)
        maybe_fail(guard.me, round_, "release")
        bad = sorted(p for p, b in sealed.items() if b.threshold != guard.agreement.threshold)
        if bad:
            raise guard.refuse("threshold", f"the shares of {bad} were dealt with another threshold than the agreed "
                                            f"{guard.agreement.threshold}")
        released = secagg.release_shares(plan_id, round_, guard.me, secret, publics, sealed, survivors, dropped)
        guard.record_release(plan_id, round_, survivors, dropped)
    secagg.save_released_shares(outputs["released_shares"], released)
