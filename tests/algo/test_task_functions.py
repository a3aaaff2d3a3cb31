"""The Substra task scripts: light tasks stay light, and every script the orchestrator registers is runnable."""

from __future__ import annotations

import subprocess
import sys

from fedchem.algo.functions.specs import FUNCTIONS
from fedchem.orchestrator.run.archive import SCRIPT


def test_aggregator_and_key_tasks_import_no_torch():
    code = ("import sys, fedchem.algo.functions.aggregate, fedchem.algo.functions.keys; "
            "heavy = [m for m in ('torch', 'sklearn', 'rdkit') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]", out


def test_every_function_is_registered_by_its_module():
    """Each task script imports one module, which must register the function under the name Substra calls."""
    import substratools as tools

    for fdef in FUNCTIONS.values():
        __import__(fdef.module)
        assert fdef.name in tools.register.get_registered_functions(), fdef.name
        script = SCRIPT.format(name=fdef.name, module=fdef.module, description=fdef.description)
        compile(script, f"{fdef.name}/function.py", "exec")
