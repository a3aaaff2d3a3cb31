"""The first, readable implementations of the training step's fast paths: the specification they are tested
against (tests/algo) and the same-process baseline of bench/train_speed.py ("today's path" of issue 17).

`todays_path()` swaps them into fedchem.algo for the duration of a `with` block: the optimiser step of
algo/adam.py written as whole-array tensor operations, the sparse-matrix-product gradient of the input layer,
one scipy fancy index per batch, full scikit-learn metrics at every validation, `copy.deepcopy` of the best
model, dropout's masks drawn in the step, and torch on every core. Never used by the product itself.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Iterator

import numpy as np
import torch

from fedchem.algo import adam, batches, model, training


class ReferenceRowSparseAdam(adam.RowSparseAdam):
    """Row-sparse Adam as first written: gather the touched rows' moments, update, scatter, one whole-array
    operation after the other (full state only)."""

    has_compiled_step = False  # nothing for train_local to preload: the code before issue 17 never imported numba

    @torch.no_grad()
    def step(self) -> int:
        rows = adam.sparse_rows(self.param.grad)
        if rows is None:
            return 0
        if self.state != "full":
            raise ValueError("the reference step keeps full Adam state only")
        idx, grad = rows
        self.steps += 1
        b1, b2 = self.beta1, self.beta2
        m = self.exp_avg.index_select(0, idx).mul_(b1).add_(grad, alpha=1 - b1)
        v = self.exp_avg_sq.index_select(0, idx).mul_(b2).addcmul_(grad, grad, value=1 - b2)
        self.exp_avg.index_copy_(0, idx, m)
        self.exp_avg_sq.index_copy_(0, idx, v)
        step_size = self.lr / (1 - b1 ** self.steps)
        denom = v.div_(1 - b2 ** self.steps).sqrt_().add_(self.eps)
        update = m.div_(denom).mul_(step_size)
        if self.weight_decay:
            update.add_(self.param.index_select(0, idx), alpha=self.lr * self.weight_decay)
        self.param.index_add_(0, idx, update, alpha=-1.0)
        return int(idx.numel())


class ReferenceRowSparseEmbeddingBag(model._RowSparseEmbeddingBag):
    """The input layer with its first backward: the gradient rows as a sparse (distinct features x batch) matrix
    times grad_out, stored in weight.grad for the optimiser's step (never fused into the backward pass)."""

    @staticmethod
    def backward(ctx, grad_out):
        indices, offsets, values = ctx.saved_tensors
        uniq, inv = torch.unique(indices, sorted=True, return_inverse=True)
        counts = torch.diff(offsets, append=offsets.new_tensor([indices.numel()]))
        row_of = torch.repeat_interleave(torch.arange(ctx.n_rows), counts)
        w = values if values is not None else torch.ones(indices.numel(), dtype=grad_out.dtype)
        xt = torch.sparse_coo_tensor(torch.stack([inv, row_of]), w, (uniq.numel(), ctx.n_rows),
                                     check_invariants=False).coalesce()
        grad_rows = torch.sparse.mm(xt, grad_out.contiguous())
        grad = torch.sparse_coo_tensor(uniq.unsqueeze(0), grad_rows, ctx.weight_shape, is_coalesced=True,
                                       check_invariants=False)
        return grad, None, None, None, None, None


def reference_batches(self: batches.BatchSource, order: np.ndarray, batch_size: int) -> Iterator[batches.Batch]:
    """BatchSource.batches as first written: one scipy fancy index of four matrices per batch."""
    for start in range(0, len(order), batch_size):
        yield self.batch(order[start:start + batch_size])


def reference_validate(trunk, head, data, rows):
    """Per-epoch validation as first written: every metric of every task (algo.evaluation.evaluate)."""
    from fedchem.algo import evaluation
    return evaluation.evaluate(trunk, head, data, rows)


def reference_snapshot(trunk, head, into=None):
    """The best epoch's weights as first kept: a deep copy of both state dicts."""
    return copy.deepcopy(trunk.state_dict()), copy.deepcopy(head.state_dict())


def reference_write_beside(write, *args):
    """The trunk's file as first written: on this thread, before the rest of the output (a finished Future)."""
    from concurrent.futures import Future
    done = Future()
    try:
        done.set_result(write(*args))
    except Exception as exc:  # raised where the overlapped write's error is: on leaving the output block
        done.set_exception(exc)
    return done


def reference_masks_in_step(*args) -> contextlib.AbstractContextManager[None]:
    """Dropout's masks drawn inside each step by nn.Dropout, as first written (no MaskStream)."""
    return contextlib.nullcontext()


@contextlib.contextmanager
def todays_path(threads: int | None = None) -> Iterator[None]:
    """Within the block, fedchem.algo trains the way it did before issue 17 (see the module docstring);
    `threads` (default: every core, as `use_all_cores`, now `set_threads`, did) is torch's thread count meanwhile."""
    from fedchem.algo import train_local
    saved = (training.RowSparseAdam, model._RowSparseEmbeddingBag, batches.BatchSource.batches,
             train_local._validate, train_local._snapshot, training._masks_ahead, train_local._write_beside,
             torch.get_num_threads())
    training.RowSparseAdam = ReferenceRowSparseAdam
    model._RowSparseEmbeddingBag = ReferenceRowSparseEmbeddingBag
    batches.BatchSource.batches = reference_batches
    train_local._validate = reference_validate
    train_local._snapshot = reference_snapshot
    training._masks_ahead = reference_masks_in_step
    train_local._write_beside = reference_write_beside
    torch.set_num_threads(threads or training.all_cores())
    try:
        yield
    finally:
        (training.RowSparseAdam, model._RowSparseEmbeddingBag, batches.BatchSource.batches,
         train_local._validate, train_local._snapshot, training._masks_ahead, train_local._write_beside,
         n) = saved
        torch.set_num_threads(n)
