"""The wheel installs everything under one namespace, fedchem.*, and claims no bare top-level name."""

from __future__ import annotations

import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

from fedchem.orchestrator.cli import main as cli

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_claims_only_the_fedchem_namespace(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True)
    wheel = next(tmp_path.glob("fedchem-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/", 1)[0] for n in names}
    assert tops == {"fedchem", next(t for t in tops if t.endswith(".dist-info"))}, tops
    for bare in ("algo", "opener", "metrics", "orchestrator"):
        assert not any(n.startswith(f"{bare}/") for n in names)
        assert f"fedchem/{bare}/__init__.py" in names
    assert "fedchem/algo/secagg/protocol.py" in names
    shipped = (ROOT / "opener" / "public" / "data" / "SHA256SUMS").read_text().split()[1::2]
    assert len(shipped) == 5
    for name in [*shipped, "SHA256SUMS", "README.md", "LICENSES.md"]:  # the public sets and their provenance
        assert f"fedchem/opener/public/data/{name}" in names, name
    entry = next(n for n in names if n.endswith("entry_points.txt"))
    assert "fedchem = fedchem.orchestrator.cli.main:entry" in zipfile.ZipFile(wheel).read(entry).decode()


def test_every_subcommand_module_exists_and_has_help(capsys):
    for name in cli.COMMAND_MODULES:
        importlib.import_module(f"fedchem.orchestrator.cli.{name}")
    try:
        cli.main(["--help"])
    except SystemExit as exc:
        assert exc.code == 0
    out = capsys.readouterr().out
    for command in ("data", "prepare", "train-local", "run", "status", "pull", "report", "predict", "node", "demo"):
        assert f"    {command}" in out, command
