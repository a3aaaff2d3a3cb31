"""Training speed and memory of the SparseChem-class model on 2 CPU cores, and the sparse input paths side by side.

Run:  .venv/bin/python bench/train_throughput.py            (paths, Tox21, MUV, 1,000,000 synthetic compounds)
      .venv/bin/python bench/train_throughput.py --quick    (fewer steps; 100,000 synthetic compounds)
      .venv/bin/python bench/train_throughput.py --case paths   (one case only: paths | tox21 | muv | synthetic)

Cases (each in its own process, so "peak RSS" is that case's own high-water mark):
  paths      one training step (input layer, ReLU, dropout 0.2, 12-task head, masked BCE, optimiser step) on real
             Tox21 batches, 32,768 folded ECFP4 -> 1000 hidden, for each candidate input path:
               COO torch.mm + dense Adam       (SparseChem's way: the baseline of the ratios)
               CSR torch.sparse.mm + dense Adam
               EmbeddingBag(sum, per_sample_weights, sparse grad) + torch.optim.SparseAdam
               EmbeddingBag(sparse grad) + our row-sparse Adam (fedchem.algo.adam)
               fedchem.algo.model.SparseInput (embedding_bag forward, gradient built on the distinct rows used,
                 already coalesced) + row-sparse Adam   <- what the model uses
  tox21      fedchem.algo.training.train_epochs on Tox21's training folds, 32k -> 1000 hidden, batch 128 and 256
  muv        the same on MUV (93k compounds), batch 256
  synthetic  1,000,000 compounds x 2^20 unfolded columns, ~50 non-zeros a row: SYNTHETIC fingerprints (column ids
             drawn log-uniformly over the ranks of a fixed random permutation of the 2^20 columns, so that a few
             columns are frequent and most are rare, as in real ECFP) and SYNTHETIC labels (12 random +1/-1 tasks, 30%
             labelled): a speed and memory figure only. Hidden 256 (the 2^20 x hidden input layer and its two Adam
             moments are 3 x 1 GiB at 256; at 1000 they would be 12 GiB).
Tox21 and MUV are prepared with the project's pipeline (bench/public_prepared.py, cached in /tmp).
SparseChem itself measured ~475 compounds/s on Tox21 32k -> 1000 on 2 unloaded cores (DESIGN.md section 4); the
"paths" ratios compare its input path and dense Adam with ours in the same process, the fair comparison on a
machine shared with other jobs (whose load distorts every absolute figure: the load average is printed).
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

CASES = ["paths", "tox21", "muv", "synthetic"]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def header(name: str) -> None:
    import torch
    print(f"\n== {name}  (torch {torch.__version__}, {torch.get_num_threads()} threads, load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs)", flush=True)


# ------------------------------------------------------------------------------------------------ input paths

def case_paths(quick: bool) -> None:
    import torch
    import torch.nn.functional as F

    from fedchem.algo.adam import DenseAdamW, RowSparseAdam
    from fedchem.algo.batches import rows_from_csr
    from fedchem.algo.model import SparseInput
    from fedchem.opener.dataset import load_prepared
    from public_prepared import prepared

    header("candidate sparse input paths: one full training step, Tox21 32,768 -> 1000, 12 tasks")
    ds = load_prepared(prepared("tox21"), verify=False)
    X = ds.X.copy()
    X.data[:] = 1.0  # binarize, as the model's default transform
    Y = ds.Y_class
    nf, H, T = X.shape[1], 1000, Y.shape[1]
    rng = np.random.default_rng(0)
    n_steps, warm = (6, 2) if quick else (20, 3)

    def run(name: str, B: int, make) -> float:
        forward, opt_step = make()
        torch.manual_seed(0)
        head = torch.nn.Linear(H, T)
        head_opt = DenseAdamW(list(head.parameters()), lr=1e-3)
        batches = [rng.choice(X.shape[0], B, replace=False) for _ in range(n_steps + warm)]
        touched, times, cpus = [], [], []
        for i, rows in enumerate(batches):
            t0, cpu0 = time.perf_counter(), time.process_time()
            xb = X[rows]
            yb = Y[rows].tocoo()
            keep = yb.data != 0
            r = torch.from_numpy(yb.row[keep].astype(np.int64))
            c = torch.from_numpy(yb.col[keep].astype(np.int64))
            v = torch.from_numpy(yb.data[keep].astype(np.float32))
            h = F.dropout(torch.relu(forward(xb)), 0.2, training=True)
            logits = head(h)[r, c]
            loss = F.softplus(-v * logits).sum() / B
            loss.backward()
            touched.append(opt_step())
            head_opt.step()
            head_opt.zero_grad()
            times.append(time.perf_counter() - t0)
            cpus.append(time.process_time() - cpu0)
        dt = float(np.median(times[warm:]))  # the median step: robust to other jobs' bursts on a shared machine
        cpu = float(np.median(cpus[warm:]))
        rows_info = f"{np.mean(touched[warm:]):>8,.0f}" if touched[-1] is not None else f"{nf:>8,}"
        print(f"  {name:<46} B={B:<4} {dt * 1e3:7.1f} ms/step (median) {B / dt:8,.0f} compounds/s "
              f"({B / cpu:,.0f} per CPU-second)  rows updated/step {rows_info}", flush=True)
        return B / dt

    def dense(kind: str):
        def make():
            W = torch.nn.Parameter(torch.empty(nf, H).uniform_(-0.02, 0.02))
            b = torch.nn.Parameter(torch.full((H,), 0.1))
            opt = torch.optim.Adam([W, b], lr=1e-3)

            def forward(xb):
                if kind == "csr":
                    t = torch.sparse_csr_tensor(torch.from_numpy(xb.indptr.astype(np.int64)),
                                                torch.from_numpy(xb.indices.astype(np.int64)),
                                                torch.from_numpy(xb.data), size=xb.shape)
                    return torch.sparse.mm(t, W) + b
                c = xb.tocoo()
                t = torch.sparse_coo_tensor(torch.from_numpy(np.vstack([c.row, c.col]).astype(np.int64)),
                                            torch.from_numpy(c.data), size=xb.shape)
                return torch.mm(t, W) + b

            def step():
                opt.step()
                opt.zero_grad()
                return None
            return forward, step
        return make

    def embag(optimiser: str, layer: str = "torch"):
        def make():
            inp = SparseInput(nf, H, "none")
            with torch.no_grad():
                inp.weight.uniform_(-0.02, 0.02)
                inp.bias.fill_(0.1)
            W, b = inp.weight, inp.bias
            bias_opt = DenseAdamW([b], lr=1e-3)
            if optimiser == "sparseadam":
                opt = torch.optim.SparseAdam([W], lr=1e-3)
            else:
                opt = RowSparseAdam(W, lr=1e-3)

            def forward(xb):
                s = rows_from_csr(xb)
                if layer == "fedchem":
                    return inp(s)
                return F.embedding_bag(s.indices, W, s.offsets, mode="sum", per_sample_weights=s.values,
                                       sparse=True) + b

            def step():
                n = int(W.grad.coalesce().indices().shape[1])
                opt.step()
                opt.zero_grad()
                bias_opt.step()
                bias_opt.zero_grad()
                return n
            return forward, step
        return make

    with torch.sparse.check_sparse_tensor_invariants(False):
        import warnings
        warnings.filterwarnings("ignore", category=UserWarning)
        for B in (128, 256):
            base = run("COO torch.mm + dense Adam (SparseChem)", B, dense("coo"))
            csr = run("CSR torch.sparse.mm + dense Adam", B, dense("csr"))
            sa = run("EmbeddingBag(sparse) + torch.optim.SparseAdam", B, embag("sparseadam"))
            eb = run("EmbeddingBag(sparse) + row-sparse Adam", B, embag("ours"))
            ours = run("fedchem SparseInput + row-sparse Adam (model)", B, embag("ours", "fedchem"))
            print(f"  ratios at B={B} (compounds/s over the COO baseline): CSR {csr / base:.2f}x, "
                  f"EmbeddingBag+SparseAdam {sa / base:.2f}x, EmbeddingBag+row-sparse Adam {eb / base:.2f}x, "
                  f"fedchem model path {ours / base:.2f}x", flush=True)
    print(f"  peak RSS {peak_rss_mb():,.0f} MB")


# ------------------------------------------------------------------------------------------- train_epochs cases

def _train(ds, label: str, hidden: int, batch: int, epochs: float, n_epochs_timed: int = 1) -> None:
    from fedchem.algo import model as M, training
    from fedchem.algo.batches import BatchSource
    from fedchem.algo.config import ModelConfig, TrainingConfig

    folds = np.asarray(ds.folds)
    train = np.flatnonzero(~np.isin(folds, [0, 1]))
    mcfg = ModelConfig(hidden_sizes=(hidden,), dropout=0.2)
    tcfg = TrainingConfig(batch_size=batch)
    rss0 = rss_mb()
    t = time.perf_counter()
    trunk = M.init_trunk(ds.n_features, mcfg, 0)
    head = M.init_head(mcfg, ds.Y_class.shape[1], ds.Y_regr.shape[1], 1)
    opt = training.Optimizer(trunk, head, tcfg)
    source = BatchSource(ds, train)
    setup = time.perf_counter() - t
    stats = None
    for e in range(n_epochs_timed):
        cpu0 = time.process_time()
        stats = training.train_epochs(trunk, head, ds, train, tcfg, epochs=epochs, seed=e, optimizer=opt,
                                      source=source)
    cpu = time.process_time() - cpu0
    sec_epoch = stats.seconds / epochs
    print(f"  {label:<34} hidden {hidden:<5} B={batch:<4} {stats.compounds:>9,} compounds in {stats.seconds:7.1f} s "
          f"= {stats.compounds_per_second:8,.0f} compounds/s ({stats.compounds / cpu:,.0f} per CPU-second); "
          f"epoch of {train.size:,} = {sec_epoch:6.1f} s; "
          f"rows updated/step {stats.mean_rows_touched:,.0f}; setup {setup:.1f} s; "
          f"RSS +{rss_mb() - rss0:,.0f} MB over data", flush=True)


def case_real(name: str, quick: bool) -> None:
    from fedchem.opener.dataset import load_prepared
    from public_prepared import prepared

    path = prepared(name)
    header(f"train_epochs on {name} (prepared with the project's pipeline)")
    rss0 = rss_mb()
    ds = load_prepared(path, verify=False)
    print(f"  {ds.n_compounds:,} compounds x {ds.n_features:,} features, {ds.X.nnz / ds.n_compounds:.1f} "
          f"non-zeros a row, {ds.Y_class.shape[1]} classification tasks; data RSS {rss_mb() - rss0:,.0f} MB",
          flush=True)
    if name == "tox21":
        for batch in (128, 256):
            _train(ds, "tox21, 2nd epoch timed", 1000, batch, 1.0 if not quick else 0.5, n_epochs_timed=2)
    else:
        _train(ds, f"{name}, 1 epoch" if not quick else f"{name}, 0.2 epoch", 1000, 256, 0.2 if quick else 1.0)
    print(f"  peak RSS {peak_rss_mb():,.0f} MB")


def synthetic_dataset(n: int, n_features: int = 1 << 20, nnz: int = 50, n_tasks: int = 12, seed: int = 0):
    """Column ids log-uniform over the ranks of a fixed random permutation of the columns (a few frequent
    columns, a long tail of rare ones); random labels (speed only)."""
    import scipy.sparse as sp

    from fedchem.opener.dataset import PreparedDataset

    rng = np.random.default_rng(seed)
    perm = rng.permutation(n_features).astype(np.int32)
    draws = nnz + 8  # a few repeats of the frequent columns are dropped: ~nnz distinct a row remain
    ranks = np.exp(rng.random(n * draws) * np.log(n_features)).astype(np.int64) - 1  # log-uniform over ranks
    cols = perm[np.minimum(ranks, n_features - 1)].reshape(n, draws)
    cols.sort(axis=1)
    dup = np.zeros_like(cols, dtype=bool)
    dup[:, 1:] = cols[:, 1:] == cols[:, :-1]
    keep = ~dup
    counts = keep.sum(1)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    X = sp.csr_matrix((np.ones(int(indptr[-1]), np.float32), cols[keep], indptr), shape=(n, n_features))
    del cols, dup, keep
    lab = rng.random((n, n_tasks)) < 0.3
    r, c = np.nonzero(lab)
    Yc = sp.csr_matrix((rng.choice(np.float32([-1, 1]), size=r.size), (r, c)), shape=(n, n_tasks))
    empty = sp.csr_matrix((n, 0), dtype=np.float32)
    tasks = [{"task": f"t{j}", "kind": "classification", "column": str(j), "weight": "1", "auxiliary": "false"}
             for j in range(n_tasks)]
    return PreparedDataset(X=X, Y_class=Yc, Y_regr=empty, Y_censor=empty.copy(),
                           folds=rng.integers(0, 5, size=n), tasks=tasks, compound_ids=[])


def case_synthetic(quick: bool) -> None:
    n = 100_000 if quick else 1_000_000
    header(f"train_epochs on {n:,} SYNTHETIC compounds x 2^20 columns (synthetic values: a speed figure only)")
    rss0 = rss_mb()
    t = time.perf_counter()
    ds = synthetic_dataset(n)
    X = ds.X
    x_mb = (X.data.nbytes + X.indices.nbytes + X.indptr.nbytes) / 2**20
    print(f"  generated in {time.perf_counter() - t:.1f} s: {X.nnz / n:.1f} non-zeros a row ({X.nnz:,} in all), "
          f"X in memory {x_mb:,.0f} MB ({x_mb * 2**20 / X.nnz:.1f} bytes a non-zero); data RSS "
          f"{rss_mb() - rss0:,.0f} MB", flush=True)
    hidden = 256
    print(f"  input layer {X.shape[1]:,} x {hidden} = {X.shape[1] * hidden * 4 / 2**30:.2f} GiB, x3 with Adam's "
          f"two moments (fixed by n_features x hidden, not by the data)", flush=True)
    _train(ds, f"synthetic {n:,}, 1 epoch", hidden, 256, 1.0)
    print(f"  peak RSS {peak_rss_mb():,.0f} MB")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="fewer steps, 100,000 synthetic compounds")
    ap.add_argument("--case", choices=CASES, help="run one case in this process")
    ap.add_argument("--threads", type=int, help="torch threads (default: 1, or $FEDCHEM_THREADS)")
    args = ap.parse_args()
    if args.case is None:
        for case in CASES:
            cmd = [sys.executable, __file__, "--case", case] + (["--quick"] if args.quick else [])
            cmd += ["--threads", str(args.threads)] if args.threads else []
            rc = subprocess.call(cmd)
            if rc:
                print(f"case {case} failed with exit code {rc}", file=sys.stderr)
                return rc
        return 0
    import torch

    from fedchem.algo.training import set_threads
    set_threads()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.case == "paths":
        case_paths(args.quick)
    elif args.case == "synthetic":
        case_synthetic(args.quick)
    else:
        case_real(args.case, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
