"""`fedchem node ...`: a partner's Substra node on Kubernetes (values, secrets, deploy, status)."""

from __future__ import annotations

import argparse
from pathlib import Path

DEFAULT_CONSORTIUM = Path("partner_configs/consortium.yaml")


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "node", help="deploy and inspect a partner's Substra node (Helm + Kubernetes)",
        description="A partner's Substra node: Substra's Helm charts plus fedchem's chart (deploy/helm), values "
                    "generated from the node file, secrets created from a local folder, health from the cluster.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(title="node commands", metavar="ACTION")

    def add(name: str, help_: str, func):
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("partner", help="node name (a partner, or the aggregator organisation)")
        p.add_argument("--consortium", type=Path, default=DEFAULT_CONSORTIUM, help="consortium config (%(default)s)")
        p.set_defaults(func=func)
        return p

    p = add("values", "write the Helm values of a node, generated from its node file", _values)
    p.add_argument("--out", type=Path, default=None, help="values file to write (default: print to stdout)")
    p = add("secrets", "create the node's Kubernetes secrets from its local secrets folder (or list them)", _secrets)
    p.add_argument("--dry-run", action="store_true", help="only check the files and list secret names and keys")
    p = add("deploy", "the steps of `make deploy-partner`: helm repo/dependency, secrets, upgrade --install, wait",
            _deploy)
    p.add_argument("--helm", type=Path, default=None,
                   help="helm binary (default: a helm v3 on PATH, else the pinned v3.19.0, installed on first use)")
    p.add_argument("--dry-run", action="store_true", help="print every command and render the manifests only")
    p.add_argument("--out", type=Path, default=None, help="folder for generated values and manifests")
    p.add_argument("--substra-repo", default=None,
                   help="Substra's chart repository (default: https://substra.github.io/charts/)")
    p.add_argument("--chart", type=Path, default=None, help="the fedchem-node chart folder (default: fedchem's own)")
    p = add("uninstall", "remove a node: helm uninstall, then the hook Jobs and secrets helm leaves behind", _uninstall)
    p.add_argument("--helm", type=Path, default=None, help="helm binary (default: as for deploy)")
    p.add_argument("--delete-namespace", action="store_true",
                   help="also delete the namespace (only one fedchem created; takes the prepared-data claim with it)")
    p = add("status", "health of a node: pods, readiness, restarts, backend and web UI URLs", _status)
    p.add_argument("--wait", action="store_true", help="wait until every pod is ready (deployment.ready_timeout_s)")
    parser.set_defaults(func=lambda args: (parser.print_help(), 0)[1])


def _node(args):
    from fedchem.opener.errors import ConfigError
    from fedchem.orchestrator.node.network import load_network

    network = load_network(args.consortium)
    nodes = network.nodes()
    if args.partner not in nodes:
        raise ConfigError(f"no node named '{args.partner}'", where=str(args.consortium),
                          fix=f"use one of: {', '.join(nodes)}")
    return network, nodes[args.partner]


def _values(args) -> int:
    import yaml

    from fedchem.orchestrator.node.values import node_values, write_values

    network, _ = _node(args)
    values = node_values(network, args.partner)
    if args.out:
        print(write_values(values, args.out))
    else:
        print(yaml.safe_dump(values, sort_keys=False), end="")
    return 0


def _secrets(args) -> int:
    from fedchem.orchestrator.node.cluster import apply_secrets, core_api, describe_material, secret_material

    _, node = _node(args)
    material = secret_material(node)
    if args.dry_run:
        for line in describe_material(material):
            print(line)
        return 0
    for name in apply_secrets(core_api(node.deployment.kube_context), node.deployment.namespace, material):
        print(f"secret {name} applied in namespace {node.deployment.namespace}")
    return 0


def _deploy(args) -> int:
    from fedchem.orchestrator.node.deploy import DEFAULT_OUT, deploy_partner
    from fedchem.orchestrator.node.helm import CHART_DIR
    from fedchem.orchestrator.node.values import SUBSTRA_REPO_URL

    deploy_partner(args.consortium, args.partner, args.helm, dry_run=args.dry_run, out_dir=args.out or DEFAULT_OUT,
                   repo_url=args.substra_repo or SUBSTRA_REPO_URL, chart=args.chart or CHART_DIR)
    return 0


def _uninstall(args) -> int:
    from fedchem.orchestrator.node.deploy import uninstall_partner

    _node(args)
    removed = uninstall_partner(args.consortium, args.partner, args.helm, delete_namespace=args.delete_namespace)
    print(f"node {args.partner} removed: " + (", ".join(removed) if removed else "nothing was installed"))
    return 0


def _status(args) -> int:
    from fedchem.orchestrator.node.cluster import core_api, node_status, wait_ready

    _, node = _node(args)
    api = core_api(node.deployment.kube_context)
    status = wait_ready(api, node) if args.wait else node_status(api, node)
    print(f"node {status.partner} (namespace {status.namespace}): {'healthy' if status.healthy else 'NOT READY'}")
    print(f"  web UI:  {status.frontend_url}")
    print(f"  backend: {status.backend_url}")
    for p in status.pods:
        print(f"  {p.name:<60} {p.phase:<10} {'ready' if p.ready else 'not ready':<10} restarts={p.restarts}")
    return 0 if status.healthy else 1
