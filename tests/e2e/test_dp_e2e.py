"""A DP run on the real Substra SDK (subprocess backend): secure aggregation on, differential privacy agreed by every
partner, one partner dropping out in round 1. The operator's plan claims no DP (its trunk metadata and settings
carry none): the partners add their noise all the same, because they read DP from their own agreement. The noise
is measured on the published trunk, and the budget shows in a survivor's report (from its own logs)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fedchem.algo.config import DPConfig
from fedchem.algo.dp import accounting
from fedchem.algo.params import flatten, load_params
from fedchem.opener.dataset import load_prepared
from fedchem.orchestrator.cli.main import main as cli_main
from fedchem.orchestrator.config import load_all
from fedchem.orchestrator.ledger import Ledger
from fedchem.orchestrator.run import setup
from fedchem.orchestrator.run.driver import run_federation

from fedsetup import SMALL, build_small_consortium

DP = {"clip_norm": 0.5, "noise_multiplier": 0.05, "delta": 1e-5}
# threshold 2 of 3: each partner's share std is 0.05 * 2 * 0.5 / sqrt(2); the ring bound needs 0.5 + 12 shares
RING = {"ring_bits": 64, "clip": 1.0}

# one 2-round run with a dropout (~1.5 min on 2 cores under load): in the default suite, it is the proof that a DP
# run completes on Substra with secure aggregation on and a dropout


@pytest.fixture(scope="module")
def dp_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("dp")
    federation = {**SMALL["federation"], "differential_privacy": DP, "secure_aggregation": RING}
    cpath = build_small_consortium(root, overrides={"federation": federation})
    consortium, partners = load_all(cpath)
    mp = pytest.MonkeyPatch()
    mp.setenv("FEDCHEM_TEST_FAIL", "partner-2:1:train")
    honest = setup.run_settings  # an operator whose plan says "no DP" in every trunk's metadata and settings.json
    mp.setattr(setup, "run_settings", lambda *a: {**honest(*a), "differential_privacy": None})
    try:
        res = run_federation(consortium, partners, root / "run", console=lambda s: None, consortium_path=cpath)
    finally:
        mp.undo()
    return res.run_dir, cpath, partners


def _trunk_before(run_dir, r, cpath):
    if r > 1:
        return flatten(load_params(run_dir / "aggregator" / "trunks" / f"round_{r - 1:03d}.npz")[0])[0]
    from fedchem.algo.model import init_trunk, trunk_to_arrays  # the plan's initial trunk, as the driver makes it

    consortium, _ = load_all(cpath)
    after = load_params(run_dir / "aggregator" / "trunks" / "round_001.npz")[0]
    n_features = after["input.weight"].shape[0]
    return flatten(trunk_to_arrays(init_trunk(n_features, consortium.model, consortium.training.seed)))[0]


def _round_change(run_dir, r, cpath):
    before = _trunk_before(run_dir, r, cpath)
    after = flatten(load_params(run_dir / "aggregator" / "trunks" / f"round_{r:03d}.npz")[0])[0]
    return after.astype(np.float64) - before.astype(np.float64)


def test_dp_run_completes_with_a_dropout_and_carries_the_agreed_noise(dp_run):
    run_dir, cpath, _ = dp_run
    ledger = Ledger.load(run_dir)
    assert ledger.secure and ledger.status == "completed"
    assert ledger.rounds[0].survivors == ["partner-1", "partner-3"] and ledger.dropped == {"partner-2": 1}
    dp = DPConfig(**DP)
    t, s = 2, 2
    for r in (1, 2):
        change = _round_change(run_dir, r, cpath)
        # the mean of s survivors: (sum of clipped updates + noise of variance s*sigma^2/t) / s
        expected = dp.sigma * math.sqrt(s / t) / s
        signal_bound = dp.clip_norm / math.sqrt(change.size)  # RMS of the clipped part, at most
        assert np.count_nonzero(change == 0) == 0  # no coordinate escapes the noise
        rms = float(np.sqrt(np.mean(change ** 2)))
        assert abs(rms - expected) <= 0.02 * expected + signal_bound, (rms, expected)
    for p in ("partner-1", "partner-3"):
        logs = sorted((run_dir / "partners" / p / "logs").glob("round_*.json"))
        dp_logs = [json.loads(f.read_text()).get("dp") for f in logs]
        dp_logs = [d for d in dp_logs if d]
        assert len(dp_logs) == 2, logs
        assert all(d["share_std"] == pytest.approx(dp.sigma / math.sqrt(t)) and d["max_abs"] <= RING["clip"]
                   for d in dp_logs)


def test_report_shows_the_budget_the_partner_applied(dp_run, tmp_path, capsys):
    from fedchem.algo.train_local import train_local
    from fedchem.orchestrator.report.write import write_report

    run_dir, cpath, partners = dp_run
    dp = DPConfig(**DP)
    settings = json.loads((run_dir / "settings.json").read_text())
    assert settings["differential_privacy"] is None  # what the operator claimed
    assert cli_main(["status", str(run_dir)]) == 0
    assert "differential privacy" not in capsys.readouterr().out  # the operator's view follows its own settings
    want = accounting.epsilon([dp.noise_multiplier] * 2, dp.delta)  # 2 rounds, 2 survivors of threshold 2
    consortium, _ = load_all(cpath)
    alone = tmp_path / "alone"
    train_local(load_prepared(partners["partner-1"].prepared_dir), alone, consortium.model, consortium.training)
    html = write_report(run_dir, "partner-1", alone_dir=alone)
    doc = json.loads((html.parent / "report.json").read_text())
    assert doc["privacy"]["epsilon"] == pytest.approx(want)
    assert [r["in_sum"] for r in doc["privacy"]["rounds"]] == [True, True]
    assert doc["run"]["differential privacy"].startswith(f"on: epsilon {want:.3g} at delta 1e-05")
    assert "if one partner colluded with the aggregator: epsilon" in doc["run"]["differential privacy"]
    page = html.read_text()
    assert "Differential privacy, round by round" in page and f"{want:.3g}" in page
