"""A partner's signed copy of the consortium agreement: built from the consortium config, kept on its node.

`fedchem agree` (and `fedchem prepare`, which a partner runs on its own node with the consortium config it signed
off) writes it into the partner's node folder (`node_dir` in its partner config, default `<prepared_dir>-node`).
`fedchem run` checks, before submitting anything, that each partner's copy in local mode has the consortium's
fingerprint; the partner's own tasks check every plan against that copy, whatever the operator does.
"""

from __future__ import annotations

from pathlib import Path

from fedchem.algo.guard.agreement import FILE, Agreement, load_agreement, save_agreement
from fedchem.opener.errors import ConfigError, FedchemError
from fedchem.orchestrator.config import ConsortiumConfig, PartnerConfig


def agreement_of(consortium: ConsortiumConfig) -> Agreement:
    """The consortium-wide settings every partner signs (no path, no secret)."""
    f = consortium.federation
    return Agreement(consortium=consortium.name, partners=tuple(p.name for p in consortium.partners),
                     aggregator=f.aggregator, fingerprint=consortium.fingerprint,
                     preparation=consortium.preparation, model=consortium.model, training=consortium.training,
                     secure_aggregation=f.secure_aggregation, rounds=f.rounds, evaluate_every=f.evaluate_every,
                     publish_summary=f.publish_summary,
                     differential_privacy=f.differential_privacy)


def node_dir_of(partner: PartnerConfig) -> Path:
    """The partner's node folder: its agreement and private protocol state (never a data sample)."""
    if partner.node_dir is not None:
        return Path(partner.node_dir)
    if partner.prepared_dir is None:
        raise ConfigError(f"partner '{partner.name}' names neither node_dir nor prepared_dir",
                          fix="add `node_dir: DIR` (a folder private to the partner) to its partner config")
    p = Path(partner.prepared_dir)
    return p.with_name(p.name + "-node")


def sign_agreement(consortium: ConsortiumConfig, partner: PartnerConfig) -> Path:
    """Write the partner's copy of the agreement into its node folder (owner-only)."""
    if partner.name not in {p.name for p in consortium.partners}:
        raise ConfigError(f"partner '{partner.name}' is not listed by consortium '{consortium.name}'",
                          fix="use the consortium config this partner belongs to")
    return save_agreement(node_dir_of(partner), agreement_of(consortium))


def check_agreement(consortium: ConsortiumConfig, partner: PartnerConfig) -> str:
    """The partner holds this consortium's agreement (local mode: its node folder is on this machine)."""
    expected = agreement_of(consortium).fingerprint_hex
    folder = node_dir_of(partner)
    try:
        held = load_agreement(folder, f"partner {partner.name}").fingerprint_hex
    except FedchemError:
        raise ConfigError(f"partner '{partner.name}' holds no signed agreement", where=str(folder / FILE),
                          fix=f"the partner signs it: fedchem agree CONSORTIUM.yaml --partner PARTNER.yaml") from None
    if held != expected:
        raise ConfigError(f"partner '{partner.name}' signed another agreement (fingerprint {held[:12]}..., the "
                          f"consortium config gives {expected[:12]}...); its tasks would refuse this plan",
                          where=str(folder / FILE),
                          fix="agree on one consortium config and have every partner run `fedchem agree` with it")
    return expected
