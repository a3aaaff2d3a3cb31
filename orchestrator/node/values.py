"""Generate the Helm values of one node's `fedchem-node` chart from the network's config files.

The values hold names, hosts and references to Kubernetes secrets only: every password slot of Substra's charts is
either pointed at an existing secret or removed (null), so no values file ever carries secret material.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fedchem.opener.errors import ConfigError
from fedchem.opener.fileio import atomic_write_text
from fedchem.orchestrator.node.network import Network, channel_members

# The Substra 1.0 charts the umbrella chart depends on (DESIGN.md section 9).
SUBSTRA_CHARTS = {"substra-backend": "26.14.2", "substra-frontend": "1.2.3", "orchestrator": "8.7.7"}
SUBSTRA_REPO_URL = "https://substra.github.io/charts/"  # Substra's chart repository (docs: `helm repo add substra`)
BACKEND_PORT = 8000


def backend_service_url(release: str) -> str:
    """In-cluster URL of the backend API (service `<release>-substra-backend-server`, port 8000)."""
    return f"http://{release}-substra-backend-server:{BACKEND_PORT}"


def _public_url(host: str, tls: bool) -> str:
    return f"{'https' if tls else 'http'}://{host}"


def node_values(network: Network, name: str) -> dict[str, Any]:
    """The values of node `name` (a partner or the aggregator organisation), ready for `helm -f`."""
    nodes = network.nodes()
    if name not in nodes:
        raise ConfigError(f"no node named '{name}' in this consortium", where=str(network.paths.get("(consortium)", "")),
                          fix=f"use one of: {', '.join(nodes)}")
    node = nodes[name]
    where = network.paths.get(name, name)
    d = node.deployment
    if d is None:
        raise ConfigError(f"node '{name}' has no deployment section", where=f"{where}, key 'deployment'",
                          fix="add one (see partner_configs/pharma-a.yaml)")
    for key in ("backend_host", "frontend_host"):
        if not getattr(d, key):
            raise ConfigError(f"node '{name}' has no {key.replace('_', ' ')}", where=f"{where}, key 'deployment.{key}'",
                              fix="set the DNS name the node's ingress answers on")
    orc = d.orchestrator
    s = d.secret_names
    tls_secret = d.tls.secret_name if d.tls.enabled else None
    c = network.consortium
    is_partner = name in network.partners

    fedchem = {
        "partner": name,
        "organization": node.organization,
        "consortium": c.name,
        "backendHost": d.backend_host,
        "frontendHost": d.frontend_host,
        "backendUrl": backend_service_url(d.release),
        "tls": {"enabled": d.tls.enabled, "secretName": tls_secret or ""},
        "secretNames": {"accounts": s.accounts, "database": s.database, "redis": s.redis,
                        "objectstore": s.objectstore, "registrationLogin": s.registration_login,
                        "orchestratorDatabase": s.orchestrator_database},
        "minPasswordLength": d.min_password_length,
        "registration": {"enabled": bool(d.registration.enabled and is_partner), "image": d.registration.image,
                         "claim": d.registration.claim, "subpath": d.registration.subpath,
                         "datasetName": f"{name}-prepared"},
        "networkPolicies": {"enabled": True},
        "config": {  # the shared, non-secret settings every task of this node must agree on
            "consortium": c.name,
            "role": "partner" if is_partner else "aggregator",
            "fingerprint": c.fingerprint.model_dump(mode="json"),
            "preparation": c.preparation.model_dump(mode="json"),
            "model": c.model.model_dump(mode="json"),
            "training": c.training.model_dump(mode="json"),
            "federation": {"rounds": c.federation.rounds, "evaluate_every": c.federation.evaluate_every,
                           "aggregator": c.federation.aggregator},
        },
    }
    ingress_tls = [{"hosts": [d.backend_host], "secretName": tls_secret}] if tls_secret else []
    backend = {
        "organizationName": name,
        "server": {
            "defaultDomain": _public_url(d.backend_host, d.tls.enabled),
            "ingress": {"enabled": True, "hostname": d.backend_host, "ingressClassName": d.ingress_class,
                        "extraTls": ingress_tls},
        },
        "orchestrator": {
            "host": orc.host, "port": orc.port, "mspID": node.organization,
            "tls": {"enabled": orc.tls, "cacert": orc.cacert_configmap},
            "channels": [{ch: {"restricted": False, "model_export_enabled": d.model_export}} for ch in d.channels],
            "sameCluster": orc.hosted_here,
        },
        "addAccountOperator": {"existingSecret": s.accounts, "users": [], "incomingOrganizations": [],
                               "outgoingOrganizations": []},
        # every password slot points at a secret; "" replaces the chart's plaintext default
        "database": {"auth": {"credentialsSecretName": s.database, "password": ""}},
        "postgresql": {"auth": {"existingSecret": s.database, "password": "",
                                "secretKeys": {"userPasswordKey": "DATABASE_PASSWORD"}}},
        "redis": {"auth": {"existingSecret": s.redis, "existingSecretPasswordKey": "redis-password",
                           "password": ""}},
        # substra-backend 26.14.2 copies minio.auth.rootPassword into its own secret: the deploy step passes it
        # with --set-file from the local secrets folder, so it never sits in a values file
        "minio": {"auth": {"existingSecret": s.objectstore, "rootPassword": ""}},
    }
    frontend = {
        "api": {"url": _public_url(d.backend_host, d.tls.enabled)},
        "ingress": {"enabled": True, "hosts": [{"host": d.frontend_host, "paths": ["/"]}],
                    "tls": [{"hosts": [d.frontend_host], "secretName": tls_secret}] if tls_secret else []},
    }
    orchestrator: dict[str, Any] = {"enabled": orc.hosted_here}
    if orc.hosted_here:
        orchestrator.update({
            "ingress": {"enabled": True, "hostname": orc.host, "ingressClassName": d.ingress_class},
            "orchestrator": {"tls": {"enabled": orc.tls,
                                     "secrets": {"pair": orc.tls_secret_name or "orchestrator-tls-server-pair"}}},
            "channels": [{"name": ch, "organizations": orgs} for ch, orgs in channel_members(network).items()],
            "database": {"auth": {"credentialsSecretName": s.orchestrator_database, "password": ""}},
            "postgresql": {"auth": {"existingSecret": s.orchestrator_database, "password": "",
                                    "secretKeys": {"userPasswordKey": "DATABASE_PASSWORD"}}},
        })
    return {"fedchem": fedchem, "substra-backend": backend, "substra-frontend": frontend,
            "orchestrator": orchestrator}


def write_values(values: dict[str, Any], path: Path) -> Path:
    """Write values as YAML atomically (temp file + rename): never a half-written values file."""
    text = "# generated by `fedchem node values`; holds references to secrets only\n"
    return atomic_write_text(path, text + yaml.safe_dump(values, sort_keys=False))
