"""What a Substra task pays before its first useful line: its entry module, and everything it imports (function-level
imports included), must not pull in libraries it never uses. A train task needs torch, not RDKit, scikit-learn or
matplotlib (together about half of its start-up, measured by bench/round.py); the aggregator's and the key tasks'
need no torch either. Checked statically over fedchem's own modules and, for what third-party modules import in
turn, by importing the same modules in a fresh interpreter."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from test_architecture import PACKAGE_DIRS, ROOT, imports_of, under

from fedchem.algo.functions.specs import FUNCTIONS

HEAVY_UNUSED = ("rdkit", "sklearn", "matplotlib")
HEAVY_SUBPACKAGES = ("scipy.integrate", "scipy.stats")  # ~0.15 s and ~0.5 s of a train task's start-up, unused
ENTRY_MODULES = sorted({f.module for f in FUNCTIONS.values()})
NO_TORCH = sorted({f.module for f in FUNCTIONS.values() if f.name in ("aggregate", "init_trunk", "keygen",
                                                                      "deal_shares", "confirm_survivors",
                                                                      "release_shares")})


def path_of(module: str):
    """The source file of one of our modules, or None (third-party, or not a module)."""
    for folder, package in PACKAGE_DIRS.items():
        if under(module, package):
            base = ROOT / folder / "/".join(module.split(".")[len(package.split(".")):])
            for p in (base.with_suffix(".py"), base / "__init__.py"):
                if p.is_file():
                    return p
    return None


def reachable(module: str) -> tuple[set[str], set[str]]:
    """(our modules, everything else) that `module` can import, following every import of ours (and the packages
    that contain each module, which Python imports first)."""
    ours, others, todo = set(), set(), [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for k in range(1, len(parts) + 1):
            prefix = ".".join(parts[:k])
            path = path_of(prefix)
            if path is None:
                if k == len(parts) and not any(under(name, p) for p in PACKAGE_DIRS.values()):
                    others.add(name)
                continue
            if prefix not in ours:
                ours.add(prefix)
                todo.extend(imports_of(path))
    return ours, others


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_task_entry_points_do_not_reach_heavy_unused_libraries(module):
    ours, others = reachable(module)
    assert module in ours
    banned = HEAVY_UNUSED + (("torch",) if module in NO_TORCH else ())
    bad = sorted(m for m in others if any(under(m, b) for b in banned))
    assert not bad, f"{module} reaches {bad}"


@pytest.mark.parametrize("module", ENTRY_MODULES)
def test_what_they_import_at_run_time_pulls_in_none_either(module):
    ours, _ = reachable(module)
    code = (f"import sys, json, importlib\nfor m in {sorted(ours)!r}:\n    importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    full = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True, cwd=ROOT).stdout))
    loaded = {k.split(".")[0] for k in full}
    assert not {k for k in full if any(under(k, b) for b in HEAVY_SUBPACKAGES)}, f"{module} loads scipy's heavy parts"
    banned = HEAVY_UNUSED + (("torch",) if module in NO_TORCH else ())
    assert not loaded & set(banned), f"importing what {module} imports loads {sorted(loaded & set(banned))}"
    if module == "fedchem.algo.functions.train":
        assert "torch" in loaded  # the check is not vacuous: it does follow the function-level imports
