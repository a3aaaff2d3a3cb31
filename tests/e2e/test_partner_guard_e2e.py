"""Attacks on a live plan, on the real Substra SDK (subprocess backend), with the orchestrator's privacy checker
switched off: each partner's own node must refuse them (naming the rule), and the aggregator must fail to recover
any partner's individual update from everything it can read afterwards.

One honest secure run (3 partners, 1 round) is the victim; the attacker (tests/attacker.py) adds tasks to its plan.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest
import yaml

from fedchem.algo import secagg
from fedchem.opener.errors import ConfigError, ProtocolError
from fedchem.orchestrator.run import plan as planner
from fedchem.orchestrator.agreement import agreement_of, node_dir_of
from fedchem.orchestrator.config import load_all, load_consortium
from fedchem.orchestrator.run.driver import run_federation

from attacker import Attacker
from fedsetup import build_small_consortium

VICTIM = "partner-3"


@pytest.fixture(scope="module")
def consortium_path(tmp_path_factory):
    return build_small_consortium(tmp_path_factory.mktemp("guard-consortium"))


@pytest.fixture(scope="module")
def attacker(consortium_path, tmp_path_factory):
    consortium, partners = load_all(consortium_path)
    res = run_federation(consortium, partners, tmp_path_factory.mktemp("guard-runs") / "victim", rounds=1,
                         console=lambda s: None, keep_network=True, keep_outputs=True,  # replayed by the attacks
                         consortium_path=consortium_path)
    assert res.ledger.status == "completed"
    return Attacker(res), partners


def _refusals(partners, name) -> str:
    path = node_dir_of(partners[name]) / "refusals.log"
    return path.read_text() if path.exists() else ""


def _assert_refused(partners, name, rule, before):
    log = _refusals(partners, name)
    assert log.startswith(before) and f"[rule: {rule}]" in log[len(before):], log[len(before):]


def _honest_releasers(att, round_=1) -> list[str]:
    """The partners the honest local run asked to release in a round: the threshold's number (2 of 3), in the
    roster rotated by the round (orchestrator.run.rounds)."""
    names = {t.name for t in att.res.tasks.values()}
    releasers = [n for n in att.names if f"release/{n}/{round_}" in names]
    assert releasers == att.names[:2]
    return releasers


def _no_recovery(att, victim=VICTIM, round_=1):
    with pytest.raises(ProtocolError):
        att.recover_update(victim, round_)


def test_recovery_works_when_a_partner_releases_both_shares(attacker):
    """Positive control: the recovery the attacks aim at is real. Shares opened by the bare library call (no
    partner guard) for a survivor set without the victim give the aggregator the victim's weighted update."""
    att, partners = attacker
    r = 1
    publics = {n: secagg.load_public_bundle(att.output(att.task(f"keygen/{n}"), "public_keys")) for n in att.names}
    sealed = {n: secagg.load_shares_bundle(att.output(att.task(f"deal_shares/{n}"), "sealed_shares"))
              for n in att.names}
    others = [n for n in att.names if n != VICTIM]
    forced = []
    for n in others:  # what an unguarded release_shares would hand over for "survivors = others"
        secret = secagg.load_secret_bundle(att.output(att.task(f"keygen/{n}"), "secret_keys", reader=n))
        forced.append(secagg.release_shares(att.plan_id, r, n, secret, publics, sealed, others, [VICTIM]))
    encoded = att.recover_update(VICTIM, r, extra_releases=forced)
    n_train = json.loads((att.res.run_dir / "partners" / VICTIM / "logs" / "round_001.json").read_text())["n_train"]
    assert att.decoded_weight(encoded, len(att.names)) == pytest.approx(n_train / 1e7, rel=1e-9)
    # ...and from what the honest run left, the same recovery fails
    _no_recovery(att)


def test_double_release_is_refused(attacker):
    """(a) The honest round had nobody drop out, so the partners asked to release (t = 2 of 3, the two besides the
    victim) released from the whole roster's receipts (no confirmation wave) and committed to that set. Afterwards, per partner: a confirmation of a set without the
    victim, a release from fewer receipts (the victim "dropped"), a release fed receipts as confirmations."""
    att, partners = attacker
    fewer = [n for n in att.names if n != VICTIM]
    assert not [t for t in att.res.tasks.values() if t.function == "confirm_survivors"]  # the fast path ran
    assert _honest_releasers(att) == fewer  # t = 2 of the 3 released; the victim was not asked
    for n in fewer:
        before = _refusals(partners, n)
        confirm = planner.confirm_tasks(att.ctx, 1, att.names, fewer)[fewer.index(n)]
        assert not att.submit(att.renamed(confirm, "-fewer"))
        _assert_refused(partners, n, "one survivor set per round", before)
        release = att.task(f"release/{n}/1")
        assert [r.identifier for r in release.inputs].count("receipt") == len(att.names)
        kept = tuple(r for r in release.inputs if r.identifier != "receipt")
        before = _refusals(partners, n)
        inputs = kept + tuple(planner.Ref("receipt", att.ctx.task_id(f"train/{p}/1"), "receipt") for p in fewer)
        assert not att.submit(att.renamed(release, "-fewer", inputs=inputs))
        _assert_refused(partners, n, "consistency", before)
        before = _refusals(partners, n)
        inputs = kept + tuple(planner.Ref("confirmation", att.ctx.task_id(f"train/{p}/1"), "receipt") for p in fewer)
        assert not att.submit(att.renamed(release, "-asconf", inputs=inputs))
        _assert_refused(partners, n, "consistency", before)
        # the same whole-roster release again is answered, and reveals nothing new: the same self-mask shares
        again = att.renamed(release, "-again")
        assert att.submit(again)
        rel = secagg.load_released_shares(att.output(again, "released_shares"))
        assert rel.key_shares == {} and sorted(rel.survivors) == sorted(att.names)
    _no_recovery(att)


def test_same_round_replay_is_refused(attacker):
    """(b) A second train for a done round, fed a crafted trunk naming the same plan and round."""
    att, partners = attacker
    trunk = att.crafted_trunk("replay", round=0)  # "round 0 done": the train masks round 1 again
    before = _refusals(partners, VICTIM)
    honest = att.task(f"train/{VICTIM}/1")
    inputs = tuple(planner.Ref("trunk", trunk.task_id, "trunk") if r.identifier == "trunk" else r
                   for r in honest.inputs)
    replay = att.renamed(honest, "-replay", inputs=inputs)
    assert not att.submit(replay)
    _assert_refused(partners, VICTIM, "one masking per round", before)
    # the attack needs two masked vectors under the same masks: there is only the honest one
    assert att.output(replay, "masked_update") is None
    assert att.output(honest, "masked_update") is not None
    _no_recovery(att)


def test_security_off_by_trunk_metadata_is_refused(attacker):
    """(c) `settings.secure = false` in the trunk file: this plan's round, and a fresh plan id."""
    att, partners = attacker
    honest = att.task(f"train/{VICTIM}/1")
    no_keys = tuple(r for r in honest.inputs if r.identifier not in ("secret_keys", "public_keys", "trunk"))
    for label, meta in [("plain", {"round": 0}), ("plain-new-plan", {"round": 0, "plan_id": str(uuid.uuid4())})]:
        trunk = att.crafted_trunk(label, settings={"secure": False}, **meta)
        before = _refusals(partners, VICTIM)
        task = att.renamed(honest, f"-{label}", inputs=no_keys + (planner.Ref("trunk", trunk.task_id, "trunk"),))
        assert not att.submit(task)
        _assert_refused(partners, VICTIM, "secure aggregation is mandatory", before)
        assert att.output(task, "masked_update") is None  # no update in the clear


def test_security_off_by_config_key_is_refused(consortium_path, tmp_path):
    """(d) `federation.secure_aggregation.enabled: false` is refused when the config loads (and by the CLI, exit 2);
    the agreement a partner signs cannot carry it either."""
    data = yaml.safe_load(consortium_path.read_text())
    data["federation"]["secure_aggregation"] = {"enabled": False}
    bad = consortium_path.with_name("insecure.yaml")
    bad.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as err:
        load_consortium(bad)
    assert "secure aggregation cannot be switched off" in err.value.message()
    assert "federation.secure_aggregation.enabled" in err.value.message()
    done = subprocess.run([sys.executable, "-m", "fedchem.orchestrator.cli.main", "run", str(bad), "--run-dir",
                           str(tmp_path / "run")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "secure aggregation cannot be switched off" in done.stderr + done.stdout
    assert "Traceback" not in done.stderr and not (tmp_path / "run").exists()
    assert "--insecure" not in subprocess.run([sys.executable, "-m", "fedchem.orchestrator.cli.main", "run", "--help"],
                                              capture_output=True, text=True).stdout
    agreement = agreement_of(load_consortium(consortium_path)).model_dump(mode="json")
    agreement["secure_aggregation"]["enabled"] = False
    from pydantic import ValidationError

    from fedchem.algo.guard.agreement import Agreement

    with pytest.raises(ValidationError, match="cannot be switched off"):
        Agreement.model_validate(agreement)


def test_plan_of_another_agreement_is_refused(attacker, consortium_path):
    """(e) A plan whose agreement fingerprint differs (here: a lower threshold and a larger clip bound) is refused
    at key setup and at training, on a fresh plan and on the live one."""
    att, partners = attacker
    other = agreement_of(load_consortium(consortium_path)).model_copy(
        update={"secure_aggregation": secagg_settings(threshold=2, clip=100.0)})
    assert other.fingerprint_hex != agreement_of(load_consortium(consortium_path)).fingerprint_hex
    trunk = att.crafted_trunk("other-agreement", agreement=other.fingerprint_hex, plan_id=str(uuid.uuid4()))
    before = _refusals(partners, VICTIM)
    keygen = att.task(f"keygen/{VICTIM}")
    inputs = tuple(planner.Ref("trunk", trunk.task_id, "trunk") if r.identifier == "trunk" else r
                   for r in keygen.inputs)
    assert not att.submit(att.renamed(keygen, "-other", inputs=inputs))
    _assert_refused(partners, VICTIM, "own agreement", before)
    live = att.crafted_trunk("other-agreement-live", agreement=other.fingerprint_hex, round=0)
    before = _refusals(partners, VICTIM)
    honest = att.task(f"train/{VICTIM}/1")
    inputs = tuple(planner.Ref("trunk", live.task_id, "trunk") if r.identifier == "trunk" else r
                   for r in honest.inputs)
    task = att.renamed(honest, "-other", inputs=inputs)
    assert not att.submit(task)
    _assert_refused(partners, VICTIM, "own agreement", before)
    assert att.output(task, "masked_update") is None
    _no_recovery(att)


def secagg_settings(**changes):
    from fedchem.algo.config import SecAggConfig

    return SecAggConfig(**changes)


def test_refusal_logs_and_state_are_owner_only(attacker):
    """Also what each partner recorded of the honest round: its masking, and for the t partners the local run asked
    to release (the first t of the roster in round 1), the one survivor set and the self-mask shares released."""
    att, partners = attacker
    releasers = _honest_releasers(att)
    for name in att.names:
        root = node_dir_of(partners[name])
        for p in [root, *root.rglob("*")]:
            mode = p.stat().st_mode & 0o777
            assert mode & 0o077 == 0, f"{p} is {oct(mode)}"
        rounds = list(root.glob(f"plans/{att.plan_id}/round_*.json"))
        rec = json.loads(rounds[0].read_text())
        assert rec["masked"]["roster"] == sorted(att.names)
        if name in releasers:
            assert rec["confirmed"] == sorted(att.names)
            assert rec["released"] == {"b": sorted(att.names), "s": []}
        else:
            assert "confirmed" not in rec and "released" not in rec
