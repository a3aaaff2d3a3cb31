"""The plan builder's output passes the privacy checker, and every kind of leaking plan is refused by name."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from fedchem.algo.functions.specs import FUNCTIONS, Content
from fedchem.opener.errors import PrivacyError
from fedchem.orchestrator.run import plan as planner
from fedchem.orchestrator.run.privacy import check_tasks

PARTNERS = ["pharma-a", "pharma-b", "pharma-c"]
ORGS = {"pharma-a": "Org1MSP", "pharma-b": "Org2MSP", "pharma-c": "Org3MSP"}
AGG = "Org0MSP"


def context(secure: bool = True) -> planner.PlanContext:
    datasets = {n: planner.DatasetKeys(f"opener-{n}", (f"sample-{n}",)) for n in PARTNERS}
    datasets["aggregator"] = planner.DatasetKeys("opener-agg", ("sample-agg",))
    return planner.PlanContext(plan_id=str(uuid.UUID(int=7)), partner_orgs=dict(ORGS), aggregator_org=AGG,
                               datasets=datasets, secure=secure)


def full(ctx, rounds=2):
    return planner.full_plan(ctx, PARTNERS, 1, rounds)


def by_name(tasks, name):
    return next(t for t in tasks if t.name == name)


def replace_task(tasks, name, **changes):
    return [dataclasses.replace(t, **changes) if t.name == name else t for t in tasks]


def with_readers(task, identifier, readers):
    outs = tuple((i, tuple(readers) if i == identifier else r) for i, r in task.outputs)
    return outs


@pytest.mark.parametrize("secure", [True, False])
def test_built_plan_passes_and_has_the_promised_permissions(secure):
    ctx = context(secure)
    tasks = full(ctx, rounds=3)
    check_tasks(ctx, tasks)
    n = len(PARTNERS)
    # a round: n trains, n releases (nobody drops: no confirmation wave), one aggregate; key setup 2n, evaluation n
    expected = 1 + 3 * (n + (n if secure else 0) + 1) + n + (2 * n if secure else 0)
    assert len(tasks) == expected
    assert len({t.task_id for t in tasks}) == len(tasks)
    for t in tasks:
        fdef = FUNCTIONS[t.function]
        for ident, readers in t.outputs:
            content = fdef.output(ident).content
            if content is Content.PRIVATE:
                assert readers == (t.worker,), (t.name, ident)
            if content is Content.MASKED_UPDATE:
                assert set(readers) == {t.worker, AGG}
        if t.worker == AGG:
            assert [i for i, _ in t.outputs] == ["trunk"]


def test_task_ids_are_deterministic_uuids():
    a, b = full(context()), full(context())
    assert [t.task_id for t in a] == [t.task_id for t in b]
    uuid.UUID(a[0].task_id)


def _assert_refused(ctx, tasks, task_name, *needles):
    with pytest.raises(PrivacyError) as err:
        check_tasks(ctx, tasks)
    msg = err.value.message()
    assert task_name in msg, msg
    for n in needles:
        assert n in msg, msg


def test_head_shared_with_another_org_is_refused():
    ctx = context()
    tasks = full(ctx)
    t = by_name(tasks, "train/pharma-a/1")
    tasks = replace_task(tasks, t.name, outputs=with_readers(t, "head", [ORGS["pharma-a"], ORGS["pharma-b"]]))
    _assert_refused(ctx, tasks, "train/pharma-a/1", "output 'head'", ORGS["pharma-b"])


def test_masked_update_readable_by_a_partner_is_refused():
    ctx = context()
    tasks = full(ctx)
    t = by_name(tasks, "train/pharma-b/2")
    tasks = replace_task(tasks, t.name, outputs=with_readers(t, "masked_update", [ORGS["pharma-b"], AGG,
                                                                                 ORGS["pharma-c"]]))
    _assert_refused(ctx, tasks, "train/pharma-b/2", "output 'masked_update'")


def test_trunk_output_carrying_a_head_is_refused():
    ctx = context()
    tasks = full(ctx)
    agg = by_name(tasks, "aggregate/1")
    # an aggregate that also takes pharma-a's head as an input (its trunk would then carry it)
    head_in = planner.Ref("head", ctx.task_id("train/pharma-a/1"), "head")
    tasks = replace_task(tasks, agg.name, inputs=agg.inputs + (head_in,))
    _assert_refused(ctx, tasks, "aggregate/1", "'head'")
    # the head fed in where a trunk is expected
    tasks = full(ctx)
    agg = by_name(tasks, "aggregate/2")
    swapped = tuple(planner.Ref("trunk", ctx.task_id("train/pharma-a/1"), "head") if r.identifier == "trunk" else r
                    for r in agg.inputs)
    tasks = replace_task(tasks, agg.name, inputs=swapped)
    _assert_refused(ctx, tasks, "aggregate/2", "'head'")
    # an aggregate with an extra output named head
    tasks = full(ctx)
    agg = by_name(tasks, "aggregate/1")
    tasks = replace_task(tasks, agg.name, outputs=agg.outputs + (("head", tuple(ctx.consortium_orgs)),))
    _assert_refused(ctx, tasks, "aggregate/1", "output 'head'")


def test_metrics_readable_by_others_are_refused():
    ctx = context()
    tasks = full(ctx)
    t = by_name(tasks, "evaluate/pharma-c/2")
    tasks = replace_task(tasks, t.name, outputs=with_readers(t, "metrics", [ORGS["pharma-c"], AGG]))
    _assert_refused(ctx, tasks, "evaluate/pharma-c/2", "output 'metrics'", AGG)
    tasks = replace_task(full(ctx), t.name, outputs=with_readers(t, "predictions", ["public"]))
    _assert_refused(ctx, tasks, "evaluate/pharma-c/2", "output 'predictions'", "public")


def test_task_on_another_orgs_data_is_refused():
    ctx = context()
    tasks = full(ctx)
    tasks = replace_task(tasks, "train/pharma-a/1", worker=ORGS["pharma-b"])
    _assert_refused(ctx, tasks, "train/pharma-a/1", "reads data of", ORGS["pharma-a"])


def test_reading_an_output_one_may_not_read_is_refused():
    ctx = context()
    tasks = full(ctx)
    t = by_name(tasks, "train/pharma-b/2")
    # pharma-b's round-2 training fed with pharma-a's head
    inputs = tuple(planner.Ref("head", ctx.task_id("train/pharma-a/1"), "head") if r.identifier == "head" else r
                   for r in t.inputs)
    tasks = replace_task(tasks, t.name, inputs=inputs)
    _assert_refused(ctx, tasks, "train/pharma-b/2", "may not read")


def test_aggregator_function_on_a_partner_and_secrets_leaving_are_refused():
    ctx = context()
    tasks = replace_task(full(ctx), "aggregate/1", worker=ORGS["pharma-a"])
    _assert_refused(ctx, tasks, "aggregate/1", "aggregator function")
    t = by_name(full(ctx), "keygen/pharma-a")
    tasks = replace_task(full(ctx), t.name, outputs=with_readers(t, "secret_keys", list(ctx.consortium_orgs)))
    _assert_refused(ctx, tasks, "keygen/pharma-a", "output 'secret_keys'")


def test_nothing_is_public_unless_the_consortium_opts_in_to_one_summary_figure():
    ctx = context()
    tasks = full(ctx)
    assert not any(t.function == "publish_summary" for t in tasks)
    assert all("public" not in r for t in tasks for _, r in t.outputs)
    # a summary task slipped into a plan of a consortium that did not opt in
    opted = context()
    opted.publish_summary = True
    summary = planner.summary_task(opted, "pharma-a", 2)
    _assert_refused(ctx, tasks + [summary], "summary/pharma-a/2", "did not opt in")
    # opted in: exactly one public figure per partner, computed from its own metrics
    tasks = full(opted)
    published = [t for t in tasks if t.function == "publish_summary"]
    assert len(published) == len(PARTNERS) and all(t.outputs == (("summary", ("public",)),) for t in published)
    check_tasks(opted, tasks)
    # opting in does not make anything else public
    t = by_name(tasks, "evaluate/pharma-a/2")
    bad = replace_task(tasks, t.name, outputs=with_readers(t, "metrics", ["public"]))
    _assert_refused(opted, bad, "evaluate/pharma-a/2", "output 'metrics'")
    # the summary of pharma-a is computed on pharma-a's node from pharma-a's metrics only
    bad = replace_task(tasks, "summary/pharma-a/2", worker=ORGS["pharma-b"])
    _assert_refused(opted, bad, "summary/pharma-a/2", "reads data of")


def test_published_summary_is_one_number(tmp_path):
    import json

    from fedchem.algo.functions.summary import headline_figure, publish_summary
    from fedchem.opener.errors import ProtocolError

    from guardsetup import partner_node

    data, agreement = partner_node(tmp_path / "opted", "pharma-a", PARTNERS, publish_summary=True)
    metrics = {"agreement": agreement.fingerprint_hex,
               "test": {"aggregate": {"classification": {"auc_roc": 0.8125, "auc_pr": 0.5},
                                      "regression": {"rmse": 0.7}}, "per_task": [{"task": "secret-task"}]}}
    (tmp_path / "m.json").write_text(json.dumps(metrics))
    inputs = {"datasamples": data, "metrics": str(tmp_path / "m.json")}
    publish_summary(inputs, {"summary": str(tmp_path / "s.json")}, {})
    assert json.loads((tmp_path / "s.json").read_text()) == {"all": 0.8125}
    # a partner whose own agreement did not opt in refuses, whatever the plan says
    other, _ = partner_node(tmp_path / "not-opted", "pharma-a", PARTNERS, publish_summary=False)
    with pytest.raises(ProtocolError, match=r"rule: publish opt-in"):
        publish_summary({**inputs, "datasamples": other}, {"summary": str(tmp_path / "s2.json")}, {})
    assert not (tmp_path / "s2.json").exists()
    metrics["test"]["aggregate"]["classification"] = {}
    assert headline_figure(metrics) == -0.7


def _second(ctx, task, suffix):
    """The same task again under another id (what an attacker adds to a plan)."""
    return dataclasses.replace(task, task_id=ctx.task_id(task.name + suffix), name=task.name + suffix)


def test_second_train_of_a_partner_in_a_round_is_refused():
    ctx = context()
    tasks = full(ctx)
    replay = _second(ctx, by_name(tasks, "train/pharma-a/1"), "-replay")
    _assert_refused(ctx, tasks + [replay], "train/pharma-a/1-replay", "a second train", "one train per partner")
    # the same, submitted later against what was already submitted (the driver's `known`)
    known = {t.task_id: t for t in tasks}
    with pytest.raises(PrivacyError, match="one train per partner per round"):
        check_tasks(ctx, [replay], known)


def test_second_release_or_confirmation_of_a_partner_in_a_round_is_refused():
    ctx = context()
    tasks = full(ctx)
    known = {t.task_id: t for t in tasks}
    again = _second(ctx, planner.unanimous_release_tasks(ctx, 1, PARTNERS)[0], "-again")
    with pytest.raises(PrivacyError, match="a second release of organisation Org1MSP in round 1"):
        check_tasks(ctx, [again], known)
    confirm = planner.confirm_tasks(ctx, 2, PARTNERS, PARTNERS)[1]  # the confirmation wave of a round with dropouts
    check_tasks(ctx, [confirm], known)
    known[confirm.task_id] = confirm
    again = _second(ctx, confirm, "-again")
    with pytest.raises(PrivacyError, match="a second confirmation"):
        check_tasks(ctx, [again], known)


def test_aggregate_must_read_every_survivor_update_of_its_round():
    ctx = context()
    tasks = full(ctx)
    agg = by_name(tasks, "aggregate/2")
    # leaving one survivor's update out (so the sum minus the others' isolates it later) is refused
    dropped = tuple(r for r in agg.inputs if r.parent_task != ctx.task_id("train/pharma-c/2"))
    _assert_refused(ctx, replace_task(tasks, agg.name, inputs=dropped), "aggregate/2", "train/pharma-c/2",
                    "every survivor")
    # an update of another round fed in its place
    swapped = tuple(planner.Ref("masked_update", ctx.task_id("train/pharma-c/1"), "masked_update")
                    if r.parent_task == ctx.task_id("train/pharma-c/2") else r for r in agg.inputs)
    _assert_refused(ctx, replace_task(tasks, agg.name, inputs=swapped), "aggregate/2", "not a train task of round 2")
    # a second aggregate of a round
    _assert_refused(ctx, tasks + [_second(ctx, agg, "-bis")], "aggregate/2-bis", "a second aggregate")
