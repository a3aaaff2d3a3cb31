"""Where and how a partner's Substra node is deployed (Kubernetes + Helm). Filled in by the deployment issue."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class DeploymentConfig(BaseModel):
    """Settings for `make deploy-partner`; the values file of the Helm chart is generated from these."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str = "substra"
