"""Cross-checks over a whole Substra network's node files, before anything is deployed or run.

Each node file is valid on its own (pydantic); these checks catch what only shows across files: unique
organisations and hosts, exactly one orchestrator host that everyone points at, symmetric incoming/outgoing links,
channels whose members can all reach each other, and one set of fingerprint settings. Each failure is a ConfigError
naming the file and key to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fedchem.opener.config import FingerprintConfig
from fedchem.opener.errors import ConfigError
from fedchem.orchestrator.config import ConsortiumConfig, PartnerConfig, load_all, load_partner


@dataclass(frozen=True)
class Network:
    """A consortium, its partners' node files and (when given) the aggregator organisation's node file."""

    consortium: ConsortiumConfig
    partners: dict[str, PartnerConfig]
    aggregator: PartnerConfig | None
    paths: dict[str, Path]  # node name -> its file, for error messages

    def nodes(self) -> dict[str, PartnerConfig]:
        """Every organisation of the network by name, partners first."""
        out = dict(self.partners)
        if self.aggregator is not None:
            out[self.aggregator.name] = self.aggregator
        return out


def load_network(consortium_path: Path) -> Network:
    """Load the consortium, its partners and its aggregator node file, and run every cross-check."""
    consortium_path = Path(consortium_path)
    consortium, partners = load_all(consortium_path)
    paths = {ref.name: Path(ref.config) for ref in consortium.partners}
    aggregator = None
    node_file = consortium.federation.aggregator_node
    if node_file is not None:
        aggregator = load_partner(node_file)
        paths[aggregator.name] = Path(node_file)
        if aggregator.name != consortium.federation.aggregator:
            raise ConfigError(f"the aggregator node file names '{aggregator.name}' but the consortium's aggregator "
                              f"is '{consortium.federation.aggregator}'", where=f"{node_file}, key 'name'",
                              fix="make federation.aggregator and the node file's name agree")
    paths.setdefault("(consortium)", consortium_path)
    check_network(consortium, partners, aggregator, paths)
    return Network(consortium, partners, aggregator, paths)


def _where(paths: dict[str, Path], node: str, key: str) -> str:
    return f"{paths.get(node, node)}, key '{key}'"


def check_network(consortium: ConsortiumConfig, partners: dict[str, PartnerConfig],
                  aggregator: PartnerConfig | None = None, paths: dict[str, Path] | None = None) -> None:
    """Raise ConfigError on the first inconsistency between node files (see the module docstring)."""
    paths = dict(paths or {})
    for ref in consortium.partners:
        paths.setdefault(ref.name, Path(ref.config))
    nodes = dict(partners)
    if aggregator is not None:
        nodes[aggregator.name] = aggregator

    _check_fingerprints(consortium, partners, paths)
    org_of = _check_organisations(nodes, paths)
    deployed = {n: p for n, p in nodes.items() if p.deployment is not None}
    if not deployed:
        return
    missing = sorted(set(nodes) - set(deployed))
    if missing:
        raise ConfigError(f"some organisations have a deployment section and others not ({', '.join(missing)})",
                          where=_where(paths, missing[0], "deployment"),
                          fix="give every node file of the network a deployment section")
    _check_hosts(deployed, paths)
    _check_orchestrator(deployed, paths)
    _check_links(deployed, org_of, paths)
    _check_channels(deployed, org_of, paths)


def _check_fingerprints(consortium: ConsortiumConfig, partners: dict[str, PartnerConfig], paths) -> None:
    for name, p in partners.items():
        if p.fingerprint is not None and p.fingerprint != consortium.fingerprint:
            diff = [k for k in FingerprintConfig.model_fields
                    if getattr(p.fingerprint, k) != getattr(consortium.fingerprint, k)]
            raise ConfigError(f"partner '{name}' uses different fingerprint settings than the consortium "
                              f"({', '.join(diff)})", where=_where(paths, name, "fingerprint"),
                              fix="remove the partner's fingerprint section or make it equal the consortium's")


def _check_organisations(nodes: dict[str, PartnerConfig], paths) -> dict[str, str]:
    """Every deployed node needs an organisation id, and no two nodes may share one. Returns name -> org."""
    org_of: dict[str, str] = {}
    owner: dict[str, str] = {}
    for name, p in nodes.items():
        if p.organization is None:
            if p.deployment is not None:
                raise ConfigError(f"node '{name}' is deployed but has no organisation id",
                                  where=_where(paths, name, "organization"),
                                  fix="set organization to the node's Substra MSP id, e.g. PharmaAMSP")
            continue
        if p.organization in owner:
            raise ConfigError(f"organisation '{p.organization}' is claimed by both '{owner[p.organization]}' and "
                              f"'{name}'", where=_where(paths, name, "organization"),
                              fix="give each node its own organisation id")
        owner[p.organization] = name
        org_of[name] = p.organization
    return org_of


def _check_hosts(deployed: dict[str, PartnerConfig], paths) -> None:
    seen: dict[str, str] = {}
    for name, p in deployed.items():
        for key in ("backend_host", "frontend_host"):
            host = getattr(p.deployment, key)
            if not host:
                raise ConfigError(f"node '{name}' has no {key.replace('_', ' ')}",
                                  where=_where(paths, name, f"deployment.{key}"),
                                  fix="set the DNS name the node's ingress answers on")
            if host in seen:
                raise ConfigError(f"host '{host}' is used by both '{seen[host]}' and '{name}'",
                                  where=_where(paths, name, f"deployment.{key}"), fix="give each ingress its own host")
            seen[host] = name


def _check_orchestrator(deployed: dict[str, PartnerConfig], paths) -> None:
    for name, p in deployed.items():
        if p.deployment.orchestrator is None:
            raise ConfigError(f"node '{name}' does not say where the orchestrator is",
                              where=_where(paths, name, "deployment.orchestrator"),
                              fix="add deployment.orchestrator.host (the same on every node)")
    hosts = [n for n, p in deployed.items() if p.deployment.orchestrator.hosted_here]
    if len(hosts) != 1:
        some = hosts[1] if hosts else next(iter(deployed))
        found = ", ".join(hosts) if hosts else "none"
        raise ConfigError(f"a Substra network needs exactly one orchestrator host; found {len(hosts)} ({found})",
                          where=_where(paths, some, "deployment.orchestrator.hosted_here"),
                          fix="set hosted_here: true on exactly one node (an organisation all partners trust)")
    ref = deployed[hosts[0]].deployment.orchestrator
    for name, p in deployed.items():
        o = p.deployment.orchestrator
        if (o.host, o.port, o.tls) != (ref.host, ref.port, ref.tls):
            raise ConfigError(f"node '{name}' points at orchestrator {o.host}:{o.port} (tls={o.tls}) but it runs at "
                              f"{ref.host}:{ref.port} (tls={ref.tls}) on '{hosts[0]}'",
                              where=_where(paths, name, "deployment.orchestrator"),
                              fix="use the same orchestrator host, port and tls setting on every node")


def _check_links(deployed: dict[str, PartnerConfig], org_of: dict[str, str], paths) -> None:
    name_of = {org: n for n, org in org_of.items()}
    for name, p in deployed.items():
        me = org_of[name]
        for direction, other_dir in (("outgoing", "incoming"), ("incoming", "outgoing")):
            for org in getattr(p.deployment.links, direction):
                key = f"deployment.links.{direction}"
                if org not in name_of:
                    raise ConfigError(f"node '{name}' links to unknown organisation '{org}'", where=_where(paths, name, key),
                                      fix=f"use the organisation ids of the network: {', '.join(sorted(name_of))}")
                if org == me:
                    continue  # a backend may list itself (Substra's own examples do)
                other = name_of[org]
                if me not in getattr(deployed[other].deployment.links, other_dir):
                    raise ConfigError(f"asymmetric link: '{name}' lists '{org}' as {direction} but '{other}' does not "
                                      f"list '{me}' as {other_dir}",
                                      where=_where(paths, other, f"deployment.links.{other_dir}"),
                                      fix=f"add {me} to {other}'s links.{other_dir} (or remove the link on both sides)")


def _check_channels(deployed: dict[str, PartnerConfig], org_of: dict[str, str], paths) -> None:
    members: dict[str, list[str]] = {}
    for name, p in deployed.items():
        if not p.deployment.channels:
            raise ConfigError(f"node '{name}' is in no channel", where=_where(paths, name, "deployment.channels"),
                              fix="add the consortium's channel, e.g. [fedchem]")
        for ch in p.deployment.channels:
            members.setdefault(ch, []).append(name)
    for ch, names in members.items():
        for a in names:
            links = deployed[a].deployment.links
            for b in names:
                if a == b:
                    continue
                for direction in ("outgoing", "incoming"):
                    if org_of[b] not in getattr(links, direction):
                        raise ConfigError(f"'{a}' and '{b}' share channel '{ch}' but '{a}' has no {direction} link "
                                          f"to {org_of[b]}", where=_where(paths, a, f"deployment.links.{direction}"),
                                          fix=f"add {org_of[b]} to links.{direction} of '{a}' (members of a channel "
                                              "exchange models, so each needs both links to every other)")


def channel_members(network: Network) -> dict[str, list[str]]:
    """channel -> sorted organisation ids in it: the orchestrator's `channels` value."""
    out: dict[str, set[str]] = {}
    for p in network.nodes().values():
        if p.deployment is None or p.organization is None:
            continue
        for ch in p.deployment.channels:
            out.setdefault(ch, set()).add(p.organization)
    return {ch: sorted(orgs) for ch, orgs in sorted(out.items())}
