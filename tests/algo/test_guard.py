"""The partner-side guard without Substra: its rules on real node folders, real Ed25519, real fcntl locks and
atomic writes (the end-to-end attacks are in test_partner_guard_e2e.py)."""

from __future__ import annotations

import dataclasses
import json
import multiprocessing
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from fedchem.algo import secagg
from fedchem.algo.guard.rules import PLAIN_OPT_IN, PartnerGuard
from fedchem.opener.errors import ProtocolError

from guardsetup import partner_node

NAMES = ["p1", "p2", "p3"]
PLAN = str(uuid.UUID(int=12))


def _guards(tmp_path, **changes):
    """Three partners' guards after key setup of PLAN (rounds 1..2), publics pinned."""
    guards, publics = {}, {}
    for n in NAMES:
        data, _ = partner_node(tmp_path / n, n, NAMES, **changes)
        g = PartnerGuard(n, data.node_dir, "test")
        pk = g.record_keygen(PLAN, 1, 2, sorted(NAMES))
        public, _ = secagg.keygen(PLAN, n, [1, 2])
        publics[n] = dataclasses.replace(public, sign_pk=pk)
        g.record_own_public(PLAN, publics[n])
        guards[n] = g
    for g in guards.values():
        g.record_dealing(PLAN, publics)
    return guards


def _round(guards, r=1, survivors=NAMES):
    receipts = []
    for n in survivors:
        guards[n].record_masking(PLAN, r, NAMES)
        receipts.append(guards[n].receipt(PLAN, r, NAMES))
    return receipts


def test_agreement_fingerprint_is_stable_and_every_setting_counts(tmp_path):
    a, _ = partner_node(tmp_path / "a", "p1", NAMES)
    g = PartnerGuard("p1", a.node_dir, "test")
    again = PartnerGuard("p1", a.node_dir, "test")
    assert g.fingerprint == again.fingerprint and len(g.fingerprint) == 64
    b, _ = partner_node(tmp_path / "b", "p1", NAMES, rounds=4)
    assert PartnerGuard("p1", b.node_dir, "test").fingerprint != g.fingerprint
    with pytest.raises(ProtocolError, match=r"rule: own agreement"):
        g.check_meta({"agreement": PartnerGuard("p1", b.node_dir, "test").fingerprint, "settings": {"secure": True}})
    with pytest.raises(ProtocolError, match=r"rule: own agreement\].*not in its own agreement"):
        PartnerGuard("p9", a.node_dir, "test")
    with pytest.raises(ProtocolError, match=r"holds no signed consortium agreement"):
        PartnerGuard("p1", tmp_path / "nowhere", "test")


def test_plain_updates_only_with_the_partners_own_opt_in(tmp_path):
    data, _ = partner_node(tmp_path / "a", "p1", NAMES)
    g = PartnerGuard("p1", data.node_dir, "test")
    meta = {"agreement": g.fingerprint, "settings": {"secure": False}}
    with pytest.raises(ProtocolError, match=r"rule: secure aggregation is mandatory"):
        g.check_meta(meta)
    (data.node_dir / PLAIN_OPT_IN).write_text("test only\n")
    assert g.check_meta(meta) is True
    assert g.check_meta({**meta, "settings": {"secure": True}}) is False


def test_one_masking_per_round_survives_a_new_task(tmp_path):
    guards = _guards(tmp_path)
    guards["p1"].record_masking(PLAN, 1, NAMES)
    fresh = PartnerGuard("p1", guards["p1"].node_dir, "train")  # another task process, same node
    with pytest.raises(ProtocolError, match=r"rule: one masking per round"):
        fresh.record_masking(PLAN, 1, NAMES)
    fresh.record_masking(PLAN, 2, NAMES)  # the next round is fine
    with pytest.raises(ProtocolError, match=r"rule: round range"):
        fresh.record_masking(PLAN, 3, NAMES)
    with pytest.raises(ProtocolError, match=r"rule: threshold"):
        guards["p2"].record_masking(PLAN, 1, ["p2"])
    with pytest.raises(ProtocolError, match=r"rule: own key setup"):
        fresh.record_masking(str(uuid.uuid4()), 1, NAMES)
    assert "[rule: one masking per round]" in (guards["p1"].node_dir / "refusals.log").read_text()


def test_survivor_set_is_one_per_round_and_confirmed_by_t_partners(tmp_path):
    guards = _guards(tmp_path)
    receipts = _round(guards)
    confirmations = [guards[n].confirm(PLAN, 1, receipts) for n in NAMES]
    assert guards["p1"].release_plan(PLAN, confirmations) == (1, NAMES, [])
    # fewer receipts afterwards: a second, different set is refused
    with pytest.raises(ProtocolError, match=r"rule: one survivor set per round"):
        guards["p1"].confirm(PLAN, 1, receipts[:2])
    # fewer than t confirmations, or a forged one, or another set than the one this partner confirmed
    with pytest.raises(ProtocolError, match=r"confirmed by 1 partners, fewer than the agreed threshold 2"):
        guards["p1"].release_plan(PLAN, confirmations[:1])
    forged = {**confirmations[1], "survivors": ["p1", "p2"]}
    with pytest.raises(ProtocolError, match=r"rule: consistency"):
        guards["p1"].release_plan(PLAN, [confirmations[0], forged])
    tampered = {**receipts[1], "roster": ["p1", "p2"]}
    with pytest.raises(ProtocolError, match=r"rule: consistency"):
        guards["p3"].confirm(PLAN, 1, [receipts[0], tampered, receipts[2]])
    # a survivor set below the threshold is never confirmed
    guards2 = _guards(tmp_path / "two")
    only = _round(guards2, survivors=["p1"])
    with pytest.raises(ProtocolError, match=r"rule: threshold"):
        guards2["p1"].confirm(PLAN, 1, only)


def test_release_without_confirmations_needs_every_receipt_and_commits_to_the_whole_roster(tmp_path):
    """The release of a round nobody dropped out of (no confirmation wave): only with a verified receipt from
    every partner of the roster; a refusal records nothing; once done, the partner signs no other survivor set,
    so no key share of any partner can follow from it (the both-kinds attack needs a smaller set)."""
    guards = _guards(tmp_path)
    receipts = _round(guards)
    g = guards["p1"]
    for fewer in (receipts[:2], receipts[1:]):  # p3's receipt withheld; p1's own withheld
        with pytest.raises(ProtocolError, match=r"rule: consistency"):
            g.unanimous_release_plan(PLAN, fewer)
    tampered = {**receipts[2], "partner": "p2"}  # p3's receipt relabelled: its signature no longer verifies
    with pytest.raises(ProtocolError, match=r"rule: consistency\].*signature"):
        g.unanimous_release_plan(PLAN, [receipts[0], receipts[1], tampered])
    other_round = _round(guards, r=2)
    with pytest.raises(ProtocolError, match=r"rule: consistency\].*one plan and round"):
        g.unanimous_release_plan(PLAN, receipts[:2] + other_round[2:])
    assert g.state.round(PLAN, 1).get("confirmed") is None  # the refusals committed p1 to nothing
    assert g.unanimous_release_plan(PLAN, receipts) == (1, NAMES, [])
    assert g.state.round(PLAN, 1)["confirmed"] == NAMES
    assert g.unanimous_release_plan(PLAN, receipts) == (1, NAMES, [])  # the same again reveals nothing new
    with pytest.raises(ProtocolError, match=r"rule: one survivor set per round"):
        g.confirm(PLAN, 1, receipts[:2])  # so p1 signs no set without p3 ...
    smaller = [guards["p2"].confirm(PLAN, 1, receipts[:2])]  # p2 alone can sign the set {p1, p2} now
    with pytest.raises(ProtocolError, match=r"rule: consistency\].*confirmed by 1 partners, fewer than"):
        g.release_plan(PLAN, smaller)  # ... and no set without p3 gets the t signatures a key share needs
    # the other order: a partner that confirmed a smaller set (a dropout) makes no release without confirmations
    with pytest.raises(ProtocolError, match=r"rule: one survivor set per round"):
        guards["p2"].unanimous_release_plan(PLAN, receipts)


def test_never_both_shares_of_one_partner_across_requests(tmp_path):
    """The state rule on its own (below the consistency step): after releasing p3's self-mask share, a request
    naming p3 dropped is refused, by any later task of the same node, and nothing is recorded for it."""
    guards = _guards(tmp_path)
    g = guards["p1"]
    g.record_release(PLAN, 1, NAMES, [])
    later = PartnerGuard("p1", g.node_dir, "release_shares")
    with pytest.raises(ProtocolError, match=r"rule: never both shares of one partner.*p3"):
        later.record_release(PLAN, 1, ["p1", "p2"], ["p3"])
    later.record_release(PLAN, 1, NAMES, [])  # the same request again reveals nothing new
    rec = json.loads(next(g.node_dir.glob(f"plans/{PLAN}/round_0001.json")).read_text())
    assert rec["released"] == {"b": NAMES, "s": []}
    # the reverse order: mask key first, then the self-mask share of the same partner
    later.record_release(PLAN, 2, ["p1", "p2"], ["p3"])
    with pytest.raises(ProtocolError, match=r"rule: never both shares"):
        later.record_release(PLAN, 2, NAMES, [])


def test_state_files_are_owner_only_whatever_the_umask(tmp_path):
    old = os.umask(0)
    try:
        guards = _guards(tmp_path)
        _round(guards)
    finally:
        os.umask(old)
    for g in guards.values():
        for p in [g.node_dir, *g.node_dir.rglob("*")]:
            assert p.stat().st_mode & 0o077 == 0, (p, oct(p.stat().st_mode))


def _race(node_dir, go, results):
    """A task's check-then-record, with a window between the two that only the node lock closes."""
    g = PartnerGuard("p1", node_dir, "train")
    go.wait()
    with g.state.locked():
        before = g.state.round(PLAN, 1)
        time.sleep(0.3)
        if before.get("masked"):
            results.put("refused")
            return
        g.state.save_round(PLAN, 1, {"masked": {"roster": NAMES}})
    results.put("masked")


def test_two_tasks_racing_to_mask_one_round_mask_once(tmp_path):
    guards = _guards(tmp_path)
    ctx = multiprocessing.get_context("spawn")
    go, results = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_race, args=(guards["p1"].node_dir, go, results)) for _ in range(2)]
    for p in procs:
        p.start()
    go.set()
    for p in procs:
        p.join(60)
    assert sorted(results.get(timeout=5) for _ in procs) == ["masked", "refused"]


WRITER = """
import sys, uuid
from fedchem.algo.guard.state import NodeState
s = NodeState(sys.argv[1])
plan = str(uuid.UUID(int=12))
i = 0
while True:
    i += 1
    with s.locked():
        s.save_round(plan, 1, {"i": i, "pad": "x" * 200000})
    print(i, flush=True)
"""


def test_state_writes_survive_kill_9(tmp_path):
    node = tmp_path / "node"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(node)], stdout=subprocess.PIPE, text=True)
    for _ in range(30):  # let it write a while, then kill it mid-way
        proc.stdout.readline()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    rec = json.loads((node / "plans" / PLAN / "round_0001.json").read_text())  # whole, never half-written
    assert rec["i"] >= 30 and len(rec["pad"]) == 200000


def test_partner_opener_names_its_node_folder_and_default_opener_names_none(tmp_path):
    """The opener file a partner registers is loaded the way substratools loads it: one Opener subclass, whose
    data names the partner's node folder. The shared default opener names none, so its tasks refuse (fail closed)."""
    from substratools.opener import Opener
    from substratools.utils import load_interface_from_module

    from fedchem.opener.substra_opener import FedchemOpener, partner_opener_source

    path = tmp_path / "opener.py"
    path.write_text(partner_opener_source(tmp_path / "node"))
    opener = load_interface_from_module("opener", interface_class=Opener, path=str(path))
    assert opener.get_data([]).node_dir == (tmp_path / "node").resolve()
    assert FedchemOpener().get_data([]).node_dir is None
    with pytest.raises(ProtocolError, match=r"names no partner node folder"):
        PartnerGuard("p1", None, "train")
