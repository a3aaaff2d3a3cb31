"""The consortium config and the partner configs (YAML), parsed into pydantic models with clear errors.

A consortium file names the shared settings (fingerprints, preparation rules, model, training, federation) and
lists its partners, each with a partner file of its own (its data, its Substra connection, its deployment).
Relative paths in a file are resolved against that file's folder.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fedchem.algo.config import DPConfig, ModelConfig, SecAggConfig, TrainingConfig
from fedchem.algo.dp.mechanism import check_ring_bound
from fedchem.algo.secagg.keysetup import threshold_for
from fedchem.opener.config import FingerprintConfig, PreparationConfig
from fedchem.opener.errors import ConfigError, ProtocolError
from fedchem.orchestrator.node.config import DeploymentConfig


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Names that become folder and file names (partners/<name>/, runs/<consortium>-<time>/, datasets/<aggregator>/) or
# Substra organisation names: no '/', no '..', nothing hidden. Partners and the aggregator: lower-case DNS labels.
NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
CONSORTIUM_NAME_PATTERN = r"^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$"


class SecretRef(_Strict):
    """A secret is never written in a config: it is read from an environment variable or a file."""

    env: str | None = None
    file: Path | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of `env` or `file`")
        return self

    def read(self, what: str) -> bytes:
        if self.env is not None:
            value = os.environ.get(self.env)
            if not value:
                raise ConfigError(f"the {what} is not set", where=f"environment variable {self.env}",
                                  fix=f"export {self.env}=... (the value your consortium agreed on)")
            return value.encode()
        path = Path(self.file)
        if not path.is_file():
            raise ConfigError(f"the {what} file does not exist", where=str(path),
                              fix="create it (e.g. `python -c 'import secrets;print(secrets.token_hex(32))' > FILE`)")
        data = path.read_bytes().strip()
        if len(data) < 16:
            raise ConfigError(f"the {what} is too short ({len(data)} bytes)", where=str(path),
                              fix="use at least 16 random bytes (32 hex characters or more)")
        return data


class PartnerData(_Strict):
    """A partner's raw MELLODDY-TUNER files (T0 assays, T1 activities, T2 structures). T0 and T1 may each be a list
    of files, concatenated in order (MELLODDY-TUNER year 3 accepts several; no identifier may repeat across them)."""

    t0: Path | tuple[Path, ...]
    t1: Path | tuple[Path, ...]
    t2: Path


class SubstraConnection(_Strict):
    """How the orchestrator reaches this partner's Substra backend when `--backend remote`."""

    url: str | None = None
    token_env: str | None = None
    token_file: Path | None = None


class PartnerConfig(_Strict):
    """One partner: its name, its Substra organisation, its data, and its private output folder."""

    name: str = Field(pattern=NAME_PATTERN, max_length=40)
    organization: str | None = None  # the Substra organisation id (MSP id) on a real network
    data: PartnerData | None = None
    prepared_dir: Path | None = None
    # the partner's private node folder: its signed agreement and protocol state (default <prepared_dir>-node)
    node_dir: Path | None = None
    fingerprint: FingerprintConfig | None = None  # if given, must equal the consortium's
    substra: SubstraConnection = SubstraConnection()
    deployment: DeploymentConfig | None = None


class PartnerRef(_Strict):
    name: str = Field(pattern=NAME_PATTERN, max_length=40)
    config: Path


class FederationConfig(_Strict):
    """The federated schedule: rounds, evaluation cadence, aggregator organisation, secure aggregation."""

    rounds: int = Field(10, ge=1)
    evaluate_every: int = Field(1, ge=1)
    # name of the aggregator organisation (never a holder of the consortium secret)
    aggregator: str = Field("aggregator", pattern=NAME_PATTERN, max_length=40)
    secure_aggregation: SecAggConfig = SecAggConfig()
    # opt-in: distributed differential privacy on the trunk updates (clip, each partner's share of the noise, delta)
    differential_privacy: DPConfig | None = None
    # opt-in: publish one headline test figure per partner as a public Substra performance (the web UI shows it);
    # per-task metrics always stay private
    publish_summary: bool = False
    # remote backend: how the operator reaches the aggregator organisation's Substra node (URL + token reference)
    aggregator_substra: SubstraConnection = SubstraConnection()
    # the aggregator organisation's node file (a partner-style file without data) for deployment and network checks
    aggregator_node: Path | None = None
    # how the driver waits on each submitted task (a real node runs tasks asynchronously: image build, queue, run):
    # seconds from submission to done before the run stops cleanly (resumable), and seconds between status polls
    task_timeout: float = Field(3600.0, gt=0)
    poll_interval: float = Field(5.0, gt=0)


class ConsortiumConfig(_Strict):
    name: str = Field(pattern=CONSORTIUM_NAME_PATTERN, max_length=64)
    secret: SecretRef
    fingerprint: FingerprintConfig = FingerprintConfig()
    preparation: PreparationConfig = PreparationConfig()
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    federation: FederationConfig = FederationConfig()
    backend: Literal["subprocess", "remote"] = "subprocess"
    partners: tuple[PartnerRef, ...]

    @model_validator(mode="after")
    def _unique_partners(self):
        names = [p.name for p in self.partners]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"partner names must be unique; repeated: {', '.join(dup)}")
        if self.federation.aggregator in names:
            raise ValueError(f"the aggregator '{self.federation.aggregator}' must not be one of the partners")
        if not names:
            raise ValueError("a consortium lists at least one partner")
        return self  # one partner alone may prepare and train-local; `fedchem run` needs two (require_federation)


def require_federation(consortium: ConsortiumConfig, where: str = "consortium config") -> None:
    """A federated run needs at least two partners (a baseline, `prepare` and `train-local` do not)."""
    if len(consortium.partners) < 2:
        raise ConfigError(f"a federated run needs at least two partners; the consortium lists "
                          f"{len(consortium.partners)}", where=f"{where}, key 'partners'",
                          fix="add the other partners to the consortium file; one partner alone can still "
                              "`fedchem prepare` and `fedchem train-local`")


def _read_yaml(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"the {what} file does not exist", where=str(path), fix="check the path")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"the {what} file is not UTF-8 text", where=str(path),
                          fix="save it as UTF-8 (YAML files are UTF-8)") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}" if mark else str(path)
        raise ConfigError(f"the {what} file is not valid YAML", where=where, fix="fix the syntax") from None
    if not isinstance(data, dict):
        raise ConfigError(f"the {what} file must hold a mapping of keys", where=str(path))
    return data


def _resolve(data: Any, base: Path, keys: set[str]) -> Any:
    """Make relative paths under the given keys relative to the config file's folder."""
    if isinstance(data, dict):
        out = {}
        for k, v in data.items():
            if k in keys and isinstance(v, str) and not os.path.isabs(v):
                out[k] = str((base / v).resolve())
            elif k in keys and isinstance(v, list) and all(isinstance(x, str) for x in v):  # several files
                out[k] = [x if os.path.isabs(x) else str((base / x).resolve()) for x in v]
            else:
                out[k] = _resolve(v, base, keys)
        return out
    if isinstance(data, list):
        return [_resolve(v, base, keys) for v in data]
    return data


def _validate(model: type[BaseModel], data: dict, path: Path, what: str):
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(x) for x in first["loc"]) or "(top level)"
        n = len(exc.errors())
        more = f" (and {n - 1} more problem{'s' if n > 2 else ''})" if n > 1 else ""
        msg = first["msg"]
        if first["type"] == "string_pattern_mismatch":  # a name that becomes a folder name
            allowed = ("letters, digits, '-', '_' and '.'" if first["ctx"]["pattern"] == CONSORTIUM_NAME_PATTERN
                       else "lower-case letters, digits and '-'")
            msg = (f"the name must consist of {allowed}, beginning and ending with a letter or digit (it becomes "
                   "a folder name: no '/', no '..', no spaces)")
        raise ConfigError(f"invalid {what}: {msg}{more}", where=f"{path}, key '{key}'",
                          fix="correct that key (see partner_configs/ for a complete example)") from None


_PATH_KEYS = {"t0", "t1", "t2", "prepared_dir", "node_dir", "file", "token_file", "config", "secrets_dir", "aggregator_node"}


def load_partner(path: Path) -> PartnerConfig:
    path = Path(path)
    data = _resolve(_read_yaml(path, "partner config"), path.parent, _PATH_KEYS)
    return _validate(PartnerConfig, data, path, "partner config")


def load_consortium(path: Path) -> ConsortiumConfig:
    path = Path(path)
    data = _resolve(_read_yaml(path, "consortium config"), path.parent, _PATH_KEYS)
    consortium = _validate(ConsortiumConfig, data, path, "consortium config")
    check_dp_ring(consortium, path)
    return consortium


def check_dp_ring(consortium: ConsortiumConfig, path: Path) -> None:
    """With differential privacy, the ring bound (secure_aggregation.clip) must hold the noised update at the
    agreed threshold (each partner's node checks it again on its own agreement)."""
    f = consortium.federation
    if f.differential_privacy is None or len(consortium.partners) < 2:
        return
    try:
        t = threshold_for(f.secure_aggregation.threshold, len(consortium.partners))
    except ProtocolError:
        return  # a bad threshold is reported by the run's own parameter check
    try:
        check_ring_bound(f.differential_privacy, f.secure_aggregation, t)
    except ValueError as exc:
        raise ConfigError(str(exc), where=f"{path}, key 'federation.secure_aggregation.clip'",
                          fix="raise that clip (a 64-bit ring keeps ample precision), or lower noise_multiplier or "
                              "clip_norm") from None


def check_fingerprint(consortium: ConsortiumConfig, partner: PartnerConfig, partner_path: Path) -> None:
    """A partner may restate the consortium's fingerprint settings, never differ from them."""
    if partner.fingerprint is not None and partner.fingerprint != consortium.fingerprint:
        diff = [k for k in FingerprintConfig.model_fields
                if getattr(partner.fingerprint, k) != getattr(consortium.fingerprint, k)]
        raise ConfigError(f"partner '{partner.name}' uses different fingerprint settings than the consortium "
                          f"({', '.join(diff)})", where=f"{partner_path}, key 'fingerprint'",
                          fix="remove the partner's fingerprint section or make it equal the consortium's")


def check_partner(consortium, partner, partner_path: Path) -> None:
    """The one-partner equivalent of load_all's cross-checks: listed by name, same fingerprint settings."""
    names = [ref.name for ref in consortium.partners]
    if partner.name not in names:
        raise ConfigError(f"partner '{partner.name}' is not listed in the consortium (it lists "
                          f"{', '.join(names)})", where=f"{partner_path}, key 'name'",
                          fix="use this partner's own config, or add it to the consortium's `partners`")
    check_fingerprint(consortium, partner, partner_path)


def load_all(path: Path) -> tuple[ConsortiumConfig, dict[str, PartnerConfig]]:
    """Load a consortium and every partner it names, and cross-check them (same fingerprints, names match)."""
    consortium = load_consortium(path)
    partners: dict[str, PartnerConfig] = {}
    orgs: dict[str, str] = {}
    for ref in consortium.partners:
        p = load_partner(ref.config)
        if p.name != ref.name:
            raise ConfigError(f"partner file names '{p.name}' but the consortium lists it as '{ref.name}'",
                              where=str(ref.config), fix="make the two names agree")
        check_fingerprint(consortium, p, ref.config)
        if p.organization:
            if p.organization in orgs:
                raise ConfigError(f"organisation '{p.organization}' is claimed by both '{orgs[p.organization]}' "
                                  f"and '{p.name}'", where=str(ref.config), fix="give each partner its own organisation")
            orgs[p.organization] = p.name
        partners[p.name] = p
    return consortium, partners
