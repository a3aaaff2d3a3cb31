"""`fedchem train-local` on Tox21 before and after issue 17, in the same run: end to end, inside one process, one step.

Run:  .venv/bin/python bench/train_speed.py                 (every case; 20 epochs; several minutes when loaded)
      .venv/bin/python bench/train_speed.py --quick         (5 epochs)
      .venv/bin/python bench/train_speed.py --case step     (one case: e2e | inprocess | step)

Setting (issue 17): Tox21 prepared by the project's pipeline (bench/public_prepared.py: 32,768-bit folded ECFP4),
1000 hidden, dropout 0.2, binarize, batch 121, 20 epochs, validation every epoch (patience 0: all 20 run).
"today's path" is `fedchem.algo.reference.todays_path()`: the code before issue 17 (whole-array row-sparse Adam,
sparse-product input gradient, one scipy fancy index per batch, scikit-learn's full metrics at every validation,
deepcopy of the best epoch, dropout drawn in the step, torch on every core), swapped in within the same code base.

Cases:
  e2e        the real command in fresh processes, alternately: today's path on every core (what `train-local` did),
             today's path on 1 thread, the new path (the default now: 1 torch thread, the row-sparse step's chunks
             split over 2 Python threads), and the new path with glibc's default allocator thresholds
             (`training.keep_freed_memory` made a no-op: that setting's same-run baseline). Wall time from the
             parent, including interpreter start and imports. The ratio is today's / new.
  inprocess  `train_local()` in this process, today's path (1 thread) then the new one (default): wall, the share of the
             per-epoch validation, training compounds/s.
  step       one full training step on real Tox21 batches of 121 (input layer, ReLU, dropout, 12-task head, masked
             BCE, backward, optimiser step), median over steps: SparseChem's COO torch.mm + dense Adam (the
             baseline), today's step, the new step, and the new step ordering each batch's non-zeros by feature
             with torch's sort instead of the compiled counting sort (that change's same-run baseline).
The machine's load average is printed: other jobs distort every absolute figure, not the same-run ratios.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

CASES = ["e2e", "inprocess", "step"]
HIDDEN, DROPOUT, BATCH = 1000, 0.2, 121
TODAY_WRAPPER = """import sys
from fedchem.algo import reference
from fedchem.orchestrator.cli.main import main
with reference.todays_path():
    sys.exit(main(sys.argv[1:]))
"""

DEFAULT_ALLOCATOR_WRAPPER = """import sys
from fedchem.algo import training
from fedchem.orchestrator.cli.main import entry
training.keep_freed_memory = lambda: False  # glibc's own thresholds: the new path without its allocator setting
sys.argv[0] = "fedchem"
entry()
"""


def load() -> str:
    return f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"


def cli_args(prepared: Path, out: Path, epochs: int) -> list[str]:
    return ["train-local", str(prepared), "--out", str(out), "--overwrite", "--hidden", str(HIDDEN),
            "--dropout", str(DROPOUT), "--batch-size", str(BATCH), "--epochs", str(epochs), "--patience", "0",
            "--input-transform", "binarize", "-q"]


def case_e2e(prepared: Path, epochs: int, repeat: int, every_core: bool = True) -> None:
    exe = Path(sys.executable)
    fedchem = exe.with_name("fedchem")
    print(f"\n== end to end: `fedchem train-local` on Tox21, {epochs} epochs, fresh processes ({load()})", flush=True)
    runs = {"today, every core": ([str(exe), "-c", TODAY_WRAPPER], str(os.cpu_count())),
            "today, 1 thread": ([str(exe), "-c", TODAY_WRAPPER], "1"),
            "new (default)": ([str(fedchem)], None),
            "new, glibc defaults": ([str(exe), "-c", DEFAULT_ALLOCATOR_WRAPPER], None)}
    if not every_core:
        del runs["today, every core"]
    times: dict[str, list[float]] = {k: [] for k in runs}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeat):
            for name, (cmd, threads) in runs.items():
                env = dict(os.environ)
                env.pop("FEDCHEM_THREADS", None)
                if threads:
                    env["FEDCHEM_THREADS"] = threads  # today's use_all_cores read it too
                t = time.perf_counter()
                subprocess.run(cmd + cli_args(prepared, Path(tmp) / "out", epochs), env=env, check=True,
                               stdout=subprocess.DEVNULL)
                times[name].append(time.perf_counter() - t)
                print(f"  {name:<20} {times[name][-1]:7.1f} s wall   ({load()})", flush=True)
    new = min(times["new (default)"])
    for name in runs:
        best = min(times[name])
        print(f"  best of {repeat}: {name:<20} {best:7.1f} s   today/new = {best / new:.2f}x   "
              f"(mean {sum(times[name]) / len(times[name]):.1f} s)", flush=True)


def case_inprocess(prepared: Path, epochs: int, repeat: int) -> None:
    import torch

    from fedchem.algo import reference, train_local as TL
    from fedchem.algo.config import ModelConfig, TrainingConfig
    from fedchem.opener.dataset import load_prepared

    ds = load_prepared(prepared, verify=False)
    mcfg = ModelConfig(hidden_sizes=(HIDDEN,), dropout=DROPOUT, input_transform="binarize")
    tcfg = TrainingConfig(batch_size=BATCH, epochs=epochs, early_stopping_patience=0)
    n_train = TL.split_folds(ds, tcfg).train.size
    print(f"\n== in one process: train_local() on Tox21 ({n_train:,} training compounds), {epochs} epochs "
          f"({load()})", flush=True)
    walls: dict[str, list[float]] = {"today": [], "new": []}
    for r in range(repeat):
        for name in ("today", "new"):
            ctx = reference.todays_path(threads=1) if name == "today" else contextlib.nullcontext()
            with ctx, tempfile.TemporaryDirectory() as tmp:
                if name == "new":
                    torch.set_num_threads(1)
                spent = {"validation": 0.0}
                validate = TL._validate

                def timed(*a, _v=validate):
                    t0 = time.perf_counter()
                    try:
                        return _v(*a)
                    finally:
                        spent["validation"] += time.perf_counter() - t0
                TL._validate = timed
                try:
                    t = time.perf_counter()
                    run = TL.train_local(ds, Path(tmp) / "out", mcfg, tcfg)
                    wall = time.perf_counter() - t
                finally:
                    TL._validate = validate
            train_s = sum(h["train_seconds"] for h in run.history)
            walls[name].append(wall)
            print(f"  {name:<6} {wall:7.1f} s: training {train_s:6.1f} s ({n_train * epochs / train_s:6,.0f} "
                  f"compounds/s), per-epoch validation {spent['validation']:5.2f} s "
                  f"({spent['validation'] / wall:5.1%} of the run), the rest (set-up, final evaluation, writing) "
                  f"{wall - train_s - spent['validation']:5.2f} s; "
                  f"{n_train * epochs / wall:,.0f} compounds/s end to end; test AUC-ROC "
                  f"{run.test.aggregate['classification']['auc_roc']:.4f}   ({load()})", flush=True)
    print(f"  best of {repeat}: today {min(walls['today']):.1f} s, new {min(walls['new']):.1f} s, "
          f"today/new = {min(walls['today']) / min(walls['new']):.2f}x", flush=True)


def case_step(prepared: Path, quick: bool) -> None:
    import torch
    import torch.nn.functional as F

    from fedchem.algo import adam, batches, reference
    from fedchem.algo.batches import BatchSource
    from fedchem.algo.config import ModelConfig, TrainingConfig
    from fedchem.algo.losses import batch_loss
    from fedchem.algo import model as M, training
    from fedchem.opener.dataset import load_prepared

    torch.set_num_threads(1)
    ds = load_prepared(prepared, verify=False)
    train = np.flatnonzero(~np.isin(np.asarray(ds.folds), [0, 1]))
    src = BatchSource(ds, train)
    order = training.epoch_order(len(src), 1.0, seed=0)
    n_steps = 12 if quick else 36
    steps = list(src.batches(order, BATCH))[:n_steps]
    mcfg = ModelConfig(hidden_sizes=(HIDDEN,), dropout=DROPOUT, input_transform="binarize")
    wc = torch.ones(ds.Y_class.shape[1])
    wr = torch.ones(0)
    print(f"\n== one training step, Tox21 batches of {BATCH}, {ds.n_features:,} -> {HIDDEN}, 1 torch thread (the new "
          f"row-sparse step splits its chunks over {training.step_threads()} Python threads), median of "
          f"{n_steps - 3} ({load()})", flush=True)

    def timed(step_fn) -> float:
        times = []
        for i, b in enumerate(steps):
            t = time.perf_counter()
            step_fn(b)
            if i >= 3:
                times.append(time.perf_counter() - t)
        return float(np.median(times))

    def ours(ctx):
        with ctx:
            trunk = M.init_trunk(ds.n_features, mcfg, 0)
            head = M.init_head(mcfg, ds.Y_class.shape[1], 0, 1)
            # train-local's 20 epochs of 32 steps: the compiled input-layer step (algo.row_kernels)
            opt = training.Optimizer(trunk, head, TrainingConfig(batch_size=BATCH), expected_steps=640)

            def step(b):
                opt.zero_grad()
                logits, regr = head(trunk(b.x))
                loss, _, _ = batch_loss(logits, regr, b.y_class, b.y_regr, wc, wr, b.n_rows)
                loss.backward()
                opt.step()
            with opt.fused_into(trunk):  # as train_epochs does (today's backward ignores it)
                return timed(step)

    def sparsechem():
        W = torch.nn.Parameter(M.init_trunk(ds.n_features, mcfg, 0).input.weight.detach().clone())
        bias = torch.nn.Parameter(torch.full((HIDDEN,), 0.1))
        head = torch.nn.Linear(HIDDEN, ds.Y_class.shape[1])
        opt = torch.optim.Adam([W, bias, *head.parameters()], lr=1e-3)

        def step(b):
            opt.zero_grad()
            n, nf = b.n_rows, ds.n_features
            rows = torch.repeat_interleave(torch.arange(n), torch.diff(b.x.offsets, append=torch.tensor(
                [b.x.indices.numel()])))
            x = torch.sparse_coo_tensor(torch.stack([rows, b.x.indices]), torch.ones(b.x.indices.numel()), (n, nf))
            h = F.dropout(torch.relu(torch.mm(x, W) + bias), DROPOUT, training=True)
            z = head(h)[b.y_class.rows, b.y_class.cols]
            (F.softplus(-b.y_class.values * z).sum() / n).backward()
            opt.step()
        return timed(step)

    import warnings
    warnings.filterwarnings("ignore", category=UserWarning)
    base = sparsechem()
    today = ours(reference.todays_path(threads=1))
    new = ours(contextlib.nullcontext())
    torch_order = ours(mock.patch.object(adam.RowSparseAdam, "feature_order",  # the same arrays, by torch's sort
                                         lambda self, idx, offsets, n: batches.feature_order(idx, offsets, n)))
    for name, t in (("SparseChem: COO torch.mm + dense Adam", base), ("today's step", today), ("new step", new),
                    ("new step, torch's feature order", torch_order)):
        print(f"  {name:<40} {t * 1e3:7.1f} ms/step  {BATCH / t:8,.0f} compounds/s   {base / t:6.1f}x the "
              f"SparseChem step", flush=True)
    print(f"  new step / today's step: {today / new:.2f}x faster", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="5 epochs instead of 20, fewer steps")
    ap.add_argument("--case", choices=CASES, help="run one case only")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each variant (the best is compared)")
    ap.add_argument("--no-every-core", action="store_true",
                    help="e2e: skip today's path on every core (minutes on a loaded machine)")
    args = ap.parse_args()
    from public_prepared import prepared
    path = prepared("tox21")
    epochs = 5 if args.quick else 20
    for case in [args.case] if args.case else CASES:
        if case == "e2e":
            case_e2e(path, epochs, args.repeat, every_core=not args.no_every_core)
        elif case == "inprocess":
            case_inprocess(path, epochs, args.repeat)
        else:
            case_step(path, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
