"""Function archives a real Substra node can build: registered on the real Substra SDK (subprocess mode), fetched
back through the SDK, unpacked; the wheel they carry installs into a fresh folder and every function module imports
from there. No container engine exists here, so the Dockerfile is linted (real hadolint), not built."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from fedchem.algo.functions.specs import FUNCTIONS
from fedchem.opener.fileio import sha256_file
from fedchem.orchestrator.ledger import Ledger
from fedchem.orchestrator.run import archive
from fedchem.orchestrator.run.backend import local_network, register_functions, working_directory

HADOLINT = Path(sys.executable).parent / "hadolint"
SWALLOWED = [r"\|\|\s*true", r"\|\|\s*:", r"\|\|\s*exit 0", r"set \+e", r"if present", r"2>\s*/dev/null\s*\|\|",
             r";\s*true\b"]


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """Every fedchem function registered on a real subprocess-mode Substra client, then downloaded back."""
    tmp = tmp_path_factory.mktemp("archives")
    with working_directory(tmp / "work"):
        net = local_network(["pharma-a"], "platform")
        reg = register_functions(net, tmp / "functions")
        fetched = {}
        for name, key in reg.keys.items():
            (tmp / "fetched" / name).mkdir(parents=True)
            # the SDK names the download function.tar.gz whatever its format; ours is a zip (read by content)
            path = net.operator.download_function(key, destination_folder=str(tmp / "fetched" / name))
            fetched[name] = Path(path)
    return net, reg, fetched, tmp


def test_every_registered_archive_carries_the_wheel_and_a_strict_dockerfile(registered):
    net, reg, fetched, tmp = registered
    assert set(fetched) == set(FUNCTIONS) and net.wheel == reg.wheel
    assert reg.wheel.sha256 == sha256_file(reg.wheel.path) and reg.wheel.origin.startswith("checkout ")
    for name, path in fetched.items():
        with zipfile.ZipFile(path) as z:
            names = set(z.namelist())
            assert names == {"Dockerfile", "function.py", "constraints.txt", reg.wheel.path.name}, names
            folder = tmp / "unpacked" / name
            z.extractall(folder)
        assert sha256_file(folder / reg.wheel.path.name) == reg.wheel.sha256  # the wheel the ledger records
        text = (folder / "Dockerfile").read_text()
        for pattern in SWALLOWED:
            assert not re.search(pattern, text), (name, pattern)
        assert f"COPY {reg.wheel.path.name} constraints.txt /workspace/" in text
        assert f"torch=={archive.TORCH_VERSION}" in text and archive.TORCH_INDEX in text
        assert f'python -c "import {FUNCTIONS[name].module}"' in text  # the build fails if the module cannot import
        if FUNCTIONS[name].module in archive.KERNEL_MODULES:  # numba's kernels compiled into the image, readable
            assert f"ENV NUMBA_CACHE_DIR={archive.NUMBA_CACHE_DIR}\n" in text
            assert (f" && python -m fedchem.algo.kernel_cache \\\n && chmod -R a+rwX {archive.NUMBA_CACHE_DIR}"
                    in text)
        else:
            assert "NUMBA" not in text and "kernel_cache" not in text
        entry = [ln for ln in text.splitlines() if ln.startswith("ENTRYPOINT")]
        assert json.loads(entry[0].split(" ", 1)[1]) == ["python3", "function.py", "--function-name", name]
        pins = dict(ln.split("==") for ln in (folder / "constraints.txt").read_text().split())
        assert pins["torch"] == "2.13.0" and pins["substratools"] == "1.0.0" and pins["substra"] == "1.0.0"
        assert not [p for p in pins if p.startswith("nvidia-")]
        lint = subprocess.run([str(HADOLINT), "--failure-threshold", "info", str(folder / "Dockerfile")],
                              capture_output=True, text=True)
        assert lint.returncode == 0, lint.stdout + lint.stderr
    assert "wheel_sha256" in Ledger.__dataclass_fields__  # the run's ledger has a place for the hash


def test_the_wheel_from_an_archive_installs_and_every_function_module_imports(registered, tmp_path):
    _, reg, fetched, _ = registered
    with zipfile.ZipFile(fetched["train"]) as z:
        z.extract(reg.wheel.path.name, tmp_path)
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(target), str(tmp_path / reg.wheel.path.name)], check=True, capture_output=True)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(target), "HOME": str(tmp_path)}
    for module in sorted({f.module for f in FUNCTIONS.values()}):
        out = subprocess.run([sys.executable, "-c", f"import {module}; print({module}.__file__)"], cwd=tmp_path,
                             env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip().startswith(str(target)), (module, out.stdout)  # the wheel's copy, not the checkout
    # the train image's warm step, from the wheel's copy (numba and torch from this environment)
    warm_env = {**env, "NUMBA_CACHE_DIR": str(tmp_path / "numba")}
    warm = subprocess.run([sys.executable, "-m", "fedchem.algo.kernel_cache"], cwd=tmp_path, env=warm_env,
                          capture_output=True, text=True)
    assert warm.returncode == 0, warm.stderr
    assert "row_kernels.adam_rows" in warm.stdout and any((tmp_path / "numba").rglob("*.nbi"))


def test_the_wheel_is_built_once_per_source_hash(tmp_path):
    root = archive.checkout_root()
    assert root is not None
    first = archive.fedchem_wheel()
    assert archive.fedchem_wheel() == first  # cached: same file, same hash
    copy = tmp_path / "src"
    for p in archive._source_paths(root):
        (copy / p.relative_to(root)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(p, copy / p.relative_to(root))
    assert archive.source_hash(copy) == archive.source_hash(root)
    with open(copy / "algo" / "functions" / "train.py", "a") as fh:
        fh.write("\n# changed\n")
    assert archive.source_hash(copy) != archive.source_hash(root)  # any source change makes a new wheel


def test_a_wheel_named_by_fedchem_wheel_must_be_one(monkeypatch, tmp_path):
    from fedchem.opener.errors import ConfigError

    bogus = tmp_path / "not-a-wheel.zip"
    bogus.write_bytes(b"x")
    monkeypatch.setenv("FEDCHEM_WHEEL", str(bogus))
    with pytest.raises(ConfigError, match="FEDCHEM_WHEEL"):
        archive.fedchem_wheel()
