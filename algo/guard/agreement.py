"""The consortium agreement a partner signed off, as the partner keeps it on its own node, and its fingerprint.

The agreement is the consortium-wide part of the consortium config (roster, aggregator, fingerprints, preparation,
model, training, secure-aggregation settings, round count, publish opt-in,
differential privacy), without paths or the secret reference.
Its fingerprint is SHA-256 over a canonical JSON encoding (sorted keys, no spaces); every plan's trunk metadata
carries it, and a partner-side function refuses a plan whose fingerprint is not that of its own copy.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from fedchem.algo.config import DPConfig, ModelConfig, SecAggConfig, TrainingConfig
from fedchem.algo.secagg.keysetup import threshold_for
from fedchem.opener.config import FingerprintConfig, PreparationConfig
from fedchem.opener.errors import ProtocolError

FORMAT = "fedchem-agreement/1"
FILE = "agreement.json"


class Agreement(BaseModel):
    """What every partner signs off; secure aggregation is on by construction (SecAggConfig refuses `enabled: false`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: str = FORMAT
    consortium: str
    partners: tuple[str, ...]
    aggregator: str
    fingerprint: FingerprintConfig
    preparation: PreparationConfig
    model: ModelConfig
    training: TrainingConfig
    secure_aggregation: SecAggConfig
    rounds: int
    evaluate_every: int
    publish_summary: bool
    # opt-in distributed DP on trunk updates; the partner's train task applies what is here, nothing else
    differential_privacy: DPConfig | None = None

    def canonical(self) -> bytes:
        """The stable encoding the fingerprint is taken over."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":")).encode("utf-8")

    @property
    def fingerprint_hex(self) -> str:
        return hashlib.sha256(self.canonical()).hexdigest()

    @property
    def threshold(self) -> int:
        """t of t-of-n over the agreed roster (the configured one, else the majority)."""
        return threshold_for(self.secure_aggregation.threshold, len(self.partners))


def save_agreement(node_dir: Path, agreement: Agreement) -> Path:
    """Write the partner's copy into its node folder (owner-only), atomically."""
    from fedchem.algo.guard.state import atomic_write_bytes, private_dir

    folder = private_dir(Path(node_dir))
    path = folder / FILE
    atomic_write_bytes(path, json.dumps(agreement.model_dump(mode="json"), indent=1, sort_keys=True).encode())
    return path


def load_agreement(node_dir: Path | None, where: str) -> Agreement:
    """The agreement this node holds, or a ProtocolError saying there is none (a partner never runs without one)."""
    if node_dir is None:
        raise ProtocolError("refused [rule: own agreement]: this dataset's opener names no partner node folder, so "
                            "there is no agreement to check the plan against", where,
                            "register the partner's dataset with its node folder (fedchem registers it so)")
    path = Path(node_dir) / FILE
    try:
        return Agreement.model_validate_json(path.read_bytes())
    except FileNotFoundError:
        raise ProtocolError("refused [rule: own agreement]: this partner holds no signed consortium agreement",
                            str(path), "the partner runs `fedchem agree` (or `fedchem prepare`) with the consortium "
                                       "config it signed off") from None
    except ValidationError as exc:
        raise ProtocolError(f"refused [rule: own agreement]: the partner's agreement file is invalid "
                            f"({exc.errors()[0]['msg']})", str(path), "re-run `fedchem agree`") from None
