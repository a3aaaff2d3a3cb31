"""The fedchem-node umbrella chart with the real helm v3.19.0 binary, output validated by kubernetes-validate.

helm is installed by the same step users run (`deploy/install_helm.py`, called by `make helm` / `make
deploy-partner`), cached in .tools/. Substra's chart repository (https://substra.github.io/charts/) cannot be
reached from here: these tests serve STAND-IN charts of the same names and versions (deploy/standins) from a
loopback HTTP server under the `substra` alias, so `helm dependency build`, `lint --strict` and `template` run
for real; what Substra's own templates would add is not rendered. No cluster is involved.
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from fedchem.opener.errors import ConfigError
from fedchem.orchestrator.node.helm import Helm, copy_chart, render, standin_repo
from fedchem.orchestrator.node.values import node_values, write_values
from fedchem.orchestrator.node.network import load_network

ROOT = Path(__file__).resolve().parents[3]
CONSORTIUM = ROOT / "partner_configs" / "consortium.yaml"
NODES = ["pharma-a", "pharma-b", "pharma-c", "platform"]
K8S_VERSION = "1.31"


@pytest.fixture(scope="session")
def helm_bin() -> Path:
    """The pinned helm, installed (once, cached in .tools/) by the project's own installer."""
    out = subprocess.run([sys.executable, str(ROOT / "deploy" / "install_helm.py")], capture_output=True, text=True,
                         check=True, timeout=600)
    path = Path(out.stdout.strip().splitlines()[-1])
    version = subprocess.run([str(path), "version", "--template", "{{.Version}}"], capture_output=True, text=True)
    assert version.stdout.strip() == "v3.19.0"
    return path


@pytest.fixture(scope="module")
def chart(helm_bin, tmp_path_factory):
    """The umbrella chart copied to a temp folder, its dependencies built from the loopback stand-in repository."""
    tmp = tmp_path_factory.mktemp("helm")
    helm = Helm(helm_bin, home=tmp / "home")
    with standin_repo(helm, tmp) as url:
        helm.run("repo", "add", "substra", url)
        built = copy_chart(tmp / "fedchem-node")
        helm.run("dependency", "build", built)
        yield helm, built, tmp


@pytest.fixture(scope="module")
def network():
    return load_network(CONSORTIUM)


def _values_file(chart, values: dict, name: str) -> Path:
    return write_values(values, chart[2] / f"{name}.values.yaml")


def _by(docs, kind, name_part):
    hits = [d for d in docs if d["kind"] == kind and name_part in d["metadata"]["name"]]
    assert len(hits) == 1, f"expected one {kind} named *{name_part}*, got {[d['metadata']['name'] for d in hits]}"
    return hits[0]


@pytest.mark.parametrize("name", NODES)
def test_every_example_node_lints_renders_and_validates(chart, network, name):
    helm, built, _ = chart
    node = network.nodes()[name]
    d = node.deployment
    vfile = _values_file(chart, node_values(network, name), name)
    lint = helm.run("lint", "--strict", built, "-f", vfile, check=False)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    docs = render(helm, built, vfile, d.release, d.namespace)
    for doc in docs:  # strict: unknown fields are errors too
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)

    cfg = _by(docs, "ConfigMap", "fedchem-config")
    assert cfg["data"]["partner"] == name and cfg["data"]["organization"] == node.organization
    assert yaml.safe_load(cfg["data"]["fedchem.yaml"])["fingerprint"] == network.consortium.fingerprint.model_dump()
    # Substra's backend values as its chart receives them (rendered by the stand-in)
    backend = _by(docs, "ConfigMap", "substra-backend-orchestrator")["data"]
    assert backend["ORGANIZATION_NAME"] == name and backend["ORCHESTRATOR_MSPID"] == node.organization
    assert backend["ORCHESTRATOR_HOST"] == d.orchestrator.host and backend["ORCHESTRATOR_TLS_ENABLED"] == "true"
    assert [list(c) for c in yaml.safe_load(backend["CHANNELS"])] == [[ch] for ch in d.channels]
    assert backend["ACCOUNTS_SECRET"] == d.secret_names.accounts
    hosts = {r["host"] for doc in docs if doc["kind"] == "Ingress" for r in doc["spec"]["rules"]}
    assert {d.backend_host, d.frontend_host} <= hosts
    for ing in (doc for doc in docs if doc["kind"] == "Ingress" and "orchestrator" not in doc["metadata"]["name"]):
        assert ing["spec"]["tls"][0]["secretName"] == d.tls.secret_name
    assert _by(docs, "ConfigMap", "substra-frontend")["data"]["API_URL"] == f"https://{d.backend_host}"

    # no secret values anywhere: no Secret object rendered, none of the charts' plaintext defaults survive
    text = yaml.safe_dump_all(docs)
    assert not [doc for doc in docs if doc["kind"] == "Secret"]
    for default in ("minio1234", "DATABASE_PASSWORD"):
        assert default not in text

    orch = [doc for doc in docs if doc["metadata"]["name"] == f"{d.release}-orchestrator"]
    if d.orchestrator.hosted_here:
        channels = yaml.safe_load(orch[0]["data"]["channels.yaml"])
        assert set(channels["fedchem"]) == {n.organization for n in network.nodes().values()}
    else:
        assert not orch
    if name in network.partners:  # the dataset-registration Job reads its login from a secret reference only
        job = _by(docs, "Job", "register-dataset")
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert container["command"][-1] == "fedchem.orchestrator.node.register"
        refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"] if "valueFrom" in e}
        assert refs == {d.secret_names.registration_login}
        assert all("value" not in e or e["name"] == "TMPDIR" for e in container["env"])
        pols = [doc for doc in docs if doc["kind"] == "NetworkPolicy"]
        assert len(pols) == 2 and any(p["spec"]["egress"] for p in pols if "egress" in p["spec"])
    else:
        assert not [doc for doc in docs if doc["kind"] in ("Job", "NetworkPolicy")]


def _mutated(network, changes) -> dict:
    values = copy.deepcopy(node_values(network, "pharma-a"))
    for path, value in changes:
        *parents, last = path.split(".")
        cur = values
        for p in parents:
            cur = cur.setdefault(p, {})
        cur[last] = value
    return values


@pytest.mark.parametrize("case, changes, expect", [
    ("missing host", [("fedchem.backendHost", ""), ("substra-backend.server.ingress.hostname", "")],
     "/fedchem/backendHost"),
    ("missing organisation", [("fedchem.partner", "")], "/fedchem/partner"),
    ("short password policy", [("fedchem.minPasswordLength", 8)], "/fedchem/minPasswordLength"),
    ("plaintext token", [("fedchem.registration.token", "s3cr3t-token-value")], "token"),
    ("plaintext token in config", [("fedchem.config.api_token", "s3cr3t-token-value")], "api_token"),
    ("plaintext database password", [("substra-backend.database.auth.password", "hunter2hunter2hunter2")],
     "/substra-backend/database/auth/password"),
    ("inline account credentials", [("substra-backend.addAccountOperator.users",
                                     [{"name": "admin", "secret": "pw-in-values-xxxxxxxx"}])],
     "/substra-backend/addAccountOperator/users"),
    ("tls without certificate", [("fedchem.tls.secretName", "")], "/fedchem/tls/secretName"),
    ("tls with http web UI", [("substra-frontend.api.url", "http://substra-backend.pharma-a.example.org")],
     "/substra-frontend/api/url"),
])
def test_bad_values_are_refused_with_a_clear_message(chart, network, case, changes, expect):
    helm, built, _ = chart
    vfile = _values_file(chart, _mutated(network, changes), case.replace(" ", "-"))
    for cmd in (["lint", "--strict", built, "-f", vfile], ["template", "x", built, "-f", vfile]):
        proc = helm.run(*cmd, check=False)
        assert proc.returncode != 0, f"{case}: helm {cmd[0]} accepted it"
        assert expect in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_helm_failure_becomes_a_config_error(chart, network):
    helm, built, _ = chart
    vfile = _values_file(chart, _mutated(network, [("fedchem.minPasswordLength", 4)]), "weak")
    with pytest.raises(ConfigError, match="minPasswordLength"):
        render(helm, built, vfile, "fedchem", "ns")


def test_dry_run_deploy_prints_commands_and_renders(helm_bin, tmp_path, caplog):
    import logging

    from fedchem.orchestrator.node.deploy import deploy_partner

    caplog.set_level(logging.INFO, logger="fedchem")  # library code logs; the CLI prints these lines on stdout
    out = deploy_partner(CONSORTIUM, "pharma-b", helm_bin, dry_run=True, out_dir=tmp_path,
                         repo_url="http://127.0.0.1:9/")  # a closed port stands for the unreachable real repository
    printed = caplog.text
    assert "STAND-IN" in printed and "+ helm upgrade --install fedchem" in printed
    assert "--namespace fedchem-pharma-b" in printed and "+ helm dependency build" in printed
    docs = [d for d in yaml.safe_load_all((out / "manifests.yaml").read_text()) if d]
    assert _by(docs, "ConfigMap", "fedchem-config")["data"]["partner"] == "pharma-b"
