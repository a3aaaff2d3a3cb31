"""`fedchem node secrets|deploy|status|uninstall` and `make deploy-partner` against a REAL Kubernetes API server.

The control plane is real (etcd, kube-apiserver, controller-manager and scheduler v1.20.2: validation, admission,
RBAC, Jobs creating pods, the scheduler refusing a pod whose claim is missing, the volume binder, namespace
finalisation). What cannot exist here is played and said so:
- THE TEST PLAYS THE KUBELET (conftest / kubecluster.Kubelet): a Ready Node object, and the phases of pods the real
  scheduler bound to it patched through the API (a Job's pod -> Succeeded, any other pod -> Running and ready).
- Substra's charts are the STAND-IN charts of deploy/standins (same names and versions), served from loopback,
  because Substra's chart repository cannot be reached from here.
- The fedchem-node chart is a TEST COPY whose `kubeVersion` is relaxed from >= 1.25 to >= 1.20, because this
  server is 1.20.2 (the only one that can be built here); nothing else in the chart is changed.
The tests of this module run in order and share one deployment (platform first, then a partner).
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from pathlib import Path

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from fedchem.orchestrator.cli.main import main as cli_main
from fedchem.orchestrator.node.cluster import secret_material
from fedchem.orchestrator.node.helm import CHART_DIR, Helm, copy_chart, standin_repo
from fedchem.orchestrator.node.helm_install import install_helm
from fedchem.orchestrator.node.network import load_network
from kubecluster import write_kubeconfig
from nodefiles import fill_secrets, network_copy

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parents[3]
PARTNER, PLATFORM = "pharma-a", "platform"
CLAIM = "fedchem-prepared"


@pytest.fixture(scope="module")
def site(control_plane, tmp_path_factory):
    """The network's node files (secrets in a temp folder), the relaxed chart copy, the stand-in repository, and
    an environment (KUBECONFIG, isolated HELM_* homes) for the CLI and make."""
    tmp = tmp_path_factory.mktemp("site")
    consortium = network_copy(tmp / "net", tmp / "secrets", ready_timeout_s=240)
    network = load_network(consortium)
    for name in (PARTNER, PLATFORM, "pharma-b"):
        fill_secrets(network.nodes()[name], tmp / "secrets" / name)
    chart = copy_chart(tmp / "fedchem-node", CHART_DIR)
    text = (chart / "Chart.yaml").read_text()
    assert 'kubeVersion: ">= 1.25.0-0"' in text
    # TEST COPY: kubeVersion relaxed for the 1.20.2 API server built here (see module docstring)
    (chart / "Chart.yaml").write_text(text.replace('kubeVersion: ">= 1.25.0-0"', 'kubeVersion: ">= 1.20.0-0"'))
    env = dict(os.environ, KUBECONFIG=str(control_plane.kubeconfig))
    home = tmp / "helm-home"
    env.update(HELM_CACHE_HOME=str(home / "cache"), HELM_CONFIG_HOME=str(home / "config"),
               HELM_DATA_HOME=str(home / "data"), HELM_REPOSITORY_CONFIG=str(home / "config" / "repositories.yaml"),
               HELM_REPOSITORY_CACHE=str(home / "cache" / "repository"))
    helm = Helm(install_helm(ROOT / ".tools"), home=home)  # the pinned helm make uses (installed once)
    with standin_repo(helm, tmp) as url:
        yield {"tmp": tmp, "consortium": consortium, "network": network, "chart": chart, "env": env, "repo": url,
               "helm": helm}


@pytest.fixture(scope="module")
def core(control_plane):
    return client.CoreV1Api(control_plane.api_client())


@pytest.fixture
def in_cluster_env(site, monkeypatch):
    """The in-process CLI sees the test cluster through KUBECONFIG, as a user's shell would."""
    monkeypatch.setenv("KUBECONFIG", site["env"]["KUBECONFIG"])


def _secret_values(core, namespace: str) -> dict[str, dict[str, str]]:
    found = core.list_namespaced_secret(namespace, label_selector="app.kubernetes.io/managed-by=fedchem").items
    return {s.metadata.name: {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()} for s in found}


def _make(site, target: str, partner: str, *extra: str) -> subprocess.Popen:
    cmd = ["make", "-C", str(ROOT), "--no-print-directory", target, f"PARTNER={partner}",
           f"CONSORTIUM={site['consortium']}", *extra]
    return subprocess.Popen(cmd, env=site["env"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _deploy(site, partner: str) -> subprocess.Popen:
    return _make(site, "deploy-partner", partner, f"SUBSTRA_REPO={site['repo']}", f"CHART={site['chart']}")


def _finish(proc: subprocess.Popen, timeout: float = 300) -> str:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def _until(what: str, check, timeout: float = 90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def test_secrets_are_applied_idempotently_and_never_sent_in_plaintext(site, core, in_cluster_env, capsys, tmp_path):
    node = site["network"].nodes()[PARTNER]
    ns = node.deployment.namespace
    expected = secret_material(node)
    args = ["node", "secrets", PARTNER, "--consortium", str(site["consortium"])]
    assert cli_main(args) == 0
    first = _secret_values(core, ns)
    assert first == expected  # exactly the material read from the local files, byte for byte
    assert cli_main(args) == 0  # a second run replaces, never duplicates nor fails on 409
    assert _secret_values(core, ns) == expected
    assert core.read_namespace(ns).metadata.labels["app.kubernetes.io/managed-by"] == "fedchem"
    # nothing else of ours in the namespace (the controller-manager adds the default service account's token)
    others = [s.metadata.name for s in core.list_namespaced_secret(ns).items
              if s.metadata.name not in expected and s.type != "kubernetes.io/service-account-token"]
    assert others == []
    capsys.readouterr()

    # plaintext HTTP or an unchecked certificate: refused before anything is sent (pharma-b's namespace stays absent)
    server = core.api_client.configuration.host
    for name, kubeconfig in (
            ("http", write_kubeconfig(tmp_path / "http", server.replace("https://", "http://"), None)),
            ("insecure", write_kubeconfig(tmp_path / "insecure", server, None, insecure=True))):
        os.environ["KUBECONFIG"] = str(kubeconfig)
        rc = cli_main(["node", "secrets", "pharma-b", "--consortium", str(site["consortium"])])
        err = capsys.readouterr().err
        assert rc == 2, name
        assert ("plaintext HTTP" if name == "http" else "insecure-skip-tls-verify") in err, err
    with pytest.raises(ApiException) as info:
        core.read_namespace(site["network"].nodes()["pharma-b"].deployment.namespace)
    assert info.value.status == 404


def test_make_deploy_partner_installs_the_platform(site, core, in_cluster_env, capsys):
    out = _finish(_deploy(site, PLATFORM))
    assert "node platform is ready" in out, out
    assert "STAND-IN" not in out  # a real run reports no stand-in: the repository URL was given as Substra's
    ns = site["network"].nodes()[PLATFORM].deployment.namespace
    status = site["helm"].run("status", "fedchem", "--namespace", ns, "--kubeconfig", site["env"]["KUBECONFIG"])
    assert "STATUS: deployed" in status.stdout
    assert not client.BatchV1Api(core.api_client).list_namespaced_job(ns).items  # the platform registers no data
    assert cli_main(["node", "status", PLATFORM, "--consortium", str(site["consortium"])]) == 0
    printed = capsys.readouterr().out
    assert "healthy" in printed and "Running" in printed


def test_registration_job_waits_for_the_prepared_data_claim(site, core, in_cluster_env, capsys):
    """The partner's deploy blocks on the registration Job, whose pod the real scheduler refuses until the
    prepared-data PVC exists; once the claim exists (bound by the real volume binder) it is scheduled and runs."""
    ns = site["network"].nodes()[PARTNER].deployment.namespace
    proc = _deploy(site, PARTNER)
    output: list[str] = []
    reader = threading.Thread(target=lambda: output.append(proc.communicate(timeout=400)[0]), daemon=True)
    reader.start()
    selector = "fedchem.io/component=register-dataset"

    def refused():
        for pod in core.list_namespaced_pod(ns, label_selector=selector).items:
            for c in pod.status.conditions or []:
                if c.type == "PodScheduled" and c.status == "False" and c.reason == "Unschedulable":
                    return pod, c.message
        return None

    pod, message = _until("the registration pod to be refused by the scheduler", refused, timeout=180)
    assert f'persistentvolumeclaim "{CLAIM}" not found' in message
    assert pod.spec.node_name is None and pod.status.phase == "Pending"
    time.sleep(2)  # still refused while the claim is missing
    assert core.read_namespaced_pod(pod.metadata.name, ns).spec.node_name is None
    assert cli_main(["node", "status", PARTNER, "--consortium", str(site["consortium"])]) == 1  # not ready yet
    printed = capsys.readouterr().out
    assert "NOT READY" in printed and "Pending" in printed

    # the partner's storage: a PV holding the prepared folder, and the claim the chart names
    core.create_persistent_volume({"apiVersion": "v1", "kind": "PersistentVolume",
                                   "metadata": {"name": "pharma-a-prepared-data"},
                                   "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadOnlyMany"],
                                            "hostPath": {"path": str(site["tmp"] / "prepared")},
                                            "storageClassName": "manual",
                                            "persistentVolumeReclaimPolicy": "Retain"}})
    claimed_at = time.time()
    core.create_namespaced_persistent_volume_claim(ns, {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": CLAIM},
        "spec": {"accessModes": ["ReadOnlyMany"], "storageClassName": "manual",
                 "resources": {"requests": {"storage": "1Gi"}}}})
    reader.join(timeout=300)
    assert output and proc.returncode == 0, output
    assert "node pharma-a is ready" in output[0]
    assert core.read_namespaced_persistent_volume_claim(CLAIM, ns).status.phase == "Bound"
    jobs = client.BatchV1Api(core.api_client).list_namespaced_job(ns, label_selector=selector).items
    assert len(jobs) == 1 and jobs[0].status.succeeded == 1
    pods = core.list_namespaced_pod(ns, label_selector=selector).items
    assert [p.status.phase for p in pods] == ["Succeeded"] and pods[0].spec.node_name == "test-node"
    scheduled = next(c for c in pods[0].status.conditions if c.type == "PodScheduled" and c.status == "True")
    assert scheduled.last_transition_time.timestamp() >= int(claimed_at)  # scheduled only after the claim existed


def test_node_status_reports_the_real_pod_phases(site, core, in_cluster_env, capsys):
    assert cli_main(["node", "status", PARTNER, "--consortium", str(site["consortium"])]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "healthy" in lines[0]
    ns = site["network"].nodes()[PARTNER].deployment.namespace
    pods = core.list_namespaced_pod(ns, label_selector="app.kubernetes.io/instance=fedchem").items
    assert {p.status.phase for p in pods} == {"Running", "Succeeded"}
    for p in pods:  # every pod of the release, with the phase the API holds
        line = next(ln for ln in lines if p.metadata.name in ln)
        assert p.status.phase in line.split()


def _leftovers(api_client, namespace: str) -> list[str]:
    """Every object in the namespace, of every listable namespaced kind the server serves (discovery)."""
    from kubernetes.dynamic import DynamicClient

    dyn = DynamicClient(api_client)
    found = []
    for res in dyn.resources.search():
        if not getattr(res, "namespaced", False) or "list" not in (res.verbs or []) or "/" in res.name:
            continue
        try:
            items = res.get(namespace=namespace).items
        except Exception:  # a kind the server lists only cluster-wide
            continue
        found += [f"{res.kind}/{i.metadata.name}" for i in items]
    return sorted(set(found))


def test_uninstall_leaves_nothing_behind(site, core, in_cluster_env):
    ns = site["network"].nodes()[PARTNER].deployment.namespace
    before = _leftovers(core.api_client, ns)
    assert any(x.startswith("Job/") for x in before) and any(x.startswith("Deployment/") for x in before)
    out = _finish(_make(site, "undeploy-partner", PARTNER))
    assert "release fedchem" in out and "job fedchem-fedchem-register-dataset" in out, out
    left = [x for x in _leftovers(core.api_client, ns) if not x.startswith("Event/")]  # the API's own event log
    # what Kubernetes itself keeps in every namespace, and the partner's own data claim (its data: never deleted)
    own = {"ConfigMap/kube-root-ca.crt", "ServiceAccount/default", f"PersistentVolumeClaim/{CLAIM}"}
    assert [x for x in left if x not in own and not x.startswith("Secret/default-token-")] == [], left

    platform_ns = site["network"].nodes()[PLATFORM].deployment.namespace
    _finish(_make(site, "undeploy-partner", PLATFORM, "DELETE_NAMESPACE=1"))
    with pytest.raises(ApiException) as info:
        core.read_namespace(platform_ns)
    assert info.value.status == 404
    assert cli_main(["node", "uninstall", PLATFORM, "--consortium", str(site["consortium"])]) == 0  # idempotent


def test_missing_binaries_are_reported_so_the_tests_skip_saying_why(monkeypatch, tmp_path):
    """A clone without ../shared/k8s or etcd skips the tests above with the reason find_binaries gives."""
    from kubecluster import find_binaries

    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    found, why = find_binaries()
    assert found is None and why == f"KUBEBUILDER_ASSETS={tmp_path} holds no etcd and kube-apiserver"
    monkeypatch.delenv("KUBEBUILDER_ASSETS")
    monkeypatch.setenv("PATH", str(tmp_path))
    found, why = find_binaries()
    assert found is None and "no etcd on PATH" in why
