"""The SparseChem-class network: a shared trunk (sparse input layer + hidden layers) and a private head per partner.

The input layer is `embedding_bag(mode="sum", per_sample_weights=values)` over the CSR rows: it never densifies X,
and its gradient is row-sparse (only the fingerprint columns a batch uses), so the optimiser step can touch only
those rows too (see algo/adam.py). bench/train_throughput.py measures it against CSR `torch.sparse.mm` and
COO `torch.mm` (SparseChem's path), whose gradients are dense over all n_features rows.
Trunk output = dropout(activation(last hidden layer)); heads are plain linear layers on it.
"""

from __future__ import annotations

import math
import warnings
from typing import Protocol

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from fedchem.algo.adam import RowGradient
from fedchem.algo.batches import FeatureOrder, SparseRows, feature_order, rows_from_csr
from fedchem.algo.config import ModelConfig

_ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def transform_values(values: torch.Tensor, transform: str) -> torch.Tensor | None:
    """SparseChem's input transforms on the stored values; None means "all ones" (binarize: skip the weights)."""
    if transform == "binarize":
        return None
    if transform == "log1p":
        return torch.log1p(values)
    if transform == "none":
        return values
    raise ValueError(f"unknown input transform {transform!r}")


class RowOptimizer(Protocol):
    """What the input layer needs of an optimiser that takes its step inside the backward pass
    (algo.adam.RowSparseAdam): the step on the rows a batch used, given their gradient not yet made, the batch's
    non-zeros in feature order (made the way its step is: compiled or torch), and the threads (and worker pool)
    it runs on, which the forward sum shares."""

    threads: int

    def apply_gradient(self, grad: RowGradient) -> None: ...

    def feature_order(self, indices: torch.Tensor, offsets: torch.Tensor, n_rows: int) -> FeatureOrder: ...

    def pool(self): ...


SPLIT_ROWS = 256  # a batch of at least this many compounds is summed on two threads when the optimiser has two


def _bags(weight, indices, offsets, values, n_rows: int, optimizer: RowOptimizer | None) -> torch.Tensor:
    """embedding_bag(sum) of the batch; with a two-thread optimiser (algo.adam.RowSparseAdam, threads=2) and a
    large batch, each of two threads sums half of the compounds (rows are independent: the same bits)."""
    if getattr(optimizer, "threads", 1) < 2 or n_rows < SPLIT_ROWS:
        return F.embedding_bag(indices, weight, offsets, mode="sum", per_sample_weights=values)
    half = n_rows // 2
    cut = int(offsets[half])

    def second() -> torch.Tensor:
        with torch.no_grad():  # grad mode is per thread; forward of a Function runs without it
            return F.embedding_bag(indices[cut:], weight, offsets[half:] - cut, mode="sum",
                                   per_sample_weights=None if values is None else values[cut:])
    other = optimizer.pool().submit(second)
    first = F.embedding_bag(indices[:cut], weight, offsets[:half], mode="sum",
                            per_sample_weights=None if values is None else values[:cut])
    return torch.cat([first, other.result()])


class _RowSparseEmbeddingBag(torch.autograd.Function):
    """sum_j value_ij * weight[j] per row i, whose weight gradient is built directly on the distinct rows used:
    a coalesced sparse COO tensor (no n_features x hidden buffer, and no coalescing of nnz x hidden values, which
    is what torch's own sparse embedding_bag gradient costs).

    The gradient row of feature u is sum_i value_iu * grad_out[i] over the rows i using u: an embedding_bag over
    grad_out with the batch's non-zeros sorted by feature (its CSC order), the same kernel as the forward pass.
    `algo.reference.ReferenceRowSparseEmbeddingBag` (a sparse matrix product) is what it is tested against.

    With an `optimizer` (training.Optimizer sets one while it trains), the gradient is never stored: the optimiser
    gets it as a RowGradient (the batch's non-zeros in feature order and grad_out) and makes each row's gradient
    where it applies its step, row by row in cache (as FBGEMM's embedding tables fuse their optimiser into the
    backward pass); weight.grad stays None."""

    @staticmethod
    def forward(ctx, weight, indices, offsets, values, n_rows, optimizer):
        out = _bags(weight, indices, offsets, values, n_rows, optimizer)
        ctx.save_for_backward(indices, offsets, values)
        ctx.n_rows = n_rows
        ctx.weight_shape = weight.shape
        ctx.optimizer = optimizer
        return out

    @staticmethod
    def backward(ctx, grad_out):
        indices, offsets, values = ctx.saved_tensors
        opt = ctx.optimizer
        fo = (feature_order if opt is None else opt.feature_order)(indices, offsets, ctx.n_rows)
        w = values[fo.order] if values is not None else None
        g = grad_out.contiguous()
        if opt is None:
            starts = torch.cat([fo.ends.new_zeros(1), fo.ends[:-1]])
            grad_rows = F.embedding_bag(fo.rows, g, starts, mode="sum", per_sample_weights=w)
            grad = torch.sparse_coo_tensor(fo.features.unsqueeze(0), grad_rows, ctx.weight_shape,
                                           is_coalesced=True, check_invariants=False)
            return grad, None, None, None, None, None
        opt.apply_gradient(RowGradient(fo.features, fo.ends, fo.rows, w, g))
        return None, None, None, None, None, None


class SparseInput(nn.Module):
    """Linear layer on sparse rows: out[i] = sum_j value_ij * weight[j] + bias, touching only the stored j.
    Its weight gradient is row-sparse: only the fingerprint columns the batch uses. `fused_optimizer` (None, or
    the row-sparse optimiser while it trains) makes the backward pass apply the step itself."""

    def __init__(self, n_features: int, n_out: int, transform: str):
        super().__init__()
        self.transform = transform
        self.weight = nn.Parameter(torch.empty(n_features, n_out))  # rows = input features, as in SparseChem
        self.bias = nn.Parameter(torch.empty(n_out))
        self.fused_optimizer: RowOptimizer | None = None

    def forward(self, x: SparseRows) -> torch.Tensor:
        w = transform_values(x.values, self.transform)
        if x.indices.numel() == 0:  # embedding_bag rejects an empty bag list with per-sample weights
            out = self.weight.new_zeros(x.n_rows, self.weight.shape[1])
        elif torch.is_grad_enabled() and self.weight.requires_grad:
            out = _RowSparseEmbeddingBag.apply(self.weight, x.indices, x.offsets, w, x.n_rows, self.fused_optimizer)
        else:
            out = F.embedding_bag(x.indices, self.weight, x.offsets, mode="sum", per_sample_weights=w)
        return out + self.bias


class Trunk(nn.Module):
    """Sparse input layer to hidden_sizes[0], then (activation, dropout, linear) per further hidden size,
    then a final activation and dropout. Its parameters are what the partners aggregate."""

    def __init__(self, n_features: int, cfg: ModelConfig):
        super().__init__()
        if n_features < 1:
            raise ValueError("the trunk needs at least one input feature")
        if not cfg.hidden_sizes:
            raise ValueError("model.hidden_sizes must name at least one layer")
        sizes = list(cfg.hidden_sizes)
        self.n_features = int(n_features)
        self.n_out = sizes[-1]
        self.input = SparseInput(n_features, sizes[0], cfg.input_transform)
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))
        self.act = _ACTIVATIONS[cfg.activation]()
        self.drop = nn.Dropout(cfg.dropout)
        # this step's dropout noise, one tensor a layer (algo.dropout.MaskStream, set by training for each step):
        # the same bits as self.drop would draw; None: self.drop draws them
        self.dropout_masks: list[torch.Tensor] | None = None

    @property
    def dropout_widths(self) -> list[int]:
        """The width of each dropout layer, in forward order."""
        return [layer.in_features for layer in self.hidden] + [self.n_out]

    def _drop(self, h: torch.Tensor, layer: int) -> torch.Tensor:
        if self.dropout_masks is None or not self.training:
            return self.drop(h)
        noise = self.dropout_masks[layer]
        if noise.shape != h.shape:
            raise RuntimeError(f"dropout mask {tuple(noise.shape)} for a layer output {tuple(h.shape)}")
        return h * noise  # torch's CPU dropout: input * (bernoulli(1 - p) / (1 - p))

    def forward(self, x: SparseRows | sp.spmatrix) -> torch.Tensor:
        if sp.issparse(x):
            x = rows_from_csr(x)
        h = self.input(x)
        for i, layer in enumerate(self.hidden):
            h = layer(self._drop(self.act(h), i))
        return self._drop(self.act(h), len(self.hidden))


class Head(nn.Module):
    """A partner's private output layers: logits of its classification tasks, values of its regression tasks."""

    def __init__(self, n_hidden: int, n_class_tasks: int, n_regr_tasks: int):
        super().__init__()
        self.n_class = int(n_class_tasks)
        self.n_regr = int(n_regr_tasks)
        with warnings.catch_warnings():  # a head may have 0 tasks of a kind: torch warns on initialising that
            warnings.simplefilter("ignore", UserWarning)
            self.classification = nn.Linear(n_hidden, self.n_class)
            self.regression = nn.Linear(n_hidden, self.n_regr)

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classification(h), self.regression(h)


def _uniform_(t: torch.Tensor, bound: float, gen: torch.Generator) -> None:
    if t.numel():
        with torch.no_grad():
            t.uniform_(-bound, bound, generator=gen)


def _xavier_bound(fan_in: int, fan_out: int, gain: float) -> float:
    return gain * math.sqrt(6.0 / (fan_in + fan_out))


def init_trunk(n_features: int, cfg: ModelConfig, seed: int) -> Trunk:
    """A fresh trunk, identical bit for bit for the same (n_features, cfg, seed); Xavier-uniform weights with
    the activation's gain and biases 0.1, as SparseChem initialises them."""
    trunk = Trunk(n_features, cfg)
    gen = torch.Generator().manual_seed(int(seed) % (1 << 63))
    gain = nn.init.calculate_gain(cfg.activation)
    w = trunk.input.weight
    _uniform_(w, _xavier_bound(w.shape[0], w.shape[1], gain), gen)
    with torch.no_grad():
        trunk.input.bias.fill_(0.1)
    for layer in trunk.hidden:
        _uniform_(layer.weight, _xavier_bound(layer.in_features, layer.out_features, gain), gen)
        with torch.no_grad():
            layer.bias.fill_(0.1)
    return trunk


def init_head(cfg: ModelConfig, n_class_tasks: int, n_regr_tasks: int, seed: int,
              regr_bias: np.ndarray | None = None) -> Head:
    """A fresh head on top of a trunk of `cfg`; `regr_bias` (e.g. each regression task's training mean) starts
    the regression outputs at a sensible level instead of 0."""
    n_hidden = cfg.hidden_sizes[-1]
    head = Head(n_hidden, n_class_tasks, n_regr_tasks)
    gen = torch.Generator().manual_seed(int(seed) % (1 << 63))
    for layer in (head.classification, head.regression):
        _uniform_(layer.weight, _xavier_bound(n_hidden, max(layer.out_features, 1), 1.0), gen)
        with torch.no_grad():
            layer.bias.zero_()
    if regr_bias is not None:
        rb = np.asarray(regr_bias, dtype=np.float32).reshape(-1)
        if rb.shape != (n_regr_tasks,):
            raise ValueError(f"regr_bias has {rb.size} values for {n_regr_tasks} regression tasks")
        with torch.no_grad():
            head.regression.bias.copy_(torch.from_numpy(np.nan_to_num(rb)))
    return head


def _to_arrays(module: nn.Module, copy: bool = True) -> dict[str, np.ndarray]:
    """float32 arrays of the parameters; copy=False gives views of the module's memory (to write at once: a copy
    of a 32k x 1000 input layer is ~0.3 s of fresh-page faults)."""
    return {k: v.detach().cpu().numpy().astype(np.float32, copy=copy) for k, v in module.state_dict().items()}


def _load_arrays(module: nn.Module, arrays: dict[str, np.ndarray], what: str) -> None:
    own = module.state_dict()
    if list(arrays) != list(own):
        missing = sorted(set(own) - set(arrays))
        extra = sorted(set(arrays) - set(own))
        if missing or extra:
            raise ValueError(f"{what} arrays do not match the model: missing {missing}, unexpected {extra}")
    for k, v in own.items():
        a = np.asarray(arrays[k])
        if tuple(a.shape) != tuple(v.shape):
            raise ValueError(f"{what} array {k} has shape {tuple(a.shape)}, the model needs {tuple(v.shape)}")
    with torch.no_grad():
        for k, v in own.items():
            v.copy_(torch.from_numpy(np.ascontiguousarray(arrays[k], dtype=np.float32)))


def trunk_to_arrays(trunk: Trunk, copy: bool = True) -> dict[str, np.ndarray]:
    """The trunk's parameters as an ordered dict of float32 arrays (input.weight first: n_features x hidden);
    copy=False: views of the trunk's own memory, valid until it trains again."""
    return _to_arrays(trunk, copy)


def load_trunk_arrays(trunk: Trunk, arrays: dict[str, np.ndarray]) -> None:
    """Overwrite the trunk's parameters in place (ValueError on a name or shape mismatch)."""
    _load_arrays(trunk, arrays, "trunk")


def head_to_arrays(head: Head, copy: bool = True) -> dict[str, np.ndarray]:
    """The head's parameters: classification.weight/bias, regression.weight/bias (copy=False: views)."""
    return _to_arrays(head, copy)


def load_head_arrays(head: Head, arrays: dict[str, np.ndarray]) -> None:
    """Overwrite the head's parameters in place (ValueError on a name or shape mismatch)."""
    _load_arrays(head, arrays, "head")
