"""`python -m fedchem.algo.kernel_cache` (run by the train function's image build) leaves in NUMBA_CACHE_DIR every
kernel signature a train task asks for: a later process that trains with the compiled step and masks its update
in place with the compiled encoding loads them all and compiles none (numba's own cache counters, real numba)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

HELPERS = Path(__file__).resolve().parents[1] / "helpers"

TASK_LIKE = """
import json
import numpy as np
from algo_synthetic import synthetic_dataset
import fedchem.algo.secagg as sa
from fedchem.algo import row_kernels, training
from fedchem.algo import model as M
from fedchem.algo.adam import COMPILE_MIN_STEPS
from fedchem.algo.config import ModelConfig, SecAggConfig, TrainingConfig
from fedchem.algo.secagg import ring_kernels

ds = synthetic_dataset(n=200, n_features=256, n_class=2, n_regr=1)
rows = np.arange(150)
for transform in ("binarize", "log1p"):
    for state in ("full", "rowwise"):
        mcfg = ModelConfig(hidden_sizes=(16,), input_transform=transform)
        tcfg = TrainingConfig(batch_size=50, input_optimizer_state=state)
        trunk = M.init_trunk(ds.n_features, mcfg, 1)
        head = M.init_head(mcfg, 2, 1, 1)
        opt = training.Optimizer(trunk, head, tcfg, expected_steps=COMPILE_MIN_STEPS)
        training.train_epochs(trunk, head, ds, rows, tcfg, epochs=1.0, seed=3, optimizer=opt)
ids = ["OrgA", "OrgB"]
keys = {p: sa.keygen("plan", p, [0]) for p in ids}
public = {p: k[0] for p, k in keys.items()}
for ring_bits in (32, 64):
    buffer = sa.in_place_buffer(1000)
    buffer[:-1] = 0.01
    out = buffer.view(np.uint64) if ring_bits == 64 else None
    sa.mask_update("plan", 0, "OrgA", ids, keys["OrgA"][1], public, buffer[:-1], 1.0,
                   SecAggConfig(ring_bits=ring_bits), out=out)
    sa.mask_update("plan", 0, "OrgA", ids, keys["OrgA"][1], public, np.zeros(1000, np.float32), 1.0,
                   SecAggConfig(ring_bits=ring_bits))
print(json.dumps({name: [sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values())]
                  for name, k in (("adam_rows", row_kernels.adam_rows),
                                  ("rowwise_adam_rows", row_kernels.rowwise_adam_rows),
                                  ("feature_order", row_kernels.feature_order),
                                  ("add_encoded", ring_kernels.add_encoded),
                                  ("encode_over", ring_kernels.encode_over))}))
"""


def test_warmed_cache_serves_every_kernel_a_train_task_runs(tmp_path):
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba"), "PYTHONPATH": str(HELPERS)}
    warm = subprocess.run([sys.executable, "-m", "fedchem.algo.kernel_cache"], env=env, capture_output=True,
                          text=True, timeout=600)
    assert warm.returncode == 0, warm.stderr
    assert "compiled" in warm.stdout and any((tmp_path / "numba").rglob("*.nbi"))
    task = subprocess.run([sys.executable, "-c", TASK_LIKE], env=env, capture_output=True, text=True, timeout=600)
    assert task.returncode == 0, task.stderr
    counts = json.loads(task.stdout.strip().splitlines()[-1])
    assert all(hits > 0 for hits, _ in counts.values()), counts  # each kernel ran, loaded from the cache
    assert all(misses == 0 for _, misses in counts.values()), counts  # and nothing had to be compiled


def test_without_the_warm_step_the_same_task_compiles(tmp_path):
    """The control: an empty cache folder makes the same process compile (so the test above can fail)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "empty"), "PYTHONPATH": str(HELPERS)}
    task = subprocess.run([sys.executable, "-c", TASK_LIKE], env=env, capture_output=True, text=True, timeout=600)
    assert task.returncode == 0, task.stderr
    counts = json.loads(task.stdout.strip().splitlines()[-1])
    assert all(misses > 0 for _, misses in counts.values()), counts
