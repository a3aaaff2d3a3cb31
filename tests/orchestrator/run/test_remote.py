"""Remote Substra clients per organisation, and the dataset registration the chart's Job runs.

No Substra node can run here: `operator_client` and `partner_client` are tested up to the Substra SDK's remote HTTP calls, answered by a
stand-in of the backend's `/info/` endpoint on 127.0.0.1 (that endpoint is the only thing replaced; the SDK's real
remote client sends the request and its token). Dataset registration runs for real against Substra's local
(subprocess) backend, which implements the same SDK calls.
"""

from __future__ import annotations

import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fedchem.opener.dataset import PreparedDataset, save_prepared
from fedchem.opener.errors import ConfigError, DataError
from fedchem.orchestrator.config import SubstraConnection
from fedchem.orchestrator.node.network import load_network
from fedchem.orchestrator.run.remote import operator_client, partner_client, partner_orgs, read_token

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def fake_backends():
    """Loopback stand-ins for each organisation's backend `/info/` (see module docstring); records tokens seen."""
    seen: list[tuple[str, str]] = []
    servers = {}

    def start(org: str):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                seen.append((org, self.headers.get("Authorization", "")))
                body = json.dumps({"host": "https://substra-backend.example.org", "organization_id": org,
                                   "organization_name": org, "config": {"model_export_enabled": False},
                                   "channel": "fedchem", "version": "1.0.0", "orchestrator_version": "1.0.0"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers[org] = srv
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start, seen
    for srv in servers.values():
        srv.shutdown()
        srv.server_close()


def _network_pointing_at(start, monkeypatch, answer_as=None):
    net = load_network(ROOT / "partner_configs" / "consortium.yaml")
    partners = {}
    for name, p in net.partners.items():
        url = start((answer_as or {}).get(p.organization, p.organization))
        partners[name] = p.model_copy(update={"substra": p.substra.model_copy(update={"url": url})})
        monkeypatch.setenv(p.substra.token_env, f"token-of-{name}")
    agg = net.consortium.federation.aggregator_substra
    monkeypatch.setenv(agg.token_env, "token-of-platform")
    return net, partners, agg.model_copy(update={"url": start("PlatformMSP")})


def test_the_operator_holds_the_aggregators_token_only_and_each_partner_its_own(fake_backends, monkeypatch):
    start, seen = fake_backends
    net, partners, agg = _network_pointing_at(start, monkeypatch)
    for p in partners.values():  # the operator's machine has no partner token at all
        monkeypatch.delenv(p.substra.token_env)
    client = operator_client(net.consortium, agg)
    assert seen == [("PlatformMSP", "Token token-of-platform")]
    assert client.organization_info().organization_id == "PlatformMSP"
    assert partner_orgs(net.consortium, partners) == {"pharma-a": "PharmaAMSP", "pharma-b": "PharmaBMSP",
                                                      "pharma-c": "PharmaCMSP"}
    seen.clear()
    monkeypatch.setenv(partners["pharma-b"].substra.token_env, "token-of-pharma-b")  # on pharma-b's own machine
    mine = partner_client(partners["pharma-b"], "pharma-b.yaml")
    assert seen == [("PharmaBMSP", "Token token-of-pharma-b")]
    assert mine.organization_info().organization_id == "PharmaBMSP"


def test_a_token_for_the_wrong_organisation_is_refused(fake_backends, monkeypatch):
    start, _ = fake_backends
    net, partners, agg = _network_pointing_at(start, monkeypatch, answer_as={"PharmaBMSP": "PharmaCMSP"})
    with pytest.raises(ConfigError, match="logs into organisation 'PharmaCMSP', not 'PharmaBMSP'"):
        partner_client(partners["pharma-b"], "pharma-b.yaml")


def test_missing_token_and_url_give_clear_errors(monkeypatch, tmp_path):
    monkeypatch.delenv("FEDCHEM_TEST_TOKEN", raising=False)
    with pytest.raises(ConfigError, match="FEDCHEM_TEST_TOKEN"):
        read_token(SubstraConnection(url="https://x", token_env="FEDCHEM_TEST_TOKEN"), "p.yaml")
    with pytest.raises(ConfigError, match="token file does not exist"):
        read_token(SubstraConnection(url="https://x", token_file=tmp_path / "absent"), "p.yaml")
    with pytest.raises(ConfigError, match="no API token source"):
        read_token(SubstraConnection(url="https://x"), "p.yaml")
    (tmp_path / "tok").write_text("file-token\n")
    assert read_token(SubstraConnection(token_env="FEDCHEM_TEST_TOKEN", token_file=tmp_path / "tok"), "p") == "file-token"
    net = load_network(ROOT / "partner_configs" / "consortium.yaml")
    monkeypatch.setenv("X", "some-token")
    pc = net.partners["pharma-c"].model_copy(update={"substra": SubstraConnection(token_env="X")})
    with pytest.raises(ConfigError) as info:
        partner_client(pc, "pharma-c.yaml", verify=False)
    assert "substra.url" in info.value.where and "pharma-c.yaml" in info.value.where


def _prepared(folder: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    n = 12
    ds = PreparedDataset(X=sp.random(n, 64, density=0.1, format="csr", random_state=seed, dtype=np.float32),
                         Y_class=sp.csr_matrix((n, 0), dtype=np.float32), Y_regr=sp.csr_matrix((n, 0), dtype=np.float32),
                         Y_censor=sp.csr_matrix((n, 0), dtype=np.float32), folds=rng.integers(0, 5, n), tasks=[],
                         compound_ids=[f"c{i}" for i in range(n)])
    return save_prepared(ds, folder)


def test_registration_is_private_to_the_partner_and_idempotent(tmp_path, monkeypatch):
    import substra

    from fedchem.orchestrator.node.register import register_prepared

    monkeypatch.chdir(tmp_path)  # substra's local worker folder lands here
    client = substra.Client(client_name="pharma-a", backend_type="subprocess")
    org = client.organization_info().organization_id
    prepared = _prepared(tmp_path / "prepared", 0)
    first = register_prepared(client, "pharma-a-prepared", org, prepared)
    again = register_prepared(client, "pharma-a-prepared", org, prepared)
    assert first.created and not again.created and again.dataset_key == first.dataset_key
    ds = client.get_dataset(first.dataset_key)
    assert ds.permissions.process.public is False and ds.permissions.process.authorized_ids == [org]
    assert list(ds.data_sample_keys) == list(first.data_sample_keys)
    changed = register_prepared(client, "pharma-a-prepared", org, _prepared(tmp_path / "prepared2", 1))
    assert changed.created and changed.dataset_key != first.dataset_key  # new data, new dataset
    with pytest.raises(DataError, match="manifest.json"):
        register_prepared(client, "x", org, tmp_path)
