"""The Substra task scripts: light tasks stay light, and every script the orchestrator registers is runnable."""

from __future__ import annotations

import subprocess
import sys

from fedchem.algo.functions.specs import FUNCTIONS
from fedchem.orchestrator.run.archive import task_script


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
        script = task_script(fdef.name, fdef.module, fdef.description)
        compile(script, f"{fdef.name}/function.py", "exec")


def test_the_train_task_subtracts_array_by_array_as_the_flattened_trunks_did():
    """The update goes into the masking buffer one array at a time: the same float64 words as subtracting the two
    flattened trunks (what the task did before), and a trunk of other arrays is refused, not misaligned."""
    import numpy as np
    import pytest

    from fedchem.algo.functions.train import _subtract_into
    from fedchem.algo.params import flatten
    from fedchem.opener.errors import ProtocolError

    rng = np.random.default_rng(0)
    shapes = {"input.weight": (7, 5), "input.bias": (5,), "layers.0.weight": (3, 5), "layers.0.bias": (3,)}
    before = {k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()}
    after = {k: (v + rng.standard_normal(v.shape).astype(np.float32) * 1e-3) for k, v in before.items()}
    expected = np.subtract(flatten(after)[0], flatten(before)[0], dtype=np.float64)
    out = np.full(expected.size + 1, np.nan)
    _subtract_into(out[:-1], after, before)
    assert out[:-1].tobytes() == expected.tobytes() and np.isnan(out[-1])  # the weight word is left alone
    with pytest.raises(ProtocolError):
        _subtract_into(out[:-1], after, dict(reversed(list(before.items()))))
    with pytest.raises(ProtocolError):
        _subtract_into(out[:-1], after, {**before, "input.bias": np.zeros(4, np.float32)})
