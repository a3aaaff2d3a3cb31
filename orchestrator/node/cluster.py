"""What Helm does not do for a partner's node, through the `kubernetes` client: secrets, readiness, status.

Secrets are built from a local folder (the node file's `deployment.secrets_dir`) and sent straight to the
cluster's API; they never pass through a values file. Layout of that folder (one value per file, no newline needed):
    users/<name>              password of each admin user listed in deployment.admin_users
    incoming/<ORG>            password organisation ORG uses to call this backend (one per links.incoming)
    outgoing/<ORG>            password this backend uses to call ORG (= ORG's incoming/<this org>)
    database-password         backend Postgres password
    redis-password            backend Redis password
    objectstore-password      backend MinIO root password
    orchestrator-database-password   only on the node that hosts the orchestrator
Every function takes a `CoreV1Api`-like object, so the cluster boundary is the only thing a test replaces.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from fedchem.opener.errors import ConfigError, FedchemError
from fedchem.orchestrator.config import PartnerConfig

MANAGED_BY = {"app.kubernetes.io/managed-by": "fedchem"}


def _read_secret_file(path: Path, min_length: int, what: str) -> str:
    if not path.is_file():
        raise ConfigError(f"the {what} is missing", where=str(path),
                          fix="create it with a random value, e.g. "
                              "`python -c 'import secrets;print(secrets.token_urlsafe(32))' > FILE`")
    value = path.read_text().strip()
    if len(value) < min_length:
        raise ConfigError(f"the {what} is too short ({len(value)} characters, at least {min_length} required)",
                          where=str(path), fix=f"use a random value of {min_length} characters or more")
    if any(c.isspace() for c in value):
        raise ConfigError(f"the {what} contains whitespace", where=str(path),
                          fix="use a single token without spaces (Substra's account files are space-separated)")
    return value


def secret_material(node: PartnerConfig, hosts_orchestrator: bool | None = None) -> dict[str, dict[str, str]]:
    """Kubernetes secret name -> {key: value} for this node, read and checked from its secrets folder."""
    d = node.deployment
    if d is None:
        raise ConfigError(f"node '{node.name}' has no deployment section", where="deployment",
                          fix="add one (see partner_configs/pharma-a.yaml)")
    if d.secrets_dir is None:
        raise ConfigError(f"node '{node.name}' names no secrets folder", where="deployment.secrets_dir",
                          fix="set deployment.secrets_dir to a local folder outside the repository")
    root = Path(d.secrets_dir).expanduser()
    n = d.min_password_length
    users = [(u, _read_secret_file(root / "users" / u.name, n, f"password of admin user '{u.name}'"))
             for u in d.admin_users]
    incoming = [(o, _read_secret_file(root / "incoming" / o, n, f"incoming password of '{o}'")) for o in d.links.incoming]
    outgoing = [(o, _read_secret_file(root / "outgoing" / o, n, f"outgoing password to '{o}'")) for o in d.links.outgoing]
    s = d.secret_names
    material = {
        s.accounts: {
            "users": "".join(f"{u.name} {pw} {u.channel}\n" if u.channel else f"{u.name} {pw}\n" for u, pw in users),
            "incoming_organizations": "".join(f"{o} {pw}\n" for o, pw in incoming),
            "outgoing_organizations": "".join(f"{o} {pw}\n" for o, pw in outgoing),
        },
        s.database: {"DATABASE_USERNAME": "substra",
                     "DATABASE_PASSWORD": _read_secret_file(root / "database-password", n, "database password")},
        s.redis: {"redis-password": _read_secret_file(root / "redis-password", n, "Redis password")},
        s.objectstore: {"root-user": "substra",
                        "root-password": _read_secret_file(root / "objectstore-password", n, "object-store password")},
    }
    if d.registration.enabled:
        if not users:
            raise ConfigError(f"node '{node.name}' registers its dataset but has no admin user to log in as",
                              where="deployment.admin_users", fix="add an admin user (its password in users/<name>)")
        material[s.registration_login] = {"username": users[0][0].name, "password": users[0][1]}
    hosted = d.orchestrator is not None and d.orchestrator.hosted_here if hosts_orchestrator is None else hosts_orchestrator
    if hosted:
        material[s.orchestrator_database] = {
            "DATABASE_USERNAME": "orchestrator",
            "DATABASE_PASSWORD": _read_secret_file(root / "orchestrator-database-password", n,
                                                   "orchestrator database password")}
    return material


def describe_material(material: dict[str, dict[str, str]]) -> list[str]:
    """One line per secret, names and keys only (safe to print)."""
    return [f"secret {name}: keys {', '.join(sorted(keys))}" for name, keys in material.items()]


def require_tls(api: Any) -> None:
    """Refuse to send secret material over plaintext HTTP or to a server whose certificate is not checked."""
    conf = getattr(getattr(api, "api_client", None), "configuration", None)
    if conf is None:  # not a kubernetes client (a test's recorded boundary)
        return
    if not str(conf.host).lower().startswith("https://"):
        raise ConfigError("the Kubernetes API is reached over plaintext HTTP: secrets are never sent that way",
                          where=f"kube config server {conf.host}",
                          fix="point the kube context at the API server's https:// address")
    if not conf.verify_ssl:
        raise ConfigError("the kube context skips TLS verification (insecure-skip-tls-verify): secrets would go "
                          "to a server nobody checked", where=f"kube config server {conf.host}",
                          fix="give the cluster's CA (certificate-authority) in the kube config instead")


def apply_secrets(api: Any, namespace: str, material: dict[str, dict[str, str]]) -> list[str]:
    """Create the namespace if absent, then create or replace each secret (idempotent: a second run leaves the same
    secrets). Refuses a plaintext or unverified connection before anything is sent. Returns the names applied."""
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    require_tls(api)
    try:
        api.read_namespace(namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise _api_error(exc, f"reading namespace {namespace}") from None
        api.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace, labels=MANAGED_BY)))
    done = []
    for name, data in material.items():
        body = client.V1Secret(metadata=client.V1ObjectMeta(name=name, namespace=namespace, labels=MANAGED_BY),
                               type="Opaque", string_data=data)
        try:
            api.create_namespaced_secret(namespace, body)
        except ApiException as exc:
            if exc.status != 409:
                raise _api_error(exc, f"creating secret {name}") from None
            api.replace_namespaced_secret(name, namespace, body)
        done.append(name)
    return done


def _api_error(exc: Any, doing: str) -> FedchemError:
    return FedchemError(f"the Kubernetes API refused {doing} ({exc.status} {exc.reason})",
                        where="kubernetes API", fix="check your kube context and your rights in that namespace")


@dataclass
class PodState:
    name: str
    phase: str
    ready: bool
    restarts: int


@dataclass
class NodeStatus:
    """Health of a partner's node: its pods and where its backend and web UI answer."""

    partner: str
    namespace: str
    backend_url: str
    frontend_url: str
    pods: list[PodState] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        running = [p for p in self.pods if p.phase != "Succeeded"]
        return bool(running) and all(p.ready for p in running)

    def not_ready(self) -> list[str]:
        return [p.name for p in self.pods if p.phase != "Succeeded" and not p.ready]


def _pod_state(pod: Any) -> PodState:
    statuses = pod.status.container_statuses or []
    ready = bool(statuses) and all(s.ready for s in statuses)
    return PodState(name=pod.metadata.name, phase=pod.status.phase or "Unknown", ready=ready,
                    restarts=sum(s.restart_count or 0 for s in statuses))


def node_status(api: Any, node: PartnerConfig) -> NodeStatus:
    """List the pods of the node's release and report readiness, restarts and the public URLs."""
    d = node.deployment
    scheme = "https" if d.tls.enabled else "http"
    try:
        pods = api.list_namespaced_pod(d.namespace, label_selector=f"app.kubernetes.io/instance={d.release}")
    except Exception as exc:  # ApiException or a connection error: both mean "cannot see the node"
        status = getattr(exc, "status", None)
        raise FedchemError(f"cannot list the pods of node '{node.name}'"
                           + (f" ({status} {getattr(exc, 'reason', '')})" if status else f" ({type(exc).__name__})"),
                           where=f"namespace {d.namespace}", fix="check the kube context and that the node is deployed")
    return NodeStatus(partner=node.name, namespace=d.namespace, backend_url=f"{scheme}://{d.backend_host}",
                      frontend_url=f"{scheme}://{d.frontend_host}",
                      pods=sorted((_pod_state(p) for p in pods.items), key=lambda p: p.name))


def wait_ready(api: Any, node: PartnerConfig, timeout_s: float | None = None, poll_s: float = 5.0,
               sleep: Callable[[float], None] = time.sleep, clock: Callable[[], float] = time.monotonic) -> NodeStatus:
    """Poll the node's pods until all are ready (completed jobs count as done); FedchemError on timeout."""
    timeout_s = node.deployment.ready_timeout_s if timeout_s is None else timeout_s
    deadline = clock() + timeout_s
    while True:
        status = node_status(api, node)
        if status.healthy:
            return status
        if clock() >= deadline:
            waiting = status.not_ready() or ["(no pods yet)"]
            raise FedchemError(f"node '{node.name}' is not ready after {timeout_s:.0f} s: {', '.join(waiting[:8])}",
                               where=f"namespace {status.namespace}",
                               fix="inspect with `kubectl -n NAMESPACE describe pod POD` and `kubectl logs`")
        sleep(poll_s)


def remove_node(api: Any, batch: Any, node: PartnerConfig, delete_namespace: bool = False,
                timeout_s: float = 120.0, sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """What `helm uninstall` leaves of a node: the release's hook Jobs (and their pods), the secrets fedchem created,
    and (with delete_namespace, only when fedchem created it) the namespace. Returns what was deleted. Objects the
    partner made itself (the prepared-data claim) stay unless the namespace goes."""
    from kubernetes.client.rest import ApiException

    d = node.deployment
    ns = d.namespace
    gone = []
    try:
        namespace = api.read_namespace(ns)
    except ApiException as exc:
        if exc.status == 404:
            return gone
        raise _api_error(exc, f"reading namespace {ns}") from None
    selector = f"app.kubernetes.io/instance={d.release},app.kubernetes.io/part-of=fedchem"
    for job in batch.list_namespaced_job(ns, label_selector=selector).items:
        batch.delete_namespaced_job(job.metadata.name, ns, propagation_policy="Foreground")
        gone.append(f"job {job.metadata.name}")
    mine = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    for secret in api.list_namespaced_secret(ns, label_selector=mine).items:
        api.delete_namespaced_secret(secret.metadata.name, ns)
        gone.append(f"secret {secret.metadata.name}")
    labels = (namespace.metadata.labels or {}) if namespace.metadata else {}
    if delete_namespace:
        if labels.get("app.kubernetes.io/managed-by") != MANAGED_BY["app.kubernetes.io/managed-by"]:
            raise ConfigError(f"namespace {ns} was not created by fedchem: not deleting it", where=f"namespace {ns}",
                              fix="delete it yourself if nothing else lives there")
        api.delete_namespace(ns)
        gone.append(f"namespace {ns}")
    deadline = time.monotonic() + timeout_s
    while True:  # wait until the deletions are done (namespace finalised, job pods collected)
        left = batch.list_namespaced_job(ns, label_selector=selector).items + \
            api.list_namespaced_pod(ns, label_selector=f"app.kubernetes.io/instance={d.release}").items
        if delete_namespace:
            try:
                api.read_namespace(ns)
                left = left or ["namespace"]
            except ApiException as exc:
                if exc.status != 404:
                    raise _api_error(exc, f"reading namespace {ns}") from None
                return gone
        if not left:
            return gone
        if time.monotonic() >= deadline:
            raise FedchemError(f"node '{node.name}' is not fully removed after {timeout_s:.0f} s", where=f"namespace {ns}",
                               fix="inspect with `kubectl -n NAMESPACE get all` and run the uninstall again")
        sleep(1.0)


def _load_config(context: str | None) -> None:
    """The kube config named by KUBECONFIG now (the client reads it only once, at import), else ~/.kube/config,
    else the in-cluster config when run inside a pod."""
    from kubernetes import config

    try:
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG") or None, context=context)
    except Exception:
        try:
            config.load_incluster_config()
        except Exception:
            raise ConfigError("no Kubernetes configuration found", where=f"kube context {context or '(current)'}",
                              fix="point KUBECONFIG at the partner's cluster or set deployment.kube_context") from None


def core_api(context: str | None = None) -> Any:
    """A CoreV1Api for the given kube context (or the in-cluster config when run inside a pod)."""
    from kubernetes import client

    _load_config(context)
    return client.CoreV1Api()


def batch_api(context: str | None = None) -> Any:
    """A BatchV1Api (Jobs) for the given kube context."""
    from kubernetes import client

    _load_config(context)
    return client.BatchV1Api()
