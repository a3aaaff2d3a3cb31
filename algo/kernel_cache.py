"""Compile (or load) every numba kernel a train task can run, once, so that its first real call only loads them.

A function image runs this while it is built (`python -m fedchem.algo.kernel_cache`, the archive's Dockerfile),
with NUMBA_CACHE_DIR set to a folder of the image. numba then finds the machine code there in every task instead of
compiling it in each task process (about 1 s: `cache=True` alone does not help when site-packages is read-only,
since numba only uses a cache folder it can write to). The kernels are reached through the code that calls them in
training and masking, on tiny inputs, so the cached signatures are exactly the ones a task asks for.

numba keys its cache by the CPU as well: on a node whose CPU differs from the build machine's, a task compiles once
and, the folder being writable, stores its own copy there.
"""

from __future__ import annotations

import sys
import time

import numpy as np


def warm() -> dict[str, tuple[int, int]]:
    """Run each compiled kernel once on tiny inputs: {kernel: (signatures loaded from the cache, compiled now)}."""
    import scipy.sparse as sp

    from fedchem.algo import model as M, row_kernels, training
    from fedchem.algo.adam import COMPILE_MIN_STEPS
    from fedchem.algo.batches import rows_from_csr
    from fedchem.algo.config import ModelConfig, TrainingConfig
    from fedchem.algo.secagg import encoding, ring_kernels

    x = rows_from_csr(sp.csr_matrix(np.array([[1.0, 0.0, 2.0, 0.0], [0.0, 3.0, 1.0, 0.0]], dtype=np.float32)))
    for transform in ("binarize", "log1p"):  # "all ones" and real values reach the kernels as different arrays
        for state in ("full", "rowwise"):
            trunk = M.init_trunk(4, ModelConfig(hidden_sizes=(8,), input_transform=transform), seed=0)
            head = M.init_head(ModelConfig(hidden_sizes=(8,)), 1, 0, seed=0)
            opt = training.Optimizer(trunk, head, TrainingConfig(input_optimizer_state=state),
                                     expected_steps=COMPILE_MIN_STEPS)
            with opt.fused_into(trunk):
                opt.zero_grad()
                logits, _ = head(trunk(x))
                logits.sum().backward()
                opt.step()
    for ring_bits in (32, 64):  # the signed views mask_update hands the kernels; float64 (a task's delta) and float32
        word = np.zeros(2, encoding.signed_dtype(ring_bits)).view(encoding.ring_dtype(ring_bits))
        for dtype in (np.float64, np.float32):
            encoding.encode_add_chunk(np.zeros(2, dtype), 1.0, 1.0, word, np.empty(2), np.empty_like(word),
                                      ring_kernels)
    buffer = np.zeros(2)  # masking in place: a float64 delta overwritten by its 64-bit words
    encoding.encode_add_chunk(buffer, 1.0, 1.0, buffer.view(np.uint64), np.empty(2), np.empty(2, np.uint64),
                              ring_kernels, base=np.zeros(2, np.uint64))
    kernels = {"row_kernels.adam_rows": row_kernels.adam_rows,
               "row_kernels.rowwise_adam_rows": row_kernels.rowwise_adam_rows,
               "row_kernels.feature_order": row_kernels.feature_order,
               "secagg.ring_kernels.add_encoded": ring_kernels.add_encoded,
               "secagg.ring_kernels.encode_over": ring_kernels.encode_over}
    return {name: (sum(k.stats.cache_hits.values()), sum(k.stats.cache_misses.values()))
            for name, k in kernels.items()}


def main() -> int:
    t0 = time.perf_counter()
    counts = warm()
    for name, (hits, misses) in counts.items():
        print(f"{name}: {hits} signature(s) loaded from the cache, {misses} compiled")
    print(f"numba kernels ready in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
