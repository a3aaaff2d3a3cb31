"""A real Kubernetes control plane on loopback for tests: etcd, kube-apiserver, controller-manager, scheduler.

Binaries are found the envtest way (a folder named by KUBEBUILDER_ASSETS holding `etcd` and `kube-apiserver`, and
optionally `kube-controller-manager` and `kube-scheduler`), else in ../shared/k8s (xz-compressed, sha256-checked
against its SHA256SUMS, unpacked once into .cache/k8s) with etcd from PATH (Debian's `etcd-server`). When none is
found the caller skips, saying why. There is no kubelet and no container runtime: `Kubelet` plays the node (a Ready
Node object; pods' phases patched through the API, as kwok does), and every test using it says so.
Everything binds to 127.0.0.1 on free ports; every process is stopped by its own pid.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import lzma
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED_K8S = (ROOT / ".." / "shared" / "k8s").resolve()
CACHE = ROOT / ".cache" / "k8s"
TOKEN = "fedchem-test-admin-token"
CONTROLLERS = "*,-nodeipam,-nodelifecycle,-attachdetach,-ttl,-cloud-node-lifecycle,-pvc-protection,-pv-protection"


@dataclass
class Binaries:
    etcd: Path
    apiserver: Path
    controller_manager: Path | None
    scheduler: Path | None
    source: str


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _unpack_shared(name: str) -> Path | None:
    """../shared/k8s/<name>.xz, checked against SHA256SUMS, unpacked once into .cache/k8s/<name>."""
    src = SHARED_K8S / f"{name}.xz"
    if not src.is_file():
        return None
    dest = CACHE / name
    if dest.is_file() and os.access(dest, os.X_OK):
        return dest
    sums = dict(reversed(line.split()) for line in (SHARED_K8S / "SHA256SUMS").read_text().splitlines() if line)
    if sums.get(src.name) != _sha256(src):
        raise RuntimeError(f"{src} does not match {SHARED_K8S / 'SHA256SUMS'}")
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=CACHE, delete=False) as tmp, lzma.open(src) as xz:
        shutil.copyfileobj(xz, tmp)
    os.chmod(tmp.name, 0o755)
    os.replace(tmp.name, dest)
    return dest


def find_binaries() -> tuple[Binaries | None, str]:
    """The control-plane binaries, or (None, why not)."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        a = Path(assets)
        if (a / "etcd").is_file() and (a / "kube-apiserver").is_file():
            opt = lambda n: (a / n) if (a / n).is_file() else None  # noqa: E731
            return Binaries(a / "etcd", a / "kube-apiserver", opt("kube-controller-manager"), opt("kube-scheduler"),
                            f"KUBEBUILDER_ASSETS={a}"), ""
        return None, f"KUBEBUILDER_ASSETS={a} holds no etcd and kube-apiserver"
    etcd = shutil.which("etcd")
    if etcd is None:
        return None, "no etcd on PATH (Debian: apt-get install etcd-server; or set KUBEBUILDER_ASSETS)"
    apiserver = _unpack_shared("kube-apiserver")
    if apiserver is None:
        return None, f"no kube-apiserver: neither KUBEBUILDER_ASSETS nor {SHARED_K8S}/kube-apiserver.xz"
    return Binaries(Path(etcd), apiserver, _unpack_shared("kube-controller-manager"),
                    _unpack_shared("kube-scheduler"), str(SHARED_K8S)), ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _certificates(folder: Path) -> None:
    """A self-signed CA, the API server's serving certificate (SAN 127.0.0.1, localhost, kubernetes.default.svc)
    and the service-account signing key, written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    def pem_key(key) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                 serialization.NoEncryption())

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fedchem-test-ca")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    sans = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
            x509.DNSName("kubernetes.default.svc"), x509.IPAddress(ipaddress.ip_address("10.96.0.1"))]
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName(sans), critical=False).sign(ca_key, hashes.SHA256()))
    (folder / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "apiserver.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "apiserver.key").write_bytes(pem_key(key))
    sa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (folder / "sa.key").write_bytes(pem_key(sa))
    (folder / "sa.pub").write_bytes(sa.public_key().public_bytes(serialization.Encoding.PEM,
                                                                 serialization.PublicFormat.SubjectPublicKeyInfo))


def write_kubeconfig(path: Path, server: str, ca: Path | None, token: str = TOKEN, insecure: bool = False) -> Path:
    cluster = {"server": server}
    if ca is not None:
        cluster["certificate-authority"] = str(ca)
    if insecure:
        cluster["insecure-skip-tls-verify"] = True
    import yaml

    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "test",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": "admin", "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}]}))
    path.chmod(0o600)
    return path


@dataclass
class ControlPlane:
    """A running control plane; `kubeconfig` points at it with cluster-admin rights."""

    folder: Path
    binaries: Binaries
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    server: str = ""
    kubeconfig: Path | None = None

    def _spawn(self, name: str, args: list[str]) -> None:
        log = open(self.folder / f"{name}.log", "wb")
        self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def _wait(self, what: str, ok, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, p in self.procs.items():
                if p.poll() is not None:
                    tail = (self.folder / f"{name}.log").read_text(errors="replace")[-2000:]
                    raise RuntimeError(f"{name} exited with {p.returncode} while waiting for {what}:\n{tail}")
            if ok():
                return
            time.sleep(0.3)
        raise RuntimeError(f"timed out waiting for {what}")

    def start(self, controllers: bool = True) -> "ControlPlane":
        f, b = self.folder, self.binaries
        _certificates(f)
        (f / "tokens.csv").write_text(f"{TOKEN},admin,admin,system:masters\n")
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        self._spawn("etcd", [str(b.etcd), "--data-dir", str(f / "etcd"), "--name", "test",
                             "--listen-client-urls", f"http://127.0.0.1:{etcd_port}",
                             "--advertise-client-urls", f"http://127.0.0.1:{etcd_port}",
                             "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
                             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
                             "--initial-cluster", f"test=http://127.0.0.1:{peer_port}",
                             "--listen-metrics-urls", "", "--log-level", "warn"])
        self._spawn("kube-apiserver", [
            str(b.apiserver), f"--etcd-servers=http://127.0.0.1:{etcd_port}", "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1", f"--secure-port={api_port}", "--insecure-port=0",
            f"--cert-dir={f / 'certs'}", f"--tls-cert-file={f / 'apiserver.crt'}",
            f"--tls-private-key-file={f / 'apiserver.key'}", f"--token-auth-file={f / 'tokens.csv'}",
            "--authorization-mode=RBAC", f"--service-account-key-file={f / 'sa.pub'}",
            f"--service-account-signing-key-file={f / 'sa.key'}",
            "--service-account-issuer=https://kubernetes.default.svc", "--service-cluster-ip-range=10.96.0.0/16",
            "--enable-priority-and-fairness=false", "--v=0"])
        self.server = f"https://127.0.0.1:{api_port}"
        ctx = ssl.create_default_context(cafile=str(f / "ca.crt"))

        def ready() -> bool:
            req = urllib.request.Request(self.server + "/readyz", headers={"Authorization": f"Bearer {TOKEN}"})
            try:
                with urllib.request.urlopen(req, context=ctx, timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        self._wait("kube-apiserver /readyz", ready)
        self.kubeconfig = write_kubeconfig(f / "kubeconfig", self.server, f / "ca.crt")
        if controllers and b.controller_manager is not None:
            self._spawn("kube-controller-manager", [
                str(b.controller_manager), f"--kubeconfig={self.kubeconfig}", "--secure-port=0", "--port=0",
                "--leader-elect=false", f"--controllers={CONTROLLERS}",
                f"--service-account-private-key-file={f / 'sa.key'}", f"--root-ca-file={f / 'ca.crt'}",
                "--use-service-account-credentials=false", "--v=0"])
        if controllers and b.scheduler is not None:
            self._spawn("kube-scheduler", [str(b.scheduler), f"--kubeconfig={self.kubeconfig}", "--secure-port=0",
                                           "--port=0", "--leader-elect=false", "--v=0"])
        return self

    @property
    def has_controllers(self) -> bool:
        return "kube-controller-manager" in self.procs and "kube-scheduler" in self.procs

    def api_client(self):
        from kubernetes import client, config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()


class Kubelet:
    """Plays the kubelet of one node (no kubelet or container runtime exists here): registers a Ready Node and,
    in a background thread, moves every pod the real scheduler bound to it through the phases a kubelet would
    report: a Job's pod to Succeeded (container exited 0), any other pod to Running with ready containers; a pod
    being deleted is confirmed gone (grace period 0), as a kubelet does once its containers stopped."""

    def __init__(self, api_client, name: str = "test-node"):
        from kubernetes import client

        self.core = client.CoreV1Api(api_client)
        self.name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.seen: dict[str, str] = {}  # "namespace/pod" -> the phase we reported

    def register_node(self) -> None:
        from kubernetes import client

        node = client.V1Node(metadata=client.V1ObjectMeta(name=self.name, labels={
            "kubernetes.io/hostname": self.name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"}))
        self.core.create_node(node)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.core.patch_node_status(self.name, {"status": {
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "played by the test",
                            "lastHeartbeatTime": now.isoformat(), "lastTransitionTime": now.isoformat()}],
            "nodeInfo": {"kubeletVersion": "v1.20.2", "kubeProxyVersion": "v1.20.2", "containerRuntimeVersion": "none://0",
                         "architecture": "amd64", "operatingSystem": "linux", "osImage": "test", "kernelVersion": "0",
                         "machineID": "0", "systemUUID": "0", "bootID": "0"}}})
        # a fresh node carries the not-ready taint until the node lifecycle controller (off here) clears it
        self.core.patch_node(self.name, {"spec": {"taints": None}})

    def _tick(self) -> None:
        pods = self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={self.name}").items
        now = datetime.datetime.now(datetime.timezone.utc).isoformat()
        for pod in pods:
            key = f"{pod.metadata.namespace}/{pod.metadata.name}"
            if pod.metadata.deletion_timestamp is not None:  # a kubelet stops the containers, then confirms
                self.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0)
                continue
            if pod.status.phase in ("Succeeded", "Failed") or self.seen.get(key) == pod.status.phase == "Running":
                continue
            is_job = any(o.kind == "Job" for o in (pod.metadata.owner_references or []))
            names = [c.name for c in pod.spec.containers]
            if is_job:
                statuses = [{"name": n, "ready": False, "restartCount": 0, "image": "played", "imageID": "",
                             "state": {"terminated": {"exitCode": 0, "reason": "Completed", "startedAt": now,
                                                      "finishedAt": now}}} for n in names]
                status = {"phase": "Succeeded", "containerStatuses": statuses, "startTime": now,
                          "conditions": [{"type": "Ready", "status": "False", "reason": "PodCompleted"}]}
            else:
                statuses = [{"name": n, "ready": True, "restartCount": 0, "image": "played", "imageID": "",
                             "started": True, "state": {"running": {"startedAt": now}}} for n in names]
                status = {"phase": "Running", "containerStatuses": statuses, "startTime": now, "podIP": "10.0.0.10",
                          "conditions": [{"type": "Ready", "status": "True"}, {"type": "ContainersReady",
                                                                               "status": "True"}]}
            self.core.patch_namespaced_pod_status(pod.metadata.name, pod.metadata.namespace, {"status": status})
            self.seen[key] = status["phase"]

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._tick()
            except Exception:  # a pod deleted between list and patch: the next tick sees the new state
                pass
            self._stop.wait(0.5)

    def start(self) -> "Kubelet":
        self.register_node()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="played-kubelet")
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
