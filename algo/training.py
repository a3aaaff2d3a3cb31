"""Local training of a trunk and a head on some rows of a prepared dataset: a plain library function.

Used by `fedchem train-local` (whole epochs with a schedule and early stopping) and by the federated train task
(a possibly fractional number of epochs per round). The input layer is updated by a row-sparse Adam (only the
fingerprint columns a batch uses), every other parameter by AdamW; weight decay is decoupled in both.
Reproducible: the same seed gives the same batches, dropout masks and therefore weights, bit for bit, on CPU.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator

import numpy as np
import torch

from fedchem.algo.batches import BatchSource, batch_sizes
from fedchem.algo.config import TrainingConfig
from fedchem.algo.losses import batch_loss
from fedchem.algo.model import Head, Trunk
from fedchem.algo.adam import COMPILE_MIN_STEPS, DenseAdamW, RowSparseAdam
from fedchem.algo.dropout import MaskStream
from fedchem.algo.task_io import derived_seed
from fedchem.opener.dataset import PreparedDataset
from fedchem.opener.fileio import atomic_write

Progress = Callable[[int, int, float], None]  # (steps done, steps in this call, running mean loss)


THREADS_ENV = "FEDCHEM_THREADS"  # torch's thread count for training (default 1)


def all_cores() -> int:
    """How many cores this process may run on (2 on the project's machines)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def set_threads() -> int:
    """Give torch one thread, or $FEDCHEM_THREADS; returns the count.

    One, because a training step is a few dozen small memory-bound kernels: a second OpenMP thread costs more in
    fork/join than it gains, and ruinously so when the cores are shared (bench/train_speed.py: on 2 cores, the
    whole Tox21 train-local 8x slower with 2 threads than with 1 at load average 12; README, Figures). The second
    core still works: the row-sparse step splits its chunks between two Python threads (`step_threads`)."""
    n = 1
    if os.environ.get(THREADS_ENV, "").strip().isdigit():
        n = max(1, int(os.environ[THREADS_ENV]))
    torch.set_num_threads(n)
    return n


MMAP_THRESHOLD = 64 << 20  # bytes: glibc serves smaller blocks from its heap (its default adapts from 128 KiB)
TRIM_THRESHOLD = 512 << 20  # bytes of freed heap glibc keeps before giving memory back to the system


def keep_freed_memory() -> bool:
    """Ask glibc's allocator to reuse freed memory for the next blocks instead of returning it to the system and
    faulting fresh pages in again (mallopt M_MMAP_THRESHOLD and M_TRIM_THRESHOLD). A training step allocates the
    same few hundred-KB tensors every time, and a fresh page costs a fault (slow on these virtual machines): this
    removed a quarter of train-local's page faults (README, Training speed; bench/train_speed.py times it).
    True if glibc took both; False elsewhere (another C library), where nothing changes."""
    import ctypes

    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))


def step_threads() -> int:
    """Threads of the input layer's row-sparse Adam step: 2 when this process has 2 cores or more and
    $FEDCHEM_THREADS does not say 1 (its chunks split between two Python threads, not OpenMP's), else 1."""
    env = os.environ.get(THREADS_ENV, "").strip()
    return 1 if env.isdigit() and int(env) <= 1 else min(2, all_cores())


def _weight(value: str | None) -> float:
    try:
        w = float(value) if value not in (None, "") else 1.0
    except ValueError:
        w = 1.0
    return w if math.isfinite(w) and w >= 0 else 1.0


def task_weights(data: PreparedDataset) -> tuple[np.ndarray, np.ndarray]:
    """Training weight of each classification and regression column, from tasks.csv `weight` (blank: 1.0)."""
    wc = np.ones(data.Y_class.shape[1], dtype=np.float32)
    wr = np.ones(data.Y_regr.shape[1], dtype=np.float32)
    for t in data.tasks:
        target = wc if t["kind"] == "classification" else wr
        col = int(t["column"])
        if 0 <= col < target.size:
            target[col] = _weight(t.get("weight"))
    return wc, wr


def regression_means(data: PreparedDataset, rows: np.ndarray) -> np.ndarray:
    """Mean stored value of each regression task over `rows` (0 where a task has none): a starting bias."""
    Y = data.Y_regr[np.asarray(rows, dtype=np.int64)].tocoo()
    n = Y.shape[1]
    counts = np.bincount(Y.col, minlength=n)
    sums = np.bincount(Y.col, weights=Y.data.astype(np.float64), minlength=n)
    return (sums / np.maximum(counts, 1)).astype(np.float32)


def labelled_counts(data: PreparedDataset, rows: np.ndarray) -> int:
    """How many labelled cells (classification +1/-1 and regression values) the rows hold."""
    rows = np.asarray(rows, dtype=np.int64)
    return int(np.count_nonzero(data.Y_class[rows].data)) + int(data.Y_regr[rows].nnz)


def steps_for(n_rows: int, cfg: TrainingConfig, epochs: float) -> int:
    """How many steps `epochs` passes over `n_rows` training rows take (what train_epochs runs)."""
    return math.ceil(_rows_drawn(n_rows, epochs) / cfg.batch_size) if n_rows else 0


class Optimizer:
    """Row-sparse Adam on the input layer's weight, AdamW on everything else; one learning rate for both."""

    def __init__(self, trunk: Trunk, head: Head, cfg: TrainingConfig, lr: float | None = None,
                 expected_steps: int = 0):
        """`expected_steps`: how many steps the caller plans; from COMPILE_MIN_STEPS on the input layer's step
        is the compiled one (algo.row_kernels), whose ~0.5 s start a short run would not pay back."""
        lr = float(cfg.learning_rate if lr is None else lr)
        self.sparse = RowSparseAdam(trunk.input.weight, lr=lr, weight_decay=cfg.weight_decay,
                                    state=cfg.input_optimizer_state, threads=step_threads())
        self.sparse.compiled = expected_steps >= COMPILE_MIN_STEPS
        dense = [p for n, p in trunk.named_parameters() if n != "input.weight"] + list(head.parameters())
        self.dense = DenseAdamW(dense, lr=lr, weight_decay=cfg.weight_decay)
        self.rows_touched = 0

    def set_lr(self, lr: float) -> None:
        self.sparse.lr = float(lr)
        self.dense.lr = float(lr)

    def zero_grad(self) -> None:
        self.sparse.zero_grad()
        self.dense.zero_grad()

    def step(self) -> None:
        self.rows_touched += self.sparse.step()
        self.dense.step()

    @contextlib.contextmanager
    def fused_into(self, trunk: Trunk) -> Iterator[None]:
        """Within the block, the input layer's backward pass applies the row-sparse step itself (its gradient is
        never stored: algo/model.py); `step` then counts those rows and steps the other parameters."""
        trunk.input.fused_optimizer = self.sparse
        try:
            yield
        finally:
            trunk.input.fused_optimizer = None

    def state_arrays(self, copy: bool = True) -> dict[str, np.ndarray]:
        """Adam's moments and step counts, as named arrays (what `load_state_arrays` restores bit for bit).
        copy=False gives views of the live moments: for writing them out at once, without a second trunk-sized
        copy (0.17 s of a demo train task, measured: fresh pages are slow to fault on these machines)."""
        take = (lambda a: a.copy()) if copy else (lambda a: a)
        out = {"sparse/exp_avg": take(self.sparse.exp_avg.numpy()),
               "sparse/exp_avg_sq": take(self.sparse.exp_avg_sq.numpy()),
               "sparse/steps": np.asarray(self.sparse.steps, np.int64),
               "dense/steps": np.asarray(self.dense.steps, np.int64)}
        for i, (m, v) in enumerate(zip(self.dense.exp_avg, self.dense.exp_avg_sq)):
            out[f"dense/{i}/exp_avg"] = take(m.detach().numpy())
            out[f"dense/{i}/exp_avg_sq"] = take(v.detach().numpy())
        return out

    def load_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        """Restore what `state_arrays` gave; ValueError when it belongs to another model's shapes."""
        pairs = [(self.sparse.exp_avg, "sparse/exp_avg"), (self.sparse.exp_avg_sq, "sparse/exp_avg_sq")]
        for i, (m, v) in enumerate(zip(self.dense.exp_avg, self.dense.exp_avg_sq)):
            pairs += [(m, f"dense/{i}/exp_avg"), (v, f"dense/{i}/exp_avg_sq")]
        expected = {k for _, k in pairs} | {"sparse/steps", "dense/steps"}
        if set(arrays) != expected:
            raise ValueError("the optimiser state does not match this model (other parameters)")
        for tensor, key in pairs:
            a = np.asarray(arrays[key])
            if tuple(a.shape) != tuple(tensor.shape):
                raise ValueError(f"the optimiser state '{key}' has shape {a.shape}, the model {tuple(tensor.shape)}")
        with torch.no_grad():
            for tensor, key in pairs:
                tensor.copy_(torch.from_numpy(np.asarray(arrays[key], dtype=np.float32)))
        self.sparse.steps = int(arrays["sparse/steps"])
        self.dense.steps = int(arrays["dense/steps"])


OPTIMIZER_FORMAT = "fedchem-optimizer/1"


def save_optimizer(path, opt: Optimizer):
    """The optimiser's state as one .npz (no pickles): private to the partner, like its head."""
    payload = {"format": np.asarray(OPTIMIZER_FORMAT), **opt.state_arrays(copy=False)}
    return atomic_write(path, lambda fh: np.savez(fh, **payload))


def load_optimizer(path, opt: Optimizer) -> None:
    """Restore a state written by `save_optimizer` into `opt` (ValueError if it is not one, or another model's)."""
    with np.load(path, allow_pickle=False) as z:
        if "format" not in z.files or str(z["format"]) != OPTIMIZER_FORMAT:
            raise ValueError(f"{path} is not a fedchem optimiser state ({OPTIMIZER_FORMAT})")
        opt.load_state_arrays({k: z[k] for k in z.files if k != "format"})


def head_seed(seed: int, partner: str | None) -> int:
    """Seed of a partner's fresh head: the same alone and federated."""
    return derived_seed(seed, "head", partner)


def pass_seed(seed: int, partner: str | None, index: int) -> int:
    """Seed of batch order and dropout of a partner's `index`-th training pass (1-based): epoch `index` of
    train-local and round `index` of a federated run draw the same batches and masks."""
    return derived_seed(seed, partner, index)


@dataclass
class TrainStats:
    """What one call of `train_epochs` did."""

    steps: int
    compounds: int           # compound rows processed (with repeats when epochs > 1)
    epochs: float
    n_train_rows: int
    mean_loss: float         # mean batch loss over the call
    last_loss: float
    class_loss: float        # mean classification part
    regr_loss: float         # mean regression part
    seconds: float
    compounds_per_second: float
    mean_rows_touched: float  # input-layer rows updated per step

    def as_dict(self) -> dict:
        return asdict(self)


def _rows_drawn(n_rows: int, epochs: float) -> int:
    """How many positions `epochs` passes over n_rows draw (at least one)."""
    return max(1, int(round(epochs * n_rows)))


def epoch_order(n_rows: int, epochs: float, seed: int) -> np.ndarray:
    """Positions 0..n_rows-1 in training order: whole shuffled passes, then the first part of one more for a
    fractional epoch (at least one row)."""
    rng = np.random.default_rng(int(seed) % (1 << 63))
    total = _rows_drawn(n_rows, epochs)
    parts, left = [], total
    while left > 0:
        perm = rng.permutation(n_rows)
        parts.append(perm[:left])
        left -= perm.size
    return np.concatenate(parts)


@contextlib.contextmanager
def _masks_ahead(trunk: Trunk, opt: Optimizer, seed: int, n_positions: int,
                 batch_size: int) -> Iterator[MaskStream | None]:
    """Dropout's masks drawn a step ahead on the optimiser's worker thread (algo.dropout), when there is a second
    thread and dropout draws anything; the same bits as drawing them in the step."""
    p = float(trunk.drop.p)
    if getattr(opt.sparse, "threads", 1) < 2 or not 0.0 < p < 1.0:  # today's path (algo.reference) has none
        yield None
        return
    stream = MaskStream(seed, p, trunk.dropout_widths, batch_sizes(n_positions, batch_size), opt.sparse.pool())
    try:
        yield stream
    finally:
        trunk.dropout_masks = None
        stream.close()


def train_epochs(trunk: Trunk, head: Head, data: PreparedDataset, rows: np.ndarray, cfg: TrainingConfig,
                 epochs: float, seed: int, progress: Progress | None = None, lr: float | None = None,
                 optimizer: Optimizer | None = None, source: BatchSource | None = None) -> TrainStats:
    """Train trunk and head in place on `rows` for `epochs` passes (fractional allowed) with batches of
    cfg.batch_size, at learning rate `lr` (default cfg.learning_rate).

    Without `optimizer` a fresh one is made (Adam moments start at zero: fine for a federated round, whose trunk
    was just replaced); pass the same `Optimizer` across calls to keep its state (train-local does, epoch by epoch).
    `source` reuses rows already sliced by `BatchSource(data, rows)`.
    """
    rows = np.asarray(rows, dtype=np.int64)
    if rows.size == 0:
        raise ValueError("no training rows")
    if epochs <= 0:
        raise ValueError("epochs must be > 0")
    source = source if source is not None else BatchSource(data, rows)
    order = epoch_order(len(source), epochs, seed)
    n_steps = math.ceil(order.size / cfg.batch_size)
    opt = optimizer if optimizer is not None else Optimizer(trunk, head, cfg, lr, expected_steps=n_steps)
    if lr is not None:
        opt.set_lr(lr)
    wc, wr = task_weights(data)
    wc_t, wr_t = torch.from_numpy(wc), torch.from_numpy(wr)
    trunk.train()
    head.train()
    losses, c_parts, r_parts = [], [], []
    touched0 = opt.rows_touched
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]), opt.fused_into(trunk), _masks_ahead(trunk, opt, seed, order.size,
                                                                                cfg.batch_size) as masks:
        torch.manual_seed(int(seed) % (1 << 63))
        for step, batch in enumerate(source.batches(order, cfg.batch_size), start=1):
            if masks is not None:
                trunk.dropout_masks = masks.next_step()
            opt.zero_grad()
            logits, regr = head(trunk(batch.x))
            loss, c_part, r_part = batch_loss(logits, regr, batch.y_class, batch.y_regr, wc_t, wr_t, batch.n_rows)
            if loss.requires_grad:
                loss.backward()
                opt.step()
            losses.append(float(loss.detach()))
            c_parts.append(c_part)
            r_parts.append(r_part)
            if progress is not None:
                progress(step, n_steps, float(np.mean(losses)))
    seconds = time.perf_counter() - t0
    return TrainStats(
        steps=len(losses), compounds=int(order.size), epochs=float(epochs), n_train_rows=int(rows.size),
        mean_loss=float(np.mean(losses)), last_loss=float(losses[-1]),
        class_loss=float(np.mean(c_parts)), regr_loss=float(np.mean(r_parts)), seconds=seconds,
        compounds_per_second=order.size / seconds if seconds > 0 else float("inf"),
        mean_rows_touched=(opt.rows_touched - touched0) / max(1, len(losses)),
    )
