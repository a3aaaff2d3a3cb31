"""Where and how a partner's Substra node is deployed (Kubernetes + Helm): the `deployment:` section of a node file.

Only names and references live here: hosts, namespaces, channel and link lists, Kubernetes secret names and the
local folder the secret material is read from. Passwords, tokens and keys never appear in a config or values file.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator

_DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_HOST = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_MSP = r"^[A-Za-z0-9][A-Za-z0-9._-]*$"


IMAGE_REPOSITORY = "ghcr.io/fedchem/fedchem"  # the image built by `make image` from the repository's Dockerfile


def default_image() -> str:
    """The fedchem image of this version (`make image` tags it with the package version; the chart's default)."""
    return f"{IMAGE_REPOSITORY}:{version('fedchem')}"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Strict):
    """TLS on the node's ingresses: a Kubernetes TLS secret (cert-manager or made by hand), never a key in values."""

    enabled: bool = True
    secret_name: str | None = Field(None, pattern=_DNS_LABEL)

    @model_validator(mode="after")
    def _secret_when_enabled(self):
        if self.enabled and not self.secret_name:
            raise ValueError("tls.enabled needs tls.secret_name (the Kubernetes TLS secret holding the certificate)")
        return self


class OrchestratorSettings(_Strict):
    """The one orchestrator of the network: where every backend reaches it, and whether this node runs it."""

    host: str = Field(pattern=_HOST)
    port: int = Field(443, ge=1, le=65535)
    tls: bool = True
    cacert_configmap: str | None = Field(None, pattern=_DNS_LABEL)  # private CA for the orchestrator's certificate
    hosted_here: bool = False  # exactly one node of the network sets this
    tls_secret_name: str | None = Field(None, pattern=_DNS_LABEL)  # server cert pair, only where hosted_here

    @model_validator(mode="after")
    def _tls_pair_when_hosted(self):
        if self.hosted_here and self.tls and not self.tls_secret_name:
            raise ValueError("an orchestrator hosted here with tls needs tls_secret_name (its server certificate)")
        return self


class LinkSettings(_Strict):
    """Organisations (MSP ids) this backend accepts calls from (incoming) and calls (outgoing)."""

    incoming: tuple[str, ...] = ()
    outgoing: tuple[str, ...] = ()


class AdminUser(_Strict):
    """An administrator account of the backend / web UI; its password is read from `<secrets_dir>/users/<name>`."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.@-]+$")
    channel: str | None = None


class SecretNames(_Strict):
    """Names of the Kubernetes secrets the chart references; `fedchem node secrets` creates them from local files."""

    accounts: str = Field("fedchem-accounts", pattern=_DNS_LABEL)  # users / incoming_ / outgoing_organizations
    database: str = Field("fedchem-database", pattern=_DNS_LABEL)  # backend Postgres credentials
    redis: str = Field("fedchem-redis", pattern=_DNS_LABEL)
    objectstore: str = Field("fedchem-objectstore", pattern=_DNS_LABEL)  # MinIO root credentials
    registration_login: str = Field("fedchem-registration-login", pattern=_DNS_LABEL)  # admin login of the registration Job
    orchestrator_database: str = Field("fedchem-orchestrator-database", pattern=_DNS_LABEL)


class DatasetRegistration(_Strict):
    """The Job that registers this partner's prepared dataset with its own backend (through the Substra SDK)."""

    enabled: bool = True
    image: str = Field(default_factory=default_image)
    claim: str = Field("fedchem-prepared", pattern=_DNS_LABEL)  # PVC holding the prepared folder on the cluster
    subpath: str = "prepared"


class DeploymentConfig(BaseModel):
    """Settings for `make deploy-partner`; the values file of the Helm chart is generated from these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str = Field("substra", pattern=_DNS_LABEL, max_length=63)
    release: str = Field("fedchem", pattern=_DNS_LABEL, max_length=30)
    kube_context: str | None = None
    backend_host: str | None = Field(None, pattern=_HOST)
    frontend_host: str | None = Field(None, pattern=_HOST)
    ingress_class: str | None = "nginx"
    tls: TlsSettings = TlsSettings(enabled=False)
    orchestrator: OrchestratorSettings | None = None
    channels: tuple[str, ...] = ("fedchem",)
    links: LinkSettings = LinkSettings()
    admin_users: tuple[AdminUser, ...] = ()
    model_export: bool = False  # let logged-in users download models trained on this organisation
    secret_names: SecretNames = SecretNames()
    secrets_dir: Path | None = None  # local folder with the secret material (layout: fedchem.orchestrator.node.cluster)
    min_password_length: int = Field(20, ge=16)
    registration: DatasetRegistration = DatasetRegistration()
    ready_timeout_s: int = Field(900, ge=10)
