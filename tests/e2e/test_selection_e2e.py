"""Selection and optimiser state on the real Substra SDK (subprocess backend): one partner alone in a federated run
reproduces train-local epoch by epoch, and both sides choose the same rounds/epochs by the same rule.

The setting that makes "one partner alone" exact: secure aggregation off (the test-only switch, each partner opting
in on its own node), so the aggregate is the partner's own update in float64, (w·Δ)/w, added to the float32 trunk:
a float32 rounding of the trunk per round at most, against train-local's trunk. Partners 2 and 3 fail their first
train task (the test hook), so partner-1 trains alone from round 1. One epoch per round, no learning-rate steps, no
early stopping: round r then draws epoch r's batches and dropout masks (training.pass_seed) with the same Adam state.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fedchem.algo.params import load_params
from fedchem.algo.predictions import load_predictions
from fedchem.algo.train_local import train_local
from fedchem.opener.dataset import load_prepared
from fedchem.opener.fileio import readable_by_others
from fedchem.orchestrator.config import load_all
from fedchem.orchestrator.run.context import trunk_path
from fedchem.orchestrator.run.driver import run_federation

from fedsetup import build_small_consortium

ROUNDS = 2  # the run keeps the trunks of its last two rounds: both candidates' trunks are there to compare
FINETUNE = 1  # epochs of the third model (federated, then alone): epoch ROUNDS + k of train-local


@pytest.fixture(scope="module")
def consortium_path(tmp_path_factory):
    return build_small_consortium(tmp_path_factory.mktemp("alone-consortium"), overrides={
        "training": {"epochs": ROUNDS, "epochs_per_round": 1.0, "batch_size": 64, "learning_rate": 0.002,
                     "early_stopping_patience": 0, "finetune_epochs": FINETUNE, "validation_fold": 0, "test_fold": 1,
                     "seed": 7},
        "federation": {"rounds": ROUNDS, "evaluate_every": 1, "aggregator": "aggregator"}})


@pytest.fixture(scope="module")
def alone_run(consortium_path, tmp_path_factory):
    from fedchem.algo.guard.rules import PLAIN_OPT_IN
    from fedchem.orchestrator.agreement import node_dir_of

    consortium, partners = load_all(consortium_path)
    opt_ins = [node_dir_of(p) / PLAIN_OPT_IN for p in partners.values()]
    mp = pytest.MonkeyPatch()
    mp.setenv("FEDCHEM_TEST_FAIL", "partner-2:1:train,partner-3:1:train")
    try:
        for f in opt_ins:
            f.write_text("test only\n")
        fed = run_federation(consortium, partners, tmp_path_factory.mktemp("runs") / "alone", secure=False,
                             console=lambda s: None, consortium_path=consortium_path)
    finally:
        mp.undo()
        for f in opt_ins:
            f.unlink(missing_ok=True)
    data = load_prepared(partners["partner-1"].prepared_dir)
    local = train_local(data, tmp_path_factory.mktemp("local") / "partner-1", consortium.model, consortium.training)
    longer = train_local(data, tmp_path_factory.mktemp("local") / "partner-1-longer", consortium.model,
                         consortium.training.model_copy(update={"epochs": ROUNDS + FINETUNE}))
    return fed, local, longer


def test_one_partner_alone_federated_equals_train_local_round_by_round(alone_run):
    fed, local, longer = alone_run
    pdir = fed.run_dir / "partners" / "partner-1"
    assert fed.ledger.rounds[0].survivors == ["partner-1"] and fed.ledger.completed_rounds == ROUNDS
    logs = [json.loads((pdir / "logs" / f"round_{r:03d}.json").read_text()) for r in range(1, ROUNDS + 1)]
    assert [g["optimizer_from"] for g in logs] == ["new"] + ["previous round"] * (ROUNDS - 1)
    metrics = json.loads((pdir / "metrics.json").read_text())
    # every round's model scored on validation as train-local scored every epoch's (float tolerance)
    fed_curve = {h["index"]: h for h in metrics["selection"]["history"]}
    assert sorted(fed_curve) == list(range(1, ROUNDS + 1))
    for row in local.history:
        for kind, value in row["validation"]["selection"].items():
            assert fed_curve[row["epoch"]][kind] == pytest.approx(value, abs=1e-5), (row["epoch"], kind)
    # the same rule chose the same round / epoch per kind, and its predictions agree
    assert {k: v for k, v in metrics["selected"].items()} == local.selected
    got = load_predictions(pdir / "test_predictions.npz")
    assert np.allclose(got.class_scores, local.test.predictions.class_scores, atol=1e-5)
    assert np.allclose(got.regr_preds, local.test.predictions.regr_preds, atol=1e-4)
    # the trunk train-local kept (its chosen epoch) against the federated trunk of that round
    held = json.loads((local.out_dir / "model.json").read_text())["epoch"]
    a, b = load_params(trunk_path(fed.run_dir, held))[0], load_params(local.out_dir / "trunk.npz")[0]
    assert max(float(np.max(np.abs(a[k] - b[k]))) for k in a) < 1e-5
    # the third model: fine-tuning the last round alone, its Adam going on, is train-local's next epoch
    tuned = metrics["finetuned"]
    assert tuned["epochs"] == FINETUNE and tuned["selected"] == {k: 1 for k in local.selected}
    for kind, value in longer.history[ROUNDS]["validation"]["selection"].items():
        assert tuned["selection"]["history"][0][kind] == pytest.approx(value, abs=1e-5), kind


def test_new_private_outputs_are_owner_only_and_pulled(alone_run):
    fed, _, _ = alone_run
    pdir = fed.run_dir / "partners" / "partner-1"
    ck = pdir / "checkpoints" / f"round_{ROUNDS:03d}"
    assert sorted(p.name for p in ck.iterdir()) == ["checkpoint.json", "head.npz", "optimizer.npz", "selection.npz"]
    for name in ("validation_predictions.npz", "last_test_predictions.npz", "test_predictions.npz",
                 "finetuned_test_predictions.npz"):
        assert (pdir / name).is_file()
    assert readable_by_others(fed.run_dir) == []
    for task in fed.tasks.values():
        for ident, readers in task.outputs:
            if ident in ("optimizer", "selection", "chosen_validation", "last_test", "finetuned"):
                assert tuple(readers) == (task.worker,), (task.name, ident)


def test_report_of_a_real_run_shows_all_three_models_and_conformal_figures(alone_run, tmp_path):
    from fedchem.orchestrator.report.compare import CompareSettings
    from fedchem.orchestrator.report.write import write_report

    fed, local, _ = alone_run
    html = write_report(fed.run_dir, "partner-1", alone_dir=local.out_dir, out_dir=tmp_path / "report",
                        settings=CompareSettings(replicates=100))
    fig = json.loads(html.with_name("report.json").read_text())["figures"]
    assert fig["selection"]["federated"] == fig["selection"]["alone"] == local.selected
    assert fig["last_round"]["round"] == ROUNDS and fig["finetuned"]["epochs"] == FINETUNE
    conf = fig["conformal"]
    assert conf and {t["kind"] for t in conf["tasks"]} == {"classification", "regression"}
    # one partner alone: the federated and the alone model are the same model, so are their conformal figures
    for t in conf["tasks"]:
        for key in ("efficiency", "width", "validity"):
            a, b = t["federated"].get(key), t["alone"].get(key)
            assert (a is None and b is None) or a == pytest.approx(b, abs=0.02), (t["task"], key)
