"""From an installed wheel (no checkout around): the chart and stand-ins are package data, helm is a v3 on PATH or
the pinned one, and the function archives' wheel is the installed fedchem repacked. The wheel is built for real
(`pip wheel --no-deps`) and installed with `pip install --no-deps --target` (its dependencies come from the
project's environment); every check runs in a fresh interpreter outside the checkout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
HELM = ROOT / ".tools" / "helm"  # the pinned helm (installed by the `installed` fixture when absent)


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    from fedchem.orchestrator.node.helm_install import install_helm

    assert install_helm(HELM.parent) == HELM
    tmp = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp / "dist"), str(ROOT)], check=True, capture_output=True)
    wheel = next((tmp / "dist").glob("fedchem-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target",
                    str(tmp / "site"), str(wheel)], check=True, capture_output=True)
    return tmp, wheel


def _run(installed, code: str, path_dirs: list[Path] = (), extra_env: dict | None = None) -> dict:
    tmp, _ = installed
    env = {"PATH": os.pathsep.join([*map(str, path_dirs), "/usr/bin", "/bin"]), "PYTHONPATH": str(tmp / "site"),
           "HOME": str(tmp / "home"), "XDG_CACHE_HOME": str(tmp / "xdg-cache"), **(extra_env or {})}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_chart_and_standins_resolve_inside_the_installed_package(installed):
    tmp, _ = installed
    got = _run(installed, "import json; from fedchem.orchestrator.node import helm; "
                          "print(json.dumps([str(helm.CHART_DIR), str(helm.STANDINS_DIR)]))")
    chart, standins = map(Path, got)
    assert chart == tmp / "site" / "fedchem" / "orchestrator" / "node" / "chart"
    for rel in ("Chart.yaml", "values.yaml", "values.schema.json", ".helmignore", "templates/job-register-dataset.yaml",
                "templates/_helpers.tpl", "templates/networkpolicies.yaml", "templates/configmap-fedchem.yaml"):
        assert (chart / rel).is_file(), rel
    assert sorted(p.name for p in standins.iterdir() if (p / "Chart.yaml").is_file()) == \
        ["orchestrator", "substra-backend", "substra-frontend"]
    # a dry-run deploy from the installed package renders that chart (with the packaged stand-ins: the Substra
    # repository given is a closed loopback port, so the run is offline on every machine)
    out = tmp / "deploy-out"
    code = ("import contextlib, io, json, sys; from fedchem.orchestrator.cli.main import main; buf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf):\n"
            f"    rc = main(['node', 'deploy', 'pharma-a', '--consortium', {str(ROOT / 'partner_configs' / 'consortium.yaml')!r},"
            f" '--dry-run', '--helm', {str(HELM)!r}, '--out', {str(out)!r}, '--substra-repo', 'http://127.0.0.1:9/'])\n"
            "print(buf.getvalue(), file=sys.stderr); print(json.dumps([rc, buf.getvalue()]))")
    rc, printed = _run(installed, code)
    assert rc == 0 and "STAND-IN" in printed and "rendered:" in printed, printed
    manifests = (out / "pharma-a" / "manifests.yaml").read_text()
    assert "fedchem-fedchem-register-dataset" in manifests and "image: ghcr.io/fedchem/fedchem:" in manifests


def test_helm_on_path_is_preferred_only_when_it_is_a_v3(installed):
    tmp, _ = installed
    v3 = tmp / "bin-v3"
    v3.mkdir()
    (v3 / "helm").symlink_to(HELM)
    code = "import json; from fedchem.orchestrator.node.helm_install import find_helm; print(json.dumps(str(find_helm())))"
    assert Path(_run(installed, code, [v3])) == v3 / "helm"
    # a helm 2 on PATH (a two-line script answering as helm 2 does: a stand-in, only its version matters) is passed
    # over for the pinned v3.19.0, installed into the user's cache (seeded here with the project's copy: no download)
    v2 = tmp / "bin-v2"
    v2.mkdir()
    (v2 / "helm").write_text('#!/bin/sh\necho "Client: v2.17.0+ga690bad"\n')
    (v2 / "helm").chmod(0o755)
    cache = tmp / "xdg-cache" / "fedchem" / "tools"
    cache.mkdir(parents=True)
    (cache / "helm").write_bytes(HELM.read_bytes())
    (cache / "helm").chmod(0o755)
    assert Path(_run(installed, code, [v2])) == cache / "helm"


def test_function_archives_carry_the_installed_fedchem_repacked(installed):
    _, built = installed
    got = _run(installed, "import json; from fedchem.orchestrator.run.archive import fedchem_wheel; w = fedchem_wheel(); "
                          "print(json.dumps([str(w.path), w.sha256, w.origin]))")
    path, sha, origin = Path(got[0]), got[1], got[2]
    assert origin == f"installed {version('fedchem')}" and path.name == built.name
    with zipfile.ZipFile(built) as a, zipfile.ZipFile(path) as b:
        package = lambda z: {n: z.read(n) for n in z.namelist() if n.startswith("fedchem/")}  # noqa: E731
        assert package(a) == package(b)  # the same package files, byte for byte
        info = next(n for n in b.namelist() if n.endswith(".dist-info/METADATA"))
        assert b.read(info) == a.read(info)
    again = _run(installed, "import json; from fedchem.orchestrator.run.archive import fedchem_wheel; "
                            "print(json.dumps(fedchem_wheel().sha256))")
    assert again == sha  # repacking is deterministic
