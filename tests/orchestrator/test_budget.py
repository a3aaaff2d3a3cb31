"""The DP budget the operator's `fedchem status` shows (from settings.json) and a partner's report computes (from
its own round logs): the same accountant, rounds not in the sum cost nothing, no DP shows nothing."""

from __future__ import annotations

import json
import math

import pytest

from fedchem.algo.config import DPConfig
from fedchem.algo.dp import accounting
from fedchem.orchestrator.budget import partner_budget_from_logs, summary_line
from fedchem.orchestrator.cli.main import main as cli_main
from fedchem.orchestrator.ledger import Ledger, RoundRecord

DP = {"clip_norm": 1.0, "noise_multiplier": 0.8, "delta": 1e-5}


def _ledger(tmp_path) -> Ledger:
    led = Ledger(run_name="r", settings_hash="x", partners=["a", "b", "c"], aggregator="agg", rounds_planned=4,
                 secure=True, status="running", completed_rounds=3, dropped={"b": 2})
    led.rounds = [RoundRecord(1, "p", ["a", "b", "c"], [], {}), RoundRecord(2, "p", ["a", "c"], ["b"], {}),
                  RoundRecord(3, "p", ["a", "c"], [], {})]
    led.save(tmp_path)
    return led


def test_status_shows_each_partners_epsilon(tmp_path, capsys):
    led = _ledger(tmp_path)
    (tmp_path / "settings.json").write_text(json.dumps({"secure_aggregation": {"threshold": None},
                                                        "differential_privacy": DP}))
    assert cli_main(["status", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    dp = DPConfig(**DP)
    a = accounting.epsilon([0.8 * math.sqrt(3 / 2), 0.8, 0.8], dp.delta)
    b = accounting.epsilon([0.8 * math.sqrt(3 / 2)], dp.delta)
    assert f"a {a:.3g}, b {b:.3g}, c {a:.3g}" in out and "epsilon at delta 1e-05" in out
    assert f"worst case: {accounting.epsilon([0.8] * 4, dp.delta):.3g}" in out
    (tmp_path / "settings.json").write_text(json.dumps({"differential_privacy": None}))
    assert summary_line({"differential_privacy": None}, led) is None
    assert cli_main(["status", str(tmp_path)]) == 0
    assert "differential privacy" not in capsys.readouterr().out


def test_report_budget_comes_from_the_partners_own_logs(tmp_path):
    led = _ledger(tmp_path)
    share = 0.8 * 2 * 1.0 / math.sqrt(2)
    logs = [{"round": r, "dp": {"clip_norm": 1.0, "noise_multiplier": 0.8, "delta": 1e-5, "threshold": 2,
                                "share_std": share}} for r in (1, 2)]  # b trained in rounds 1 and 2 ...
    b = partner_budget_from_logs("b", logs, led)
    # ... but the ledger has it in round 1's sum only; round 3 it did not train
    assert b.epsilon == pytest.approx(accounting.epsilon([0.8 * math.sqrt(1.5)], 1e-5))
    assert [r.in_sum for r in b.rounds] == [True, False, False]
    assert partner_budget_from_logs("b", [{"round": 1}], led) is None  # logs without DP: no budget claimed
