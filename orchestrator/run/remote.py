"""Remote Substra clients: the operator's (the aggregator organisation's, for `fedchem run --backend remote`) and
a partner's own (for `fedchem pull` on that partner's machine). Nobody holds another organisation's token.

Each organisation's backend URL comes from its config file (`substra.url`); its API token from the environment
variable named by `substra.token_env` or the file named by `substra.token_file` -- never from the repository.
Each client is checked to log into the organisation its config names (a token mix-up would send tasks and data
permissions to the wrong organisation).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fedchem.opener.errors import ConfigError, FedchemError
from fedchem.orchestrator.config import ConsortiumConfig, PartnerConfig, SubstraConnection


def read_token(conn: SubstraConnection, where: str) -> str:
    """The API token named by a connection (environment variable first, then file); ConfigError if absent."""
    if conn.token_env:
        value = os.environ.get(conn.token_env, "").strip()
        if value:
            return value
        if not conn.token_file:
            raise ConfigError("the API token is not set", where=f"environment variable {conn.token_env} ({where})",
                              fix=f"export {conn.token_env}=<token created in that organisation's Substra web UI>")
    if conn.token_file:
        path = Path(conn.token_file).expanduser()
        if not path.is_file():
            raise ConfigError("the API token file does not exist", where=f"{path} ({where}, key 'substra.token_file')",
                              fix="write the token created in that organisation's Substra web UI into that file")
        value = path.read_text().strip()
        if not value:
            raise ConfigError("the API token file is empty", where=f"{path} ({where})", fix="write the token into it")
        return value
    raise ConfigError("no API token source is configured", where=f"{where}, key 'substra'",
                      fix="set substra.token_env (an environment variable name) or substra.token_file (a path)")


def _url(conn: SubstraConnection, where: str) -> str:
    if not conn.url:
        raise ConfigError("the Substra backend URL is missing", where=f"{where}, key 'substra.url'",
                          fix="set substra.url to the organisation's backend, e.g. https://substra-backend.example.org")
    if not conn.url.startswith(("https://", "http://")):
        raise ConfigError(f"the Substra backend URL must start with https:// (got '{conn.url}')",
                          where=f"{where}, key 'substra.url'", fix="use the backend's full URL")
    return conn.url.rstrip("/")


def connect(conn: SubstraConnection, where: str, expected_org: str | None = None, verify: bool = True) -> Any:
    """A `substra.Client(backend_type="remote")` for one organisation; checks its identity when verify is set."""
    import substra

    url, token = _url(conn, where), read_token(conn, where)
    client = substra.Client(backend_type="remote", url=url, token=token)
    if verify and expected_org:
        try:
            org = client.organization_info().organization_id
        except Exception as exc:  # the SDK raises its own error types (AuthenticationError, ConnectionError...)
            raise FedchemError(f"cannot reach the Substra backend ({type(exc).__name__})", where=f"{url} ({where})",
                               fix="check the URL, the token and that the node is up (`fedchem node status`)") from None
        if org != expected_org:
            raise ConfigError(f"the token for {where} logs into organisation '{org}', not '{expected_org}'",
                              where=f"{where}, key 'substra'", fix="use that organisation's own token and URL")
    return client


def operator_client(consortium: ConsortiumConfig, aggregator_conn: SubstraConnection | None = None,
                    verify: bool = True) -> Any:
    """The operator's only client: the aggregator organisation's (`consortium.federation.aggregator_substra`)."""
    conn = aggregator_conn if aggregator_conn is not None else consortium.federation.aggregator_substra
    where = "consortium config, federation.aggregator_substra"
    expected = None
    node_file = consortium.federation.aggregator_node
    if node_file is not None and Path(node_file).is_file():
        from fedchem.orchestrator.config import load_partner
        expected = load_partner(node_file).organization
    return connect(conn, where, expected, verify)


def partner_orgs(consortium: ConsortiumConfig, partners: dict[str, PartnerConfig]) -> dict[str, str]:
    """name -> organisation id of every partner, from its config (the operator needs ids, never partner tokens)."""
    orgs = {}
    for ref in consortium.partners:
        org = partners[ref.name].organization
        if not org:
            raise ConfigError(f"partner '{ref.name}' names no Substra organisation", where=f"{ref.config}, key "
                              "'organization'", fix="set organization: to its Substra organisation id (MSP id)")
        orgs[ref.name] = org
    return orgs


def partner_client(partner: PartnerConfig, where: str, verify: bool = True) -> Any:
    """A partner's own client (its own token, on its own machine): what `fedchem pull` uses."""
    return connect(partner.substra, where, partner.organization, verify)
