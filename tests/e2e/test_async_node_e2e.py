"""The waiting driver against a node that runs tasks asynchronously, as a real Substra node does.

The node is a stand-in (tests/helpers/asyncnode.py: no Substra node can run here) over the real local backend:
submission returns at once, each task moves through the real SDK's statuses one poll at a time and then really runs
(real functions, real secure aggregation). The driver's code path is the one a remote run takes: a whole step per
submitting call, then waiting on each task's status.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from substra.sdk.models import ComputeTaskStatus as S

from fedchem.algo.params import load_params
from fedchem.opener.errors import RunStopped
from fedchem.orchestrator.config import load_all
from fedchem.orchestrator.ledger import Ledger
from fedchem.orchestrator.run.backend import TaskFailed
from fedchem.orchestrator.run.driver import run_federation

from asyncnode import ORDER, Scripted, async_network
from fedsetup import build_small_consortium


@pytest.fixture(scope="module")
def consortium_path(tmp_path_factory) -> Path:
    return build_small_consortium(tmp_path_factory.mktemp("async"))


def _fast(consortium, timeout: float = 120.0):
    """The consortium with a short poll interval (the stand-in advances one status per poll)."""
    fed = consortium.federation.model_copy(update={"task_timeout": timeout, "poll_interval": 0.01})
    return consortium.model_copy(update={"federation": fed})


def _run(consortium_path, run_dir, script=None, rounds=1, timeout=120.0):
    consortium, partners = load_all(consortium_path)
    names = [p.name for p in consortium.partners]
    net, node = async_network(names, consortium.federation.aggregator, script)
    lines: list[str] = []
    run_federation(_fast(consortium, timeout), partners, run_dir, rounds=rounds, network=net, console=lines.append)
    return node, lines


def test_a_run_waits_through_every_status_and_completes(consortium_path, tmp_path):
    node, lines = _run(consortium_path, tmp_path / "ok")
    ledger = Ledger.load(tmp_path / "ok")
    assert ledger.status == "completed" and ledger.completed_rounds == 1
    # every task moved through the statuses a real node reports, in order, and ended done
    for t in node.tasks.values():
        assert list(dict.fromkeys(t.polls)) == ORDER, (t.spec.tag, t.polls)
    # a round's train tasks went to the node in one call (they run side by side on the partners' nodes)
    assert sorted(next(c for c in node.submit_calls if c[0].startswith("train/"))) == \
        ["train/partner-1/1", "train/partner-2/1", "train/partner-3/1"]
    assert any("building its image" in s for s in lines) and any("waiting for a builder slot" in s for s in lines)
    assert (tmp_path / "ok" / "partners" / "partner-1" / "metrics.json").is_file()


@pytest.mark.parametrize("case", ["image build fails", "task fails while running"])
def test_a_partner_failing_drops_out_and_the_round_recovers(consortium_path, tmp_path, monkeypatch, case):
    """A build failure (the stand-in reports FAILED after building) and a real failure of the task's own code
    (FEDCHEM_TEST_FAIL makes the real train function raise on the local backend): the partner drops out. Failing
    or being canceled after every other status is tests/orchestrator/run/test_waiting.py."""
    script = None
    if case == "image build fails":
        script = [Scripted("train/partner-2/1", "fail", S.building)]
    else:
        monkeypatch.setenv("FEDCHEM_TEST_FAIL", "partner-2:1:train")
    run_dir = tmp_path / "drop"
    node, lines = _run(consortium_path, run_dir, script)
    ledger = Ledger.load(run_dir)
    assert ledger.status == "completed"
    assert ledger.rounds[0].dropped == ["partner-2"] and ledger.rounds[0].survivors == ["partner-1", "partner-3"]
    assert S.failed in next(t for t in node.tasks.values() if t.spec.tag == "train/partner-2/1").polls
    assert any("partner-2: FAILED during training" in s for s in lines)
    assert not (run_dir / "partners" / "partner-2" / "metrics.json").exists()
    assert (run_dir / "partners" / "partner-1" / "metrics.json").is_file()


def test_a_release_failing_while_building_still_unmasks_with_the_threshold(consortium_path, tmp_path):
    run_dir = tmp_path / "release"
    node, lines = _run(consortium_path, run_dir, [Scripted("release/partner-3/1", "fail", S.building)])
    assert Ledger.load(run_dir).status == "completed"
    assert any("partner-3: failed to release its shares" in s for s in lines)


@pytest.mark.slow
def test_a_failed_aggregation_is_a_clean_stop(consortium_path, tmp_path):
    run_dir = tmp_path / "agg"
    with pytest.raises(RunStopped, match="aggregation failed"):
        _run(consortium_path, run_dir, [Scripted("aggregate/1", "fail", S.executing)])
    ledger = Ledger.load(run_dir)
    assert ledger.status == "stopped" and ledger.completed_rounds == 0


def test_a_key_setup_task_failing_cancels_its_children_and_fails_the_run(consortium_path, tmp_path):
    run_dir = tmp_path / "setup"
    with pytest.raises(TaskFailed):
        node, _ = _run(consortium_path, run_dir, [Scripted("keygen/partner-1", "fail", S.building)])
    ledger = Ledger.load(run_dir)
    assert ledger.status == "failed" and ledger.message.startswith("key setup failed")
    assert "deal_shares/partner-1" in ledger.message  # canceled: its parent failed


def test_a_timeout_stops_cleanly_then_resume_completes(consortium_path, tmp_path):
    """A task stuck waiting for a builder slot: the run stops within the timeout (exit 3), cancels its plan on the
    node and says how to resume; `--resume` (here on a healthy node) completes from the last completed round."""
    run_dir = tmp_path / "late"
    consortium, partners = load_all(consortium_path)
    names = [p.name for p in consortium.partners]
    net, node = async_network(names, consortium.federation.aggregator,
                              [Scripted("train/partner-1/2", "hang", S.waiting_for_builder_slot)])
    lines: list[str] = []
    with pytest.raises(RunStopped) as err:
        run_federation(_fast(consortium, timeout=15.0), partners, run_dir, network=net, console=lines.append)
    assert err.value.exit_code == 3 and "train/partner-1/2" in err.value.message()
    ledger = Ledger.load(run_dir)
    assert ledger.status == "stopped" and ledger.completed_rounds == 1 and "did not finish" in ledger.message
    assert node.canceled == [ledger.plans[-1]["plan_id"]]
    assert any("--resume" in s for s in lines)
    net2, _ = async_network(names, consortium.federation.aggregator)
    run_federation(_fast(consortium), partners, run_dir, resume=True, network=net2, console=lambda s: None)
    ledger = Ledger.load(run_dir)
    assert ledger.status == "completed" and ledger.completed_rounds == 2 and len(ledger.plans) == 2
    trunk = load_params(run_dir / "aggregator" / "trunk.npz")[0]
    assert all(np.isfinite(v).all() for v in trunk.values())
