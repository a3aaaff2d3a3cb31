"""One epoch of 1,000,000 compounds x 2^20 unfolded features (~50 non-zeros a row): time and peak memory.

Run:  .venv/bin/python bench/scale.py                        (1,000,000 compounds, hidden 1000, rowwise Adam state)
      .venv/bin/python bench/scale.py --hidden 256             (256 hidden; --state full: Adam)
      .venv/bin/python bench/scale.py --n 100000 --quick     (a smaller set, to try settings)

SYNTHETIC data, a speed and memory figure only: fingerprint column ids drawn log-uniformly over the ranks of a fixed
random permutation of the 2^20 columns (a few frequent columns, a long tail of rare ones, as in unfolded ECFP),
values 1; 12 random +1/-1 classification tasks, 30 % of the cells labelled. Generated in blocks so that the
generator's scratch memory stays small beside the data.

Printed: seconds for the epoch (every compound once, `fedchem.algo.training.train_epochs`), compounds/s, and the
peak RSS of this process (getrusage's high-water mark) split into what it is made of: X's CSR arrays (bytes per
non-zero), the labels, the trunk's parameters (the 2^20 x hidden input layer dominates), the input layer's optimiser
state (`--state full`: Adam's two moments, 2x the layer; `rowwise`: one first moment per weight and one second
moment per row, 1x + 4 bytes a row), and the rest (interpreter, torch, one batch's transient tensors).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

import numpy as np
import scipy.sparse as sp


def rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def gib(b: float) -> str:
    return f"{b / 2**30:6.2f} GiB"


def synthetic(n: int, n_features: int, nnz: int, n_tasks: int = 12, seed: int = 0, block: int = 50_000):
    """A PreparedDataset of SYNTHETIC sparse fingerprints and labels (see the module docstring)."""
    from fedchem.opener.dataset import PreparedDataset

    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_features).astype(np.int32)
    draws = nnz + 8  # a few repeats of the frequent columns are dropped: ~nnz distinct a row remain
    indices, counts = [], []
    for lo in range(0, n, block):
        m = min(block, n - lo)
        ranks = np.exp(rng.random(m * draws) * np.log(n_features)).astype(np.int64) - 1
        cols = perm[np.minimum(ranks, n_features - 1)].reshape(m, draws)
        cols.sort(axis=1)
        keep = np.ones_like(cols, dtype=bool)
        keep[:, 1:] = cols[:, 1:] != cols[:, :-1]
        indices.append(cols[keep])
        counts.append(keep.sum(1))
    idx = np.concatenate(indices)
    del indices
    indptr = np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64)
    X = sp.csr_matrix((np.ones(idx.size, np.float32), idx, indptr), shape=(n, n_features))
    lab = rng.random((n, n_tasks)) < 0.3
    r, c = np.nonzero(lab)
    del lab
    Yc = sp.csr_matrix((rng.choice(np.float32([-1, 1]), size=r.size), (r, c)), shape=(n, n_tasks))
    empty = sp.csr_matrix((n, 0), dtype=np.float32)
    tasks = [{"task": f"t{j}", "kind": "classification", "column": str(j), "weight": "1", "auxiliary": "false"}
             for j in range(n_tasks)]
    return PreparedDataset(X=X, Y_class=Yc, Y_regr=empty, Y_censor=empty.copy(),
                           folds=rng.integers(0, 5, size=n), tasks=tasks, compound_ids=[])


def csr_bytes(M: sp.csr_matrix) -> int:
    return M.data.nbytes + M.indices.nbytes + M.indptr.nbytes


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="compounds (default 1,000,000)")
    ap.add_argument("--features", type=int, default=1 << 20, help="unfolded columns (default 2^20)")
    ap.add_argument("--nnz", type=int, default=50, help="non-zeros a row, about (default 50)")
    ap.add_argument("--hidden", type=int, default=1000, help="hidden units of the input layer (default 1000)")
    ap.add_argument("--state", choices=["full", "rowwise"], default="rowwise",
                    help="the input layer's optimiser state (training.input_optimizer_state; default rowwise)")
    ap.add_argument("--batch", type=int, default=4096,
                    help="compounds a batch (default 4096: frequent columns shared by more compounds a step)")
    ap.add_argument("--quick", action="store_true", help="a tenth of an epoch")
    args = ap.parse_args()

    import torch

    from fedchem.algo import model as M, training
    from fedchem.algo.batches import BatchSource
    from fedchem.algo.config import ModelConfig, TrainingConfig

    n_threads = training.set_threads()
    print(f"== one epoch, {args.n:,} SYNTHETIC compounds x {args.features:,} columns, hidden {args.hidden}, "
          f"optimiser state {args.state}, batch {args.batch}, {n_threads} thread(s), torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    base = rss()
    t = time.perf_counter()
    ds = synthetic(args.n, args.features, args.nnz)
    x_bytes, y_bytes = csr_bytes(ds.X), csr_bytes(ds.Y_class) + ds.folds.nbytes
    print(f"  data generated in {time.perf_counter() - t:.1f} s: {ds.X.nnz:,} non-zeros "
          f"({ds.X.nnz / args.n:.1f} a row); X {gib(x_bytes)} = {x_bytes / ds.X.nnz:.2f} bytes a non-zero; labels "
          f"{gib(y_bytes)}; RSS +{gib(rss() - base)}", flush=True)
    mcfg = ModelConfig(hidden_sizes=(args.hidden,), dropout=0.2, input_transform="binarize")
    tcfg = TrainingConfig(batch_size=args.batch, input_optimizer_state=args.state)
    rows = np.arange(args.n)
    source = BatchSource(ds, rows)
    shared = np.shares_memory(source.X.indices, ds.X.indices)
    trunk = M.init_trunk(args.features, mcfg, 0)
    head = M.init_head(mcfg, ds.Y_class.shape[1], 0, 1)
    epochs = 0.1 if args.quick else 1.0
    opt = training.Optimizer(trunk, head, tcfg, expected_steps=training.steps_for(args.n, tcfg, epochs))
    param_bytes = sum(p.numel() * p.element_size() for p in (*trunk.parameters(), *head.parameters()))
    state_bytes = opt.sparse.state_bytes() + sum(m.numel() * m.element_size() * 2 for m in opt.dense.exp_avg)
    layer = args.features * args.hidden * 4
    print(f"  parameters {gib(param_bytes)} (input layer {gib(layer)}); optimiser state {gib(state_bytes)} "
          f"= {state_bytes / layer:.2f}x the input layer (full Adam: 2.00x); the training rows "
          f"{'share X (all rows, in order: no copy)' if shared else 'are a copy of X'}", flush=True)
    t = time.perf_counter()
    stats = training.train_epochs(trunk, head, ds, rows, tcfg, epochs=epochs, seed=0, optimizer=opt, source=source)
    seconds = time.perf_counter() - t
    peak = peak_rss()
    extra = 0 if shared else x_bytes
    known = x_bytes + y_bytes + extra + param_bytes + state_bytes
    print(f"  {stats.compounds:,} compounds in {seconds:.1f} s = {stats.compounds / seconds:,.0f} compounds/s"
          f"{' (a tenth of an epoch: an epoch ~' + format(seconds * 10, '.0f') + ' s)' if args.quick else ''}; "
          f"{stats.steps:,} steps, {stats.mean_rows_touched:,.0f} input rows updated a step; loss "
          f"{stats.mean_loss:.3f}", flush=True)
    print(f"  peak RSS {gib(peak)} = X {gib(x_bytes)} + labels {gib(y_bytes)}"
          f"{' + the training rows copy ' + gib(extra) if extra else ''} + parameters {gib(param_bytes)} + "
          f"optimiser state {gib(state_bytes)} + the rest {gib(peak - known)} (interpreter, torch, one batch's "
          f"tensors; {(peak - known) / ds.X.nnz:.1f} bytes a non-zero if all of it were charged to the data)",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
