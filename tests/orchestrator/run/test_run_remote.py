"""`fedchem run --backend remote`: the same plan, privacy-checked the same way, no partner data uploaded, the
operator holding the aggregator's client only; each partner pulls its own results with its own client.

No Substra backend can run here, so the Substra SDK's remote client is the boundary: RecordingClient stands in for
`substra.Client(backend_type="remote")` (the only mock). It records what fedchem sends, shares listings the way a
Substra channel does, and answers downloads only for authorized organisations with a placeholder file (no task
runs: what is proven here is who asks for what, with which client, and where it lands).
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from fedchem.orchestrator.run import plan as planner
from fedchem.orchestrator.cli.main import main
from fedchem.orchestrator.config import load_all
from fedchem.orchestrator.ledger import Ledger
from fedchem.orchestrator.run.backend import network_from_clients
from fedchem.orchestrator.run.driver import run_federation

from fedsetup import build_small_consortium

ROOT = Path(__file__).resolve().parents[3]


class Channel:
    """What a Substra channel shares between its organisations: asset listings (names, owners, metadata) and the
    tasks of compute plans. The content of outputs stays with whoever may read it."""

    def __init__(self):
        self.datasets: list[dict] = []
        self.tasks: dict[str, object] = {}
        self.downloads: list[tuple[str, str, str]] = []  # (organisation, task key, identifier)


class RecordingClient:
    """Stand-in for one organisation's `substra.Client(backend_type="remote")` (the only mock: no Substra node can
    run here). It answers the SDK calls fedchem makes, with the channel's visibility rules, and "downloads" an
    output only for an organisation the task's permissions authorize, as a real backend does; a downloaded file
    holds the task key and output name, so a test can tell which output landed where."""

    keys = itertools.count()

    def __init__(self, name: str, org: str, channel: Channel):
        self.name, self.org, self.channel = name, org, channel
        self.datasets, self.samples = [], []

    def organization_info(self):
        return SimpleNamespace(organization_id=self.org)

    def list_dataset(self, *a, **k):
        return [SimpleNamespace(**d) for d in self.channel.datasets]

    def add_function(self, spec):
        return f"fn-{spec.name}"

    def add_dataset(self, spec):
        self.datasets.append(spec)
        key = f"ds-{self.name}-{next(self.keys)}"
        self.channel.datasets.append({"name": spec.name, "key": key, "owner": self.org, "data_sample_keys": [],
                                      "metadata": dict(spec.metadata or {})})
        return key

    def add_data_sample(self, spec, local=True):
        self.samples.append(spec)
        key = f"sample-{self.name}-{next(self.keys)}"
        for d in self.channel.datasets:
            if d["key"] in spec.data_manager_keys:
                d["data_sample_keys"].append(key)
        return key

    def add_compute_plan(self, spec, **k):
        self.channel.tasks.update({t.task_id: t for t in spec.tasks})

    def add_compute_plan_tasks(self, key, tasks, **k):
        self.channel.tasks.update({t.task_id: t for t in tasks.tasks})

    def get_task(self, key):
        t = self.channel.tasks[key]
        perm = lambda o: SimpleNamespace(process=SimpleNamespace(public=o.permissions.public,  # noqa: E731
                                                                 authorized_ids=list(o.permissions.authorized_ids)))
        return SimpleNamespace(key=key, worker=t.worker, status="STATUS_DONE", outputs={i: SimpleNamespace(permissions=perm(o))
                                                                  for i, o in t.outputs.items()})

    def download_model_from_task(self, key, identifier, folder):
        out = self.channel.tasks[key].outputs[identifier].permissions
        if not out.public and self.org not in out.authorized_ids:
            raise PermissionError(f"{self.org} may not read {identifier} of {key}")
        self.channel.downloads.append((self.org, key, identifier))
        path = Path(folder) / f"model_{key}"
        path.write_text(f"{key} {identifier}\n")
        return path


def _orgs(names):
    return {n: f"{n.title().replace('-', '')}MSP" for n in names} | {"aggregator": "PlatformMSP"}


def _nodes(consortium, partners, channel, prepared=None):
    """Each partner's node registers its own prepared data with its own client (what the chart's Job runs)."""
    from fedchem.orchestrator.node.register import register_prepared

    orgs = _orgs([p.name for p in consortium.partners])
    nodes = {}
    for ref in consortium.partners:
        nodes[ref.name] = RecordingClient(ref.name, orgs[ref.name], channel)
        register_prepared(nodes[ref.name], f"{ref.name}-prepared", orgs[ref.name],
                          (prepared or {}).get(ref.name, partners[ref.name].prepared_dir), opener=Path(__file__))
    return nodes, orgs


@pytest.fixture(scope="module")
def consortium_path(tmp_path_factory) -> Path:
    return build_small_consortium(tmp_path_factory.mktemp("remote"))


@pytest.fixture(scope="module")
def remote_run(consortium_path, tmp_path_factory):
    """A whole remote run at the SDK boundary: the operator holds the aggregator's client only."""
    consortium, partners = load_all(consortium_path)
    channel = Channel()
    nodes, orgs = _nodes(consortium, partners, channel)
    operator = RecordingClient("aggregator", orgs["aggregator"], channel)
    net = network_from_clients({"aggregator": operator}, "aggregator", orgs)
    lines = []
    run_dir = tmp_path_factory.mktemp("remote-run") / "run"
    run_federation(consortium, partners, run_dir, network=net, console=lines.append)
    return SimpleNamespace(consortium=consortium, partners=partners, channel=channel, nodes=nodes, orgs=orgs,
                           net=net, run_dir=run_dir, lines=lines)


def test_remote_run_submits_the_checked_plan_and_downloads_nothing_private(remote_run):
    consortium, channel, orgs = remote_run.consortium, remote_run.channel, remote_run.orgs
    names = [p.name for p in consortium.partners]
    assert list(remote_run.net.clients) == ["aggregator"]  # no partner token on the operator's side
    # no partner dataset or sample was uploaded by the operator: they were found on the partners' own nodes
    assert [d["owner"] for d in channel.datasets].count(orgs["aggregator"]) == 1  # the public starting trunk
    # the operator downloaded the trunk of each round, and nothing else; it holds no partner folder
    assert {ident for _, _, ident in channel.downloads} == {"trunk"}
    assert {org for org, _, _ in channel.downloads} == {orgs["aggregator"]}
    assert not (remote_run.run_dir / "partners").exists()
    ledger = Ledger.load(remote_run.run_dir)
    assert ledger.status == "completed" and ledger.secret_fingerprints["folds"]
    # the same plan the local mode builds (same builder, same checker), task for task
    net = remote_run.net
    ctx = planner.PlanContext(plan_id="00000000-0000-0000-0000-000000000000", partner_orgs={n: net.orgs[n] for n in names},
                              aggregator_org=net.orgs["aggregator"],
                              datasets={**{n: planner.DatasetKeys(f"ds-{n}", (f"sample-{n}",)) for n in names},
                                        "aggregator": planner.DatasetKeys("x", ("y",))},
                              publish_summary=consortium.federation.publish_summary)
    expected = {t.name: t for t in planner.full_plan(ctx, names, 1, consortium.federation.rounds)}
    sent = channel.tasks
    assert sorted(s.tag for s in sent.values()) == sorted(expected)
    assert len(sent) == len(expected)  # the whole plan at the SDK boundary (nobody dropped: no confirmation wave)
    for spec in sent.values():
        want = expected[spec.tag]
        assert spec.worker == want.worker
        got_out = {k: tuple(sorted(v.permissions.authorized_ids)) for k, v in spec.outputs.items()}
        assert got_out == {k: tuple(sorted(v)) for k, v in want.outputs if v != ("public",)} | \
            {k: () for k, v in want.outputs if v == ("public",)}
        assert sorted(i.identifier for i in spec.inputs) == sorted(r.identifier for r in want.inputs)
    # the ledger tells each partner what to pull: its own task keys and output names, nothing else
    for n in names:
        items = ledger.outputs[n]
        assert {i["kind"] for i in items} == {"head", "log", "metrics", "predictions", "trunk", "final_head"}
        for i in items:
            assert set(i) - {"with"} == {"kind", "round", "task_key", "identifier", "dest"}
            assert i.get("with", []) == (["optimizer", "selection"] if i["kind"] == "head" else [])
            if i["kind"] != "trunk":
                assert sent[i["task_key"]].worker == orgs[n] and sent[i["task_key"]].tag.split("/")[1] == n
    assert any("fedchem pull" in line for line in remote_run.lines)


def test_each_partner_pulls_its_own_results_with_its_own_client(remote_run, tmp_path):
    """Stand-in for `fedchem pull` on each partner's machine: its own client, into its own owner-only folder."""
    import shutil

    from fedchem.opener.fileio import readable_by_others
    from fedchem.orchestrator.run.pull import pull_partner

    run_dir = tmp_path / "copy"  # each partner has its own copy of the ledger on its own machine
    shutil.copytree(remote_run.run_dir, run_dir)
    ledger = Ledger.load(run_dir)
    old = os.umask(0)
    try:
        for n, client in remote_run.nodes.items():
            res = pull_partner(run_dir, n, client)
            assert sorted(res.pulled) == sorted(i["dest"] for i in ledger.outputs[n]) and not res.present
    finally:
        os.umask(old)
    for n, client in remote_run.nodes.items():
        pdir = run_dir / "partners" / n
        for i in ledger.outputs[n]:
            f = pdir / i["dest"] / "head.npz" if i["kind"] == "head" else pdir / i["dest"]
            assert f.read_text() == f"{i['task_key']} {i['identifier']}\n"  # the right output in the right file
        assert json.loads((pdir / "checkpoints" / "round_002" / "checkpoint.json").read_text())["round"] == 2
        assert readable_by_others(pdir) == []
        # every private download went through that partner's own organisation
        mine = {k for org, k, ident in remote_run.channel.downloads if org == client.org and ident != "trunk"}
        assert mine == {i["task_key"] for i in ledger.outputs[n] if i["kind"] != "trunk"}
        assert pull_partner(run_dir, n, client).pulled == []  # incremental: nothing new
    assert oct(os.stat(run_dir / "partners" / "partner-1").st_mode & 0o777) == "0o700"


def test_a_partner_refuses_to_pull_an_output_that_is_not_its_own(remote_run, tmp_path):
    """The ledger is the operator's: pointed at another partner's head, a partner's pull refuses (its own backend
    says the task ran elsewhere), and nothing is written."""
    import shutil

    from fedchem.opener.errors import PrivacyError
    from fedchem.orchestrator.run.pull import pull_partner

    run_dir = tmp_path / "copy"
    shutil.copytree(remote_run.run_dir, run_dir)
    ledger = Ledger.load(run_dir)
    theirs = next(i for i in ledger.outputs["partner-2"] if i["kind"] == "head")
    ledger.outputs["partner-1"] = [dict(theirs)]
    ledger.save(run_dir)
    with pytest.raises(PrivacyError, match="refused to pull"):
        pull_partner(run_dir, "partner-1", remote_run.nodes["partner-1"])
    assert not list((run_dir / "partners" / "partner-1").rglob("*.npz"))


def test_remote_run_refuses_partners_prepared_with_another_secret_or_for_another_partner(consortium_path, tmp_path):
    """What each node's registration published (partner name, keyed secret fingerprints) is checked before any task
    is submitted; the operator needs no secret for it."""
    from fedchem.opener.errors import ConfigError

    consortium, partners = load_all(consortium_path)
    for case in ("other partner", "other secret"):
        channel = Channel()
        prepared = {"partner-3": partners["partner-2"].prepared_dir} if case == "other partner" else None
        nodes, orgs = _nodes(consortium, partners, channel, prepared)
        if case == "other secret":
            meta = next(d for d in channel.datasets if d["owner"] == orgs["partner-3"])["metadata"]
            meta["fedchem_secret_folds"] = "0" * 64
        operator = RecordingClient("aggregator", orgs["aggregator"], channel)
        net = network_from_clients({"aggregator": operator}, "aggregator", orgs)
        with pytest.raises(ConfigError) as err:
            run_federation(consortium, partners, tmp_path / case.replace(" ", "-"), network=net,
                           console=lambda s: None)
        msg = err.value.message()
        assert ("prepared for partner 'partner-2'" in msg if case == "other partner" else
                "different consortium secrets" in msg and "partner-3" in msg), msg
        assert channel.tasks == {}


def test_remote_run_without_a_token_is_a_clear_error(capsys, monkeypatch):
    for var in ("FEDCHEM_TOKEN_PHARMA_A", "FEDCHEM_TOKEN_PHARMA_B", "FEDCHEM_TOKEN_PHARMA_C", "FEDCHEM_TOKEN_PLATFORM"):
        monkeypatch.delenv(var, raising=False)
    code = main(["run", str(ROOT / "partner_configs" / "consortium.yaml"), "--backend", "remote",
                 "--run-dir", str(ROOT / ".cache" / "never-created")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and "token" in err.lower()
    assert not (ROOT / ".cache" / "never-created").exists()
