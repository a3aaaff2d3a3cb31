"""The package rules of ARCHITECTURE.md, checked on the source: imports flow one way and each room keeps its door.

Every `import` and `from ... import` of every module is read with `ast` (function-level imports included), with
relative imports resolved, so a rule cannot be dodged by importing late.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {"algo": "fedchem.algo", "opener": "fedchem.opener", "metrics": "fedchem.metrics",
                "orchestrator": "fedchem.orchestrator"}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    if parts[0] in PACKAGE_DIRS:
        parts = PACKAGE_DIRS[parts[0]].split(".") + parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, as absolute dotted names (`from a import b` counts as a and a.b)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    here = module_name(path).split(".")
    is_pkg = path.name == "__init__.py"
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = here if is_pkg else here[:-1]
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return names


def sources(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (ROOT / f).rglob("*.py"))


def under(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def violations(files: list[Path], forbidden: str) -> list[str]:
    return [f"{p.relative_to(ROOT)} imports {m}" for p in files for m in sorted(imports_of(p)) if under(m, forbidden)]


def test_module_names_resolve_relative_imports():
    assert module_name(ROOT / "metrics" / "weighted.py") == "fedchem.metrics.weighted"
    assert "fedchem.metrics.regression" in imports_of(ROOT / "metrics" / "weighted.py")


@pytest.mark.parametrize("folder", ["algo", "opener", "metrics"])
def test_nothing_below_imports_the_orchestrator(folder):
    assert violations(sources(folder), "fedchem.orchestrator") == []


def test_metrics_import_nothing_of_ours_and_opener_knows_no_model():
    bad = [f"{p} imports {m}" for p in sources("metrics") for m in imports_of(p)
           if under(m, "fedchem") and not under(m, "fedchem.metrics")]
    assert bad == []
    assert violations(sources("opener"), "fedchem.algo") == []
    assert violations(sources("opener"), "torch") == []


def test_nothing_outside_cli_imports_the_cli():
    files = [p for p in sources("algo", "opener", "metrics", "orchestrator", "bench")
             if "cli" not in p.relative_to(ROOT).parts]
    assert violations(files, "fedchem.orchestrator.cli") == []


@pytest.mark.parametrize("room", ["report", "node"])
def test_report_and_node_import_nothing_of_run(room):
    assert violations(sources(f"orchestrator/{room}"), "fedchem.orchestrator.run") == []


def test_demo_is_reached_only_from_cli_bench_and_tests():
    files = [p for p in sources("algo", "opener", "metrics", "orchestrator")
             if not {"cli", "demo"} & set(p.relative_to(ROOT).parts)]
    assert violations(files, "fedchem.orchestrator.demo") == []


def test_one_file_io_helper_and_one_parameter_format():
    """Atomic writes go through fedchem.opener.fileio; trunk and head files through fedchem.algo.params."""
    allowed = {ROOT / "opener" / "fileio.py"}
    bad = []
    for p in sources("algo", "opener", "metrics", "orchestrator"):
        text = p.read_text(encoding="utf-8")
        if p not in allowed and ("os.replace(" in text or "tempfile.mkstemp(" in text):
            bad.append(str(p.relative_to(ROOT)))
    assert bad == []
