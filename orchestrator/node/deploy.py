"""`make deploy-partner PARTNER=<name>`: the steps that put one organisation's node on its cluster.

Real run: generate values -> `helm repo add substra <Substra's repo>` -> copy the chart into the output folder and
`helm dependency build` it there (the checkout or installed package is never written) -> create the node's secrets
from local files (kubernetes client) -> `helm upgrade --install` into the node's namespace -> wait until its pods
are ready. Dry run: print every command, render the manifests with `helm template` (no cluster); when Substra's
repository is unreachable the render uses the offline stand-in charts, and says so. `uninstall_partner` removes a
node again (`make undeploy-partner`).
"""

from __future__ import annotations

import logging
import shlex
import shutil
import tempfile
from pathlib import Path

import yaml

from fedchem.opener.errors import FedchemError
from fedchem.opener.fileio import atomic_write_text
from fedchem.orchestrator.node.helm import CHART_DIR, PROJECT, Helm, copy_chart, render, standin_repo
from fedchem.orchestrator.node.values import SUBSTRA_REPO_URL, node_values, write_values
from fedchem.orchestrator.node.network import load_network
from fedchem.orchestrator.node.cluster import describe_material, secret_material
from fedchem.orchestrator.node.helm_install import find_helm

log = logging.getLogger(__name__)  # the CLI prints INFO lines to stdout (-q hides them)

# generated values, manifests and the built chart: .cache/deploy of a checkout, else of the current folder
DEFAULT_OUT = (PROJECT if (PROJECT / "pyproject.toml").is_file() else Path.cwd()) / ".cache" / "deploy"


def _install_args(release: str, namespace: str, values: Path, node, chart: Path) -> list[str]:
    d = node.deployment
    args = ["upgrade", "--install", release, str(chart), "--namespace", namespace, "--create-namespace",
            "-f", str(values), "--wait", "--timeout", f"{d.ready_timeout_s}s"]
    if d.secrets_dir is not None:  # substra-backend 26.14.2 reads the MinIO root password from values only
        args += ["--set-file", f"substra-backend.minio.auth.rootPassword={Path(d.secrets_dir) / 'objectstore-password'}"]
    if d.kube_context:
        args += ["--kube-context", d.kube_context]
    return args


def deploy_partner(consortium: Path, name: str, helm_path: Path | None = None, dry_run: bool = False,
                   out_dir: Path = DEFAULT_OUT, repo_url: str = SUBSTRA_REPO_URL, chart: Path = CHART_DIR) -> Path:
    """Deploy node `name` (or, with dry_run, print the steps and render its manifests). Returns the output folder.
    helm_path None: a helm v3 on PATH, else the pinned one. `chart`: the fedchem-node chart (default: ours)."""
    helm_path = find_helm(helm_path)
    network = load_network(consortium)
    values = node_values(network, name)
    node = network.nodes()[name]
    d = node.deployment
    out = Path(out_dir) / name
    values_path = write_values(values, out / "values.yaml")
    log.info(f"values for {name}: {values_path}")
    return (_dry_run if dry_run else _real_run)(network, node, values_path, Path(helm_path), repo_url, out,
                                                Path(chart))


def _dry_run(network, node, values_path: Path, helm_path: Path, repo_url: str, out: Path, chart_src: Path) -> Path:
    d = node.deployment
    log.info("DRY RUN: nothing is sent to a cluster; the commands of a real run are printed with '+'.")
    with tempfile.TemporaryDirectory(prefix="fedchem-deploy-") as tmp:
        tmp = Path(tmp)
        helm = Helm(helm_path, home=tmp / "helm-home", echo=True)
        chart = copy_chart(tmp / "fedchem-node", chart_src)
        reachable = helm.run("repo", "add", "substra", repo_url, check=False).returncode == 0
        if reachable:
            helm.run("dependency", "build", chart)
            manifests = _render_all(helm, chart, values_path, d, out)
        else:
            log.info("NOTE: Substra's chart repository is unreachable from here: rendering with the offline STAND-IN "
                  "charts (deploy/standins: same names and versions, not Substra's charts).")
            with standin_repo(helm, tmp) as url:
                helm.run("repo", "add", "substra", url, "--force-update")
                helm.run("dependency", "build", chart)
                manifests = _render_all(helm, chart, values_path, d, out)
    try:
        material = secret_material(node)
        lines = describe_material(material)
    except FedchemError as exc:
        names = d.secret_names.model_dump().values()
        lines = [f"secret {n}" for n in names] + [f"(not readable here: {exc.what}; a real run stops on this)"]
    for line in lines:
        log.info(f"+ kubernetes: create or replace in namespace {d.namespace}: {line}")
    log.info("+ " + shlex.join(["helm", *_install_args(d.release, d.namespace, values_path, node, CHART_DIR)]))
    log.info(f"+ kubernetes: wait until the pods of release {d.release} in namespace {d.namespace} are ready")
    log.info(f"manifests: {manifests}")
    return out


def _render_all(helm: Helm, chart: Path, values: Path, d, out: Path) -> Path:
    docs = render(helm, chart, values, d.release, d.namespace)
    path = out / "manifests.yaml"
    atomic_write_text(path, yaml.safe_dump_all(docs, sort_keys=False))
    kinds: dict[str, int] = {}
    for doc in docs:
        kinds[doc["kind"]] = kinds.get(doc["kind"], 0) + 1
    log.info("rendered: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())))
    return path


def _real_run(network, node, values_path: Path, helm_path: Path, repo_url: str, out: Path, chart_src: Path) -> Path:
    from fedchem.orchestrator.node.cluster import apply_secrets, core_api, require_tls, wait_ready

    d = node.deployment
    material = secret_material(node)  # read and checked before anything changes on the cluster
    api = core_api(d.kube_context)
    require_tls(api)
    helm = Helm(helm_path, echo=True)
    helm.run("repo", "add", "substra", repo_url, "--force-update")
    chart = out / "chart"
    if chart.exists():
        shutil.rmtree(chart)
    copy_chart(chart, chart_src)
    helm.run("dependency", "build", chart)
    for name in apply_secrets(api, d.namespace, material):
        log.info(f"secret {name} applied in namespace {d.namespace}")
    helm.run(*_install_args(d.release, d.namespace, values_path, node, chart), what="helm upgrade --install")
    status = wait_ready(api, node)
    log.info(f"node {node.name} is ready: {len(status.pods)} pods; web UI {status.frontend_url}, "
          f"API {status.backend_url}")
    return out


def uninstall_partner(consortium: Path, name: str, helm_path: Path | None = None,
                      delete_namespace: bool = False) -> list[str]:
    """Remove node `name`: `helm uninstall --wait`, then what helm leaves (hook Jobs, fedchem's secrets and, with
    delete_namespace, the namespace fedchem created). Returns what was removed."""
    from kubernetes.client.rest import ApiException

    from fedchem.orchestrator.node.cluster import batch_api, core_api, remove_node

    nodes = load_network(consortium).nodes()
    if name not in nodes:
        raise FedchemError(f"no node named '{name}' in this consortium", where=str(consortium),
                           fix=f"use one of: {', '.join(nodes)}")
    node = nodes[name]
    d = node.deployment
    api = core_api(d.kube_context)
    helm = Helm(find_helm(helm_path), echo=True)
    context = ["--kube-context", d.kube_context] if d.kube_context else []
    try:
        api.read_namespace(d.namespace)
        present = True
    except ApiException as exc:
        if exc.status != 404:
            raise
        present = False
    removed = []
    if present and helm.run("status", d.release, "--namespace", d.namespace, *context, check=False).returncode == 0:
        helm.run("uninstall", d.release, "--namespace", d.namespace, "--wait", "--timeout", f"{d.ready_timeout_s}s",
                 *context, what="helm uninstall")
        removed.append(f"release {d.release}")
    removed += remove_node(api, batch_api(d.kube_context), node, delete_namespace=delete_namespace)
    return removed
