"""Node operations through the `kubernetes` client: secrets from local files, readiness, status.

No cluster can run here: the only stand-in is `FakeCoreV1`, which answers the CoreV1Api calls node.py makes
(read/create namespace, create/replace secret, list pods) with the client's own model objects and ApiException,
and records them. Everything up to that boundary (file reading, checks, secret bodies, polling) is the real code.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fedchem.opener.errors import ConfigError, FedchemError
from fedchem.orchestrator.cli.main import main as cli_main
from fedchem.orchestrator.node.network import load_network
from fedchem.orchestrator.node.cluster import apply_secrets, node_status, secret_material, wait_ready
from nodefiles import fill_secrets as _fill_secrets

ROOT = Path(__file__).resolve().parents[3]


class FakeCoreV1:
    """The Kubernetes API boundary (see module docstring)."""

    def __init__(self, namespaces=(), secrets_=(), pods_sequence=()):
        self.namespaces, self.secrets, self.calls = set(namespaces), dict.fromkeys(secrets_), []
        self.pods_sequence = list(pods_sequence)

    def read_namespace(self, name):
        self.calls.append(("read_namespace", name))
        if name not in self.namespaces:
            raise ApiException(status=404, reason="Not Found")

    def create_namespace(self, body):
        self.calls.append(("create_namespace", body.metadata.name))
        self.namespaces.add(body.metadata.name)

    def create_namespaced_secret(self, namespace, body):
        self.calls.append(("create_secret", namespace, body.metadata.name))
        if body.metadata.name in self.secrets:
            raise ApiException(status=409, reason="Conflict")
        self.secrets[body.metadata.name] = body

    def replace_namespaced_secret(self, name, namespace, body):
        self.calls.append(("replace_secret", namespace, name))
        self.secrets[name] = body

    def list_namespaced_pod(self, namespace, label_selector=""):
        self.calls.append(("list_pods", namespace, label_selector))
        pods = self.pods_sequence.pop(0) if len(self.pods_sequence) > 1 else self.pods_sequence[0]
        return client.V1PodList(items=pods)


def pod(name, ready, phase="Running", restarts=0):
    st = client.V1ContainerStatus(name="c", image="i", image_id="", ready=ready, restart_count=restarts)
    return client.V1Pod(metadata=client.V1ObjectMeta(name=name),
                        status=client.V1PodStatus(phase=phase, container_statuses=[st]))


@pytest.fixture
def network():
    return load_network(ROOT / "partner_configs" / "consortium.yaml")


def _with_secrets_dir(node, root):
    return node.model_copy(update={"deployment": node.deployment.model_copy(update={"secrets_dir": root})})


def test_secret_material_builds_substra_account_files_from_local_files(network, tmp_path):
    node = _with_secrets_dir(network.partners["pharma-a"], tmp_path)
    written = _fill_secrets(node, tmp_path)
    m = secret_material(node)
    s = node.deployment.secret_names
    assert set(m) == {s.accounts, s.database, s.redis, s.objectstore, s.registration_login}
    incoming = m[s.accounts]["incoming_organizations"].splitlines()
    assert incoming == [f"{o} {written['incoming/' + o]}" for o in node.deployment.links.incoming]
    assert m[s.accounts]["users"] == f"admin {written['users/admin']} fedchem\n"
    assert m[s.registration_login] == {"username": "admin", "password": written["users/admin"]}
    platform = _with_secrets_dir(network.aggregator, tmp_path / "platform")
    _fill_secrets(platform, tmp_path / "platform")
    assert s.orchestrator_database in secret_material(platform)  # only the orchestrator host gets its DB secret


def test_short_password_is_refused_naming_the_file(network, tmp_path):
    node = _with_secrets_dir(network.partners["pharma-a"], tmp_path)
    _fill_secrets(node, tmp_path)
    (tmp_path / "redis-password").write_text("short-pass")
    with pytest.raises(ConfigError) as info:
        secret_material(node)
    assert "too short" in info.value.what and str(tmp_path / "redis-password") == info.value.where
    assert "short-pass" not in info.value.message()  # never echo a secret


def test_missing_secret_file_is_refused(network, tmp_path):
    node = _with_secrets_dir(network.partners["pharma-b"], tmp_path)
    _fill_secrets(node, tmp_path)
    (tmp_path / "outgoing" / "PharmaAMSP").unlink()
    with pytest.raises(ConfigError, match="outgoing password to 'PharmaAMSP' is missing"):
        secret_material(node)


def test_apply_secrets_creates_namespace_then_creates_or_replaces(network, tmp_path):
    node = _with_secrets_dir(network.partners["pharma-a"], tmp_path)
    _fill_secrets(node, tmp_path)
    material = secret_material(node)
    api = FakeCoreV1(secrets_={node.deployment.secret_names.redis})
    applied = apply_secrets(api, "fedchem-pharma-a", material)
    assert applied == list(material)
    assert ("create_namespace", "fedchem-pharma-a") in api.calls
    assert ("replace_secret", "fedchem-pharma-a", node.deployment.secret_names.redis) in api.calls
    body = api.secrets[node.deployment.secret_names.database]
    assert body.string_data == material[node.deployment.secret_names.database] and body.type == "Opaque"


def test_wait_ready_polls_until_every_pod_is_ready(network):
    node = network.partners["pharma-c"]
    api = FakeCoreV1(pods_sequence=[[], [pod("server", False), pod("job", False, "Succeeded")],
                                    [pod("server", True, restarts=2), pod("job", False, "Succeeded")]])
    sleeps = []
    status = wait_ready(api, node, timeout_s=60, poll_s=1, sleep=sleeps.append)
    assert status.healthy and len(sleeps) == 2
    assert api.calls[0] == ("list_pods", "fedchem-pharma-c", "app.kubernetes.io/instance=fedchem")
    assert {p.name: p.restarts for p in status.pods}["server"] == 2


def test_wait_ready_times_out_naming_the_pods(network):
    node = network.partners["pharma-c"]
    api = FakeCoreV1(pods_sequence=[[pod("worker-0", False), pod("server", True)]])
    now = [0.0]

    def sleep(s):
        now[0] += s

    with pytest.raises(FedchemError, match="worker-0"):
        wait_ready(api, node, timeout_s=30, poll_s=10, sleep=sleep, clock=lambda: now[0])


def test_node_status_reports_urls_and_pods(network):
    api = FakeCoreV1(pods_sequence=[[pod("b", True), pod("a", False, restarts=5)]])
    st = node_status(api, network.partners["pharma-a"])
    assert st.frontend_url == "https://substra.pharma-a.example.org" and not st.healthy
    assert [p.name for p in st.pods] == ["a", "b"] and st.not_ready() == ["a"]


def test_cli_secrets_dry_run_lists_names_and_keys_never_values(tmp_path, capsys):
    folder = tmp_path / "net"
    shutil.copytree(ROOT / "partner_configs", folder)
    text = (folder / "pharma-a.yaml").read_text().replace("../../fedchem-secrets/pharma-a", str(tmp_path / "s"))
    (folder / "pharma-a.yaml").write_text(text)
    node = load_network(folder / "consortium.yaml").partners["pharma-a"]
    written = _fill_secrets(node, tmp_path / "s")
    rc = cli_main(["node", "secrets", "pharma-a", "--consortium", str(folder / "consortium.yaml"), "--dry-run"])
    out = capsys.readouterr().out
    assert rc == 0 and "secret fedchem-accounts: keys incoming_organizations, outgoing_organizations, users" in out
    assert not any(v in out for v in written.values())
