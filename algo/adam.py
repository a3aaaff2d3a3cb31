"""Adam written out: a row-sparse ("lazy") one for the input layer, and a dense AdamW for everything else.

Why not torch.optim: its first `add_param_group` imports torch._dynamo, 1.5-3.5 s per process, paid by every
federated train task; and no torch optimizer updates only the rows a batch used with weight decay. Both classes
here follow torch.optim.AdamW's update rule (tests compare them).

Row-sparse Adam:

SparseChem's dense Adam step walks all n_features x hidden parameters (32.8 M for 32k -> 1000) at every batch; a
batch of 121 Tox21 compounds uses ~3k of the 32k fingerprint columns. Here the weights and moments of those rows
only are updated; untouched rows keep their weights and moments (SparseAdam's "lazy" semantics: it is NOT dense
Adam, whose momentum keeps moving rows a batch did not use; the two agree on rows every batch uses, which a test
shows). Weight decay is decoupled (AdamW-style) and applied to the touched rows only, so it stays sparse as well.

The step is memory-bound (a few million floats read and written per batch, a few FLOPs each). It runs over the
touched rows in chunks small enough to stay in the core's cache (gather weights and moments of a chunk, one fused
AdamW kernel, scatter back) instead of ~15 whole-array passes: 2-2.5x faster at equal results (within float
rounding; `algo.reference.ReferenceRowSparseAdam` is the readable one it is tested against).
`torch._fused_adamw_` is the kernel torch.optim.AdamW(fused=True) calls; torch is pinned (2.13.0). With
`threads=2` half of the chunks run on a worker thread (torch releases the GIL in its kernels): the two cores share
the memory traffic without OpenMP's fork/join on every small kernel.

State for huge input layers (`state="rowwise"`): one second moment per row (the mean of the squared gradient over
the row) instead of one per weight, as TorchRec's PARTIAL_ROWWISE_ADAM keeps for embedding tables. The optimiser
state of a 2^20 x 1000 input layer is then 4 GiB (first moment) + 4 MiB instead of 8 GiB. Not the same optimiser
as Adam: opt in with `training.input_optimizer_state: rowwise` (default `full`, which is Adam).
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from typing import Callable, Literal

import numpy as np
import torch

from fedchem.algo.batches import FeatureOrder, feature_order
from fedchem.algo.worker_thread import KeptWorker

COMPILE_MIN_STEPS = 200  # the compiled step costs ~0.5 s a process (numba import, cached kernel load) and saves
# ~2-5 ms a step on Tox21-sized layers (bench/train_speed.py): worth it from a few hundred steps on
CHUNK_ELEMENTS = 1 << 17  # weights per chunk of the row-sparse step: 4 arrays x 512 KiB stay in a core's L2 cache

State = Literal["full", "rowwise"]
_NO_VALUES = np.empty(0, dtype=np.float32)


@dataclass(frozen=True)
class RowGradient:
    """A batch's input-layer gradient, not yet made: the distinct features it uses (sorted), where each feature's
    run ends in the batch's non-zeros in feature order (`rows`: compound row, `values`: its value, None for all
    ones), and grad_out (batch x hidden). Feature u's gradient row is sum_j values[j] * grad_out[rows[j]] over
    its run; `chunk(a, b)` makes those of features[a:b] with torch (embedding_bag, the forward kernel)."""

    features: torch.Tensor
    ends: torch.Tensor
    rows: torch.Tensor
    values: torch.Tensor | None
    grad_out: torch.Tensor

    @cached_property
    def _starts(self) -> torch.Tensor:
        """Where each feature's run starts (made once: `chunk` is called for every chunk of a step)."""
        return torch.cat([self.ends.new_zeros(1), self.ends[:-1]])

    @cached_property
    def _ends(self) -> list[int]:
        return self.ends.tolist()

    def chunk(self, a: int, b: int) -> torch.Tensor:
        lo = self._ends[a - 1] if a > 0 else 0
        hi = self._ends[b - 1]
        return torch.nn.functional.embedding_bag(self.rows[lo:hi], self.grad_out, self._starts[a:b] - lo,
                                                 mode="sum", per_sample_weights=None if self.values is None
                                                 else self.values[lo:hi])


def sparse_rows(grad: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(sorted distinct row ids, their gradient rows) of a row-sparse gradient; None when there is nothing."""
    if grad is None:
        return None
    if not grad.is_sparse or grad.sparse_dim() != 1:  # not what the model produces, but accepted: row-sparse it
        grad = (grad.to_dense() if grad.is_sparse else grad).to_sparse(1)
    grad = grad.coalesce()
    idx = grad.indices()[0]
    if idx.numel() == 0:
        return None
    return idx, grad.values()


_WORKER = KeptWorker("fedchem-adam")  # takes half of a step's chunks (torch releases the GIL in its kernels)


class RowSparseAdam:
    """Lazy Adam with decoupled weight decay for one parameter whose gradient is a sparse COO tensor of rows."""

    has_compiled_step = True  # `preload` has kernels to load (algo.reference's optimiser of before has none)

    def __init__(self, param: torch.nn.Parameter, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, state: State = "full", threads: int = 1):
        if state not in ("full", "rowwise"):
            raise ValueError(f"unknown optimiser state {state!r} (full or rowwise)")
        self.param = param
        self.lr = float(lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = float(weight_decay)
        self.state = state
        self.threads = int(threads)  # 2: the chunks of a step are split between this thread and a worker
        self.exp_avg = torch.zeros_like(param, memory_format=torch.contiguous_format)
        if state == "full":
            self.exp_avg_sq = torch.zeros_like(param, memory_format=torch.contiguous_format)
        else:
            self.exp_avg_sq = param.new_zeros(param.shape[0])
        self.steps = 0
        self._applied = 0  # rows updated since `step` last reported
        self.compiled = False  # apply_gradient: the compiled one-pass step (True) or torch's chunked one
        self._cursor: np.ndarray | None = None  # feature_order's scratch when compiled

    def zero_grad(self) -> None:
        self.param.grad = None

    @staticmethod
    def preload(state: State = "full") -> None:
        """Import numba and load (or compile) the compiled step's kernels now, by one step on a scratch layer of
        two rows: the ~0.5 s of numba's start is then spent where the caller chooses (train_local spends it while
        the worker thread initialises the model) instead of in the first training step. The scratch arrays have
        the dtypes and layouts of a real step, so numba's dispatcher asks for exactly the signatures training
        will."""
        opt = RowSparseAdam(torch.nn.Parameter(torch.zeros(2, 4)), lr=1e-3, state=state)
        opt.compiled = True
        order = opt.feature_order(torch.tensor([0, 1, 1], dtype=torch.int64), torch.tensor([0, 2], dtype=torch.int64),
                                  2)
        opt.apply_gradient(RowGradient(order.features, order.ends, order.rows, None, torch.zeros(2, 4)))

    @staticmethod
    def pool() -> ThreadPoolExecutor:
        """The worker thread its two-thread steps share (the input layer's forward pass uses it too)."""
        return _WORKER.executor()

    def state_bytes(self) -> int:
        """Bytes the optimiser keeps for this parameter (both moments)."""
        return sum(t.numel() * t.element_size() for t in (self.exp_avg, self.exp_avg_sq))

    @torch.no_grad()
    def step(self) -> int:
        """Apply the gradient to the rows it names; returns how many rows were touched since the last call
        (including those `update_rows` updated during the backward pass)."""
        rows = sparse_rows(self.param.grad)
        if rows is not None:
            idx, grad = rows
            self.update_rows(idx, lambda a, b: grad[a:b])
        n, self._applied = self._applied, 0
        return n

    def feature_order(self, indices: torch.Tensor, offsets: torch.Tensor, n_rows: int) -> FeatureOrder:
        """The batch's non-zeros in feature order, for its gradient: compiled (one counting-sort pass,
        `algo.row_kernels.feature_order`) when the step is, else torch's sort; the same arrays either way."""
        if not self.compiled:
            return feature_order(indices, offsets, n_rows)
        from fedchem.algo import row_kernels

        if self._cursor is None:  # one zeroed int64 per input feature, reused by every step (left zero)
            self._cursor = np.zeros(self.param.shape[0], np.int64)
        idx = indices.contiguous().numpy()
        nnz = idx.shape[0]
        features, ends = np.empty(nnz, np.int64), np.empty(nnz, np.int64)
        rows, order = np.empty(nnz, np.int64), np.empty(nnz, np.int64)
        n = row_kernels.feature_order(idx, offsets.contiguous().numpy(), self._cursor, features, ends, rows, order)
        if n < 0:
            raise IndexError(f"a feature id of the batch is outside the input layer's {self.param.shape[0]} rows")
        return FeatureOrder(torch.from_numpy(features[:n]), torch.from_numpy(ends[:n]), torch.from_numpy(rows),
                            torch.from_numpy(order))

    @torch.no_grad()
    def apply_gradient(self, grad: RowGradient) -> None:
        """One Adam step on the rows `grad` names: called by the input layer's backward pass while
        `training.Optimizer` trains. With `compiled`, each row's gradient is made and applied in one compiled pass
        (`algo.row_kernels`), else by `update_rows` in torch; the two agree within float rounding. With threads=2
        each of two threads takes half of the rows (the same result bit for bit)."""
        n = grad.features.numel()
        if n == 0:
            return
        if not self.compiled:
            self.update_rows(grad.features, grad.chunk)
            return
        from fedchem.algo import row_kernels  # numba: imported (and compiled, or loaded) when first trained

        self.steps += 1
        b1, b2, t = self.beta1, self.beta2, self.steps
        if self.state == "full":
            kernel = row_kernels.adam_rows
            tail = (self.lr / (1 - b1 ** t), math.sqrt(1 - b2 ** t))
        else:
            kernel = row_kernels.rowwise_adam_rows
            tail = (1 - b1 ** t, 1 - b2 ** t)
        values = _NO_VALUES if grad.values is None else grad.values.contiguous().numpy()
        args = (self.param.detach().numpy(), self.exp_avg.numpy(), self.exp_avg_sq.numpy(),
                grad.grad_out.contiguous().numpy(), grad.features.numpy(), grad.ends.numpy(), grad.rows.numpy(),
                values)
        rule = (self.lr, b1, b2, self.eps, self.weight_decay, *tail)
        if self.threads > 1 and n > 1:  # disjoint rows: the same result as one thread, bit for bit
            half = n // 2
            other = _WORKER.executor().submit(kernel, *args, half, n, *rule)
            kernel(*args, 0, half, *rule)
            other.result()
        else:
            kernel(*args, 0, n, *rule)
        self._applied += int(n)

    @torch.no_grad()
    def update_rows(self, idx: torch.Tensor, grad_of: Callable[[int, int], torch.Tensor]) -> None:
        """One Adam step on rows `idx` (sorted, distinct), whose gradient rows idx[a:b] `grad_of(a, b)` gives:
        called by `step`, or by the input layer's backward pass with the gradient made chunk by chunk."""
        if idx.numel() == 0:
            return
        self.steps += 1
        per_chunk = max(1, CHUNK_ELEMENTS // max(1, self.param.shape[1]))
        update = self._full_chunk if self.state == "full" else self._rowwise_chunk
        step = torch.tensor(float(self.steps))
        n = idx.numel()
        chunks = [(a, min(a + per_chunk, n)) for a in range(0, n, per_chunk)]

        def run(part: list[tuple[int, int]]) -> None:
            with torch.no_grad():  # grad mode is per thread
                for a, b in part:
                    update(idx[a:b], grad_of(a, b), step)
        if self.threads > 1 and len(chunks) > 1:  # disjoint rows: the same result as one thread, bit for bit
            half = len(chunks) // 2
            other = _WORKER.executor().submit(run, chunks[half:])
            run(chunks[:half])
            other.result()
        else:
            run(chunks)
        self._applied += int(n)

    def _full_chunk(self, idx: torch.Tensor, grad: torch.Tensor, step: torch.Tensor) -> None:
        p = self.param.index_select(0, idx)
        m = self.exp_avg.index_select(0, idx)
        v = self.exp_avg_sq.index_select(0, idx)
        torch._fused_adamw_([p], [grad.contiguous()], [m], [v], [], [step], lr=self.lr, beta1=self.beta1,
                            beta2=self.beta2, weight_decay=self.weight_decay, eps=self.eps, amsgrad=False,
                            maximize=False)
        self.param.index_copy_(0, idx, p)
        self.exp_avg.index_copy_(0, idx, m)
        self.exp_avg_sq.index_copy_(0, idx, v)

    def _rowwise_chunk(self, idx: torch.Tensor, grad: torch.Tensor, step: torch.Tensor) -> None:
        b1, b2, t = self.beta1, self.beta2, float(step)
        p = self.param.index_select(0, idx)
        m = self.exp_avg.index_select(0, idx).lerp_(grad, 1 - b1)
        v = self.exp_avg_sq.index_select(0, idx).mul_(b2).add_(grad.square().mean(1), alpha=1 - b2)
        self.exp_avg_sq.index_copy_(0, idx, v)
        self.exp_avg.index_copy_(0, idx, m)
        scale = (v / (1 - b2 ** t)).sqrt_().add_(self.eps).reciprocal_().mul_(-self.lr / (1 - b1 ** t))
        if self.weight_decay:
            p.mul_(1 - self.lr * self.weight_decay)
        p.addcmul_(m, scale.unsqueeze(1))
        self.param.index_copy_(0, idx, p)


class DenseAdamW:
    """AdamW (decoupled weight decay) over dense parameters; the same arithmetic as torch.optim.AdamW."""

    def __init__(self, params: list[torch.nn.Parameter], lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        self.params = [p for p in params if p.numel()]
        self.lr = float(lr)
        self.beta1, self.beta2 = betas
        self.eps = eps
        self.weight_decay = float(weight_decay)
        self.exp_avg = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sq = [torch.zeros_like(p) for p in self.params]
        self.steps = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        b1, b2 = self.beta1, self.beta2
        bc1, bc2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq):
            if p.grad is None:
                continue
            g = p.grad
            if self.weight_decay:
                p.mul_(1 - self.lr * self.weight_decay)
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            denom = (v.sqrt() / bc2 ** 0.5).add_(self.eps)
            p.addcdiv_(m, denom, value=-self.lr / bc1)
