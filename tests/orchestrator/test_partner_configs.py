"""The example network in partner_configs/: valid with the CLI's own models, cross-checked, free of secret values;
and each cross-check refuses a broken copy with a ConfigError naming the file and key."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from fedchem.opener.errors import ConfigError
from fedchem.orchestrator.config import load_all, load_partner
from fedchem.orchestrator.node.values import node_values
from fedchem.orchestrator.node.network import channel_members, load_network

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "partner_configs"


def test_examples_load_with_the_cli_models_and_pass_every_cross_check():
    consortium, partners = load_all(EXAMPLES / "consortium.yaml")
    assert sorted(partners) == ["pharma-a", "pharma-b", "pharma-c"]
    network = load_network(EXAMPLES / "consortium.yaml")
    assert network.aggregator is not None and network.aggregator.name == consortium.federation.aggregator
    hosts = [n for n, p in network.nodes().items() if p.deployment.orchestrator.hosted_here]
    assert hosts == ["platform"]
    assert channel_members(network) == {"fedchem": sorted(p.organization for p in network.nodes().values())}
    assert consortium.federation.aggregator_substra.token_env  # the aggregator is reachable in remote mode too


def _walk(data, path=""):
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _walk(v, f"{path}[{i}]")
    else:
        yield path, data


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.name)
def test_example_files_hold_references_never_secret_values(path):
    for key, value in _walk(yaml.safe_load(path.read_text())):
        leaf = key.rsplit(".", 1)[-1].lower()
        if any(w in leaf for w in ("token", "password", "secret", "key")):
            # only references: an environment variable name, a file path, or a Kubernetes secret name
            assert leaf in {"token_env", "token_file", "secret_name", "tls_secret_name", "secrets_dir", "env", "file"} \
                or key.endswith("secret.env"), f"{path.name}: {key} looks like a secret value"


@pytest.fixture
def net_copy(tmp_path) -> Path:
    dst = tmp_path / "net"
    shutil.copytree(EXAMPLES, dst)
    return dst


def _edit(folder: Path, name: str, fn) -> None:
    path = folder / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    fn(data)
    path.write_text(yaml.safe_dump(data))


def _fails(folder: Path, *fragments: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load_network(folder / "consortium.yaml")
    msg = info.value.message()
    for frag in fragments:
        assert frag in msg, msg
    return info.value


def test_asymmetric_link_names_the_other_file_and_key(net_copy):
    _edit(net_copy, "pharma-b", lambda d: d["deployment"]["links"].update(
        incoming=[o for o in d["deployment"]["links"]["incoming"] if o != "PharmaAMSP"]))
    _fails(net_copy, "asymmetric link", "pharma-b.yaml", "deployment.links.incoming", "PharmaAMSP")


def test_channel_member_without_links_is_refused(net_copy):
    for name, drop in (("pharma-a", "PharmaCMSP"), ("pharma-c", "PharmaAMSP")):
        _edit(net_copy, name, lambda d, drop=drop: d["deployment"]["links"].update(
            incoming=[o for o in d["deployment"]["links"]["incoming"] if o != drop],
            outgoing=[o for o in d["deployment"]["links"]["outgoing"] if o != drop]))
    _fails(net_copy, "share channel 'fedchem'", "deployment.links.outgoing")


def test_two_orchestrator_hosts_are_refused(net_copy):
    _edit(net_copy, "pharma-a", lambda d: d["deployment"]["orchestrator"].update(
        hosted_here=True, tls_secret_name="orc-pair"))
    _fails(net_copy, "exactly one orchestrator host", "found 2", "deployment.orchestrator.hosted_here")


def test_no_orchestrator_host_is_refused(net_copy):
    _edit(net_copy, "platform", lambda d: d["deployment"]["orchestrator"].update(hosted_here=False))
    _fails(net_copy, "exactly one orchestrator host", "found 0")


def test_different_orchestrator_address_is_refused(net_copy):
    _edit(net_copy, "pharma-c", lambda d: d["deployment"]["orchestrator"].update(port=9000))
    _fails(net_copy, "pharma-c.yaml", "deployment.orchestrator", "9000")


def test_duplicate_organisation_is_refused(net_copy):
    _edit(net_copy, "pharma-c", lambda d: d.update(organization="PharmaBMSP"))
    _fails(net_copy, "PharmaBMSP", "claimed by both")


def test_different_fingerprint_settings_are_refused(net_copy):
    _edit(net_copy, "pharma-b", lambda d: d.update(fingerprint={"kind": "folded", "radius": 3, "size": 32768}))
    _fails(net_copy, "pharma-b", "fingerprint", "radius")


def test_unknown_linked_organisation_is_refused(net_copy):
    _edit(net_copy, "pharma-a", lambda d: d["deployment"]["links"]["outgoing"].append("PharmaZMSP"))
    _fails(net_copy, "unknown organisation 'PharmaZMSP'", "pharma-a.yaml", "deployment.links.outgoing")


def test_missing_host_is_refused_by_the_check_and_the_generator(net_copy):
    _edit(net_copy, "pharma-a", lambda d: d["deployment"].pop("frontend_host"))
    _fails(net_copy, "pharma-a.yaml", "deployment.frontend_host")


def test_tls_without_certificate_secret_is_refused(net_copy):
    _edit(net_copy, "pharma-a", lambda d: d["deployment"]["tls"].pop("secret_name"))
    with pytest.raises(ConfigError, match="secret_name"):
        load_partner(net_copy / "pharma-a.yaml")


def test_generated_values_reference_secrets_only():
    network = load_network(EXAMPLES / "consortium.yaml")
    for name in network.nodes():
        values = node_values(network, name)
        for key, value in _walk(values):
            leaf = key.rsplit(".", 1)[-1].lower()
            if "password" in leaf and "length" not in leaf and "key" not in leaf:
                assert value == "", f"{name}: {key} carries a value"
        assert values["substra-backend"]["addAccountOperator"]["existingSecret"] == "fedchem-accounts"
        assert values["orchestrator"]["enabled"] == (name == "platform")
