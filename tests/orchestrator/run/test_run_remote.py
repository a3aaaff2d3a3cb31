"""`fedchem run --backend remote`: the same plan, privacy-checked the same way, and no partner data uploaded.

No Substra backend can run here, so the Substra SDK's remote client is the boundary: RecordingClient stands in for
`substra.Client(backend_type="remote")` (the only mock), records what the orchestrator sends, and stops the run
at the first download (which would need tasks to have run on real nodes).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from types import SimpleNamespace

import pytest

from fedchem.orchestrator.run import plan as planner
from fedchem.orchestrator.cli.main import main
from fedchem.orchestrator.config import load_all
from fedchem.orchestrator.run.driver import run_federation
from fedchem.orchestrator.run.backend import network_from_clients

from fedsetup import build_small_consortium

ROOT = Path(__file__).resolve().parents[3]


class StopAtBoundary(Exception):
    pass


class RecordingClient:
    """Answers the SDK calls the orchestrator makes on a remote backend; records them."""

    keys = itertools.count()

    def __init__(self, name: str, org: str):
        self.name, self.org = name, org
        self.datasets, self.samples, self.tasks = [], [], []

    def organization_info(self):
        return SimpleNamespace(organization_id=self.org)

    def list_dataset(self, *a, **k):
        if self.name == "aggregator":
            return []
        return [SimpleNamespace(name=f"{self.name}-prepared", key=f"ds-{self.name}",
                                data_sample_keys=[f"sample-{self.name}"], metadata={})]

    def add_function(self, spec):
        return f"fn-{spec.name}"

    def add_dataset(self, spec):
        self.datasets.append(spec)
        return f"ds-{self.name}-{next(self.keys)}"

    def add_data_sample(self, spec, local=True):
        self.samples.append(spec)
        return f"sample-{self.name}-{next(self.keys)}"

    def add_compute_plan(self, spec, **k):
        self.tasks += spec.tasks

    def add_compute_plan_tasks(self, key, tasks, **k):
        self.tasks += tasks.tasks

    def download_model_from_task(self, *a, **k):
        raise StopAtBoundary()


@pytest.fixture(scope="module")
def consortium_path(tmp_path_factory) -> Path:
    return build_small_consortium(tmp_path_factory.mktemp("remote"))


def test_remote_run_submits_the_checked_plan_and_uploads_no_partner_data(consortium_path, tmp_path):
    consortium, partners = load_all(consortium_path)
    names = [p.name for p in consortium.partners]
    clients = {n: RecordingClient(n, f"{n.title().replace('-', '')}MSP") for n in names}
    clients["aggregator"] = RecordingClient("aggregator", "PlatformMSP")
    net = network_from_clients(clients, "aggregator")
    with pytest.raises(StopAtBoundary):
        run_federation(consortium, partners, tmp_path / "run", network=net, console=lambda s: None)
    # no partner dataset or sample was uploaded: they were found on the partners' own nodes
    for n in names:
        assert clients[n].datasets == [] and clients[n].samples == []
    assert len(clients["aggregator"].datasets) == 1  # the public starting trunk
    sent = {t.task_id: t for t in clients["aggregator"].tasks}
    # the same plan the local mode builds (same builder, same checker), task for task
    ctx = planner.PlanContext(plan_id="00000000-0000-0000-0000-000000000000", partner_orgs={n: net.orgs[n] for n in names},
                              aggregator_org=net.orgs["aggregator"],
                              datasets={**{n: planner.DatasetKeys(f"ds-{n}", (f"sample-{n}",)) for n in names},
                                        "aggregator": planner.DatasetKeys("x", ("y",))})
    expected = {t.name: t for t in planner.full_plan(ctx, names, 1, consortium.federation.rounds)}
    assert len(sent) == 1 + 2 * len(names) + 3 * len(names) + 1  # setup, round 1 trains, confirms, releases, aggregate
    for spec in sent.values():
        want = expected[spec.tag]
        assert spec.worker == want.worker
        got_out = {k: tuple(sorted(v.permissions.authorized_ids)) for k, v in spec.outputs.items()}
        assert got_out == {k: tuple(sorted(v)) for k, v in want.outputs}
        assert not any(v.permissions.public for v in spec.outputs.values())
        assert sorted(i.identifier for i in spec.inputs) == sorted(r.identifier for r in want.inputs)


def test_remote_run_without_a_token_is_a_clear_error(capsys, monkeypatch):
    for var in ("FEDCHEM_TOKEN_PHARMA_A", "FEDCHEM_TOKEN_PHARMA_B", "FEDCHEM_TOKEN_PHARMA_C", "FEDCHEM_TOKEN_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    code = main(["run", str(ROOT / "partner_configs" / "consortium.yaml"), "--backend", "remote",
                 "--run-dir", str(ROOT / ".cache" / "never-created")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "token" in err.lower()
    assert not (ROOT / ".cache" / "never-created").exists()
