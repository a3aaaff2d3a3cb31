"""The training step's fast paths (issue 17) give today's results: each against its reference in
fedchem.algo.reference (the first, readable implementation), and whole runs against `todays_path()` with the
same seeds. What holds: equal within float rounding (not bit for bit: the fused kernel and the embedding_bag
gradient round differently), the same batches bit for bit, the same per-epoch figures as scikit-learn's."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from algo_synthetic import synthetic_dataset
from fedchem.algo import adam, batches, dropout, evaluation, model as M, reference, train_local as TL, training
from fedchem.algo.batches import BatchSource, rows_from_csr
from fedchem.algo.config import ModelConfig, TrainingConfig
from fedchem import metrics

MCFG = ModelConfig(hidden_sizes=(32,), dropout=0.1)
TCFG = TrainingConfig(batch_size=32, learning_rate=3e-3, weight_decay=0.01)


@pytest.fixture(scope="module")
def ds():
    return synthetic_dataset()


def _sparse_grads(n_rows: int, n_cols: int, steps: int, seed: int) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        rows = torch.randperm(n_rows, generator=gen)[: n_rows // 2].sort().values
        vals = torch.randn(rows.numel(), n_cols, generator=gen) * 1e-2
        out.append(torch.sparse_coo_tensor(rows.unsqueeze(0), vals, (n_rows, n_cols)).coalesce())
    return out


@pytest.mark.parametrize("chunk", [adam.CHUNK_ELEMENTS, 7])
def test_fused_row_sparse_adam_equals_the_reference_step(monkeypatch, chunk):
    monkeypatch.setattr(adam, "CHUNK_ELEMENTS", chunk)  # 7: one or two rows a chunk, many chunks a step
    torch.manual_seed(0)
    fast_p = torch.nn.Parameter(torch.randn(50, 6))
    ref_p = torch.nn.Parameter(fast_p.detach().clone())
    fast = adam.RowSparseAdam(fast_p, lr=0.01, weight_decay=0.1)
    ref = reference.ReferenceRowSparseAdam(ref_p, lr=0.01, weight_decay=0.1)
    for g in _sparse_grads(50, 6, steps=8, seed=1):
        fast_p.grad, ref_p.grad = g.clone(), g.clone()
        assert fast.step() == ref.step() == g.indices().shape[1]
    for a, b in ((fast_p, ref_p), (fast.exp_avg, ref.exp_avg), (fast.exp_avg_sq, ref.exp_avg_sq)):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("state", ["full", "rowwise"])
def test_two_step_threads_give_the_one_thread_result_bit_for_bit(monkeypatch, state):
    monkeypatch.setattr(adam, "CHUNK_ELEMENTS", 6 * 3)  # 3 rows a chunk
    params = {}
    for threads in (1, 2):
        torch.manual_seed(0)
        p = torch.nn.Parameter(torch.randn(50, 6))
        opt = adam.RowSparseAdam(p, lr=0.01, weight_decay=0.1, state=state, threads=threads)
        for g in _sparse_grads(50, 6, steps=5, seed=1):
            p.grad = g
            assert opt.step() == g.indices().shape[1]
        params[threads] = (p.detach().clone(), opt.exp_avg.clone(), opt.exp_avg_sq.clone())
    for a, b in zip(params[1], params[2]):
        assert torch.equal(a, b)


def test_a_forked_child_steps_with_its_own_worker_thread():
    import os
    import signal
    p = torch.nn.Parameter(torch.zeros(40, 4))
    opt = adam.RowSparseAdam(p, lr=0.1, threads=2)
    monkey_chunk = 4 * 2  # 2 rows a chunk: the worker takes half

    def step() -> int:
        p.grad = torch.ones(40, 4).to_sparse(1)
        old, adam.CHUNK_ELEMENTS = adam.CHUNK_ELEMENTS, monkey_chunk
        try:
            return opt.step()
        finally:
            adam.CHUNK_ELEMENTS = old
    assert step() == 40  # the parent's worker thread exists now
    pid = os.fork()
    if pid == 0:  # child: would wait forever on the parent's (absent) worker without the at-fork reset
        signal.alarm(30)  # ... and then die of SIGALRM, failing the test rather than hanging it
        os._exit(0 if step() == 40 else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


def test_step_threads_follow_fedchem_threads(monkeypatch):
    monkeypatch.setenv("FEDCHEM_THREADS", "1")
    assert training.step_threads() == 1
    monkeypatch.delenv("FEDCHEM_THREADS")
    assert training.step_threads() == min(2, training.all_cores())
    assert training.set_threads() == 1 and torch.get_num_threads() == 1


def test_lazy_adam_is_not_dense_adam_on_rows_a_batch_skips():
    """Why the equality is with today's lazy Adam, not SparseChem's dense one: dense Adam's momentum keeps moving
    a row whose gradient is absent; the row-sparse step leaves it alone (equal on the rows every step uses:
    test_model_sparse_input)."""
    w = torch.nn.Parameter(torch.ones(2, 3))
    d = torch.nn.Parameter(torch.ones(2, 3))
    lazy, dense = adam.RowSparseAdam(w, lr=0.1), adam.DenseAdamW([d], lr=0.1)  # DenseAdamW: torch.optim.AdamW
    for rows in ([0, 1], [0]):
        g = torch.zeros(2, 3)
        g[rows] = 1.0
        w.grad, d.grad = g.to_sparse(1), g
        lazy.step()
        dense.step()
    after_first = 1 - 0.1  # both rows took one step of -lr
    assert torch.allclose(w[1], torch.full((3,), after_first))
    assert (d[1] < after_first - 1e-3).all()
    assert torch.allclose(w[0], d[0])


@pytest.mark.parametrize("transform", ["none", "binarize"])
def test_embedding_bag_gradient_equals_the_sparse_product_gradient(transform):
    rng = np.random.default_rng(4)
    dense = rng.integers(0, 4, size=(40, 300)) * (rng.random((40, 300)) < 0.1)
    dense[5] = 0  # an empty compound
    X = sp.csr_matrix(dense.astype(np.float32))
    grads = {}
    for name, fn in (("fast", M._RowSparseEmbeddingBag), ("ref", reference.ReferenceRowSparseEmbeddingBag)):
        trunk = M.init_trunk(300, ModelConfig(hidden_sizes=(16,), dropout=0.0, input_transform=transform), 0)
        x = rows_from_csr(X)
        w = M.transform_values(x.values, transform)
        out = fn.apply(trunk.input.weight, x.indices, x.offsets, w, x.n_rows, None)
        (out * torch.linspace(-1, 1, out.numel()).reshape(out.shape)).sum().backward()
        grads[name] = trunk.input.weight.grad.coalesce()
    assert torch.equal(grads["fast"].indices(), grads["ref"].indices())
    np.testing.assert_allclose(grads["fast"].values().numpy(), grads["ref"].values().numpy(), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("transform", ["none", "binarize"])
def test_step_fused_into_the_backward_pass_equals_the_step_on_the_stored_gradient(monkeypatch, transform):
    monkeypatch.setattr(adam, "CHUNK_ELEMENTS", 16 * 5)  # 5 rows a chunk: many chunks, a partial last one
    rng = np.random.default_rng(5)
    X = sp.csr_matrix((rng.integers(0, 3, size=(30, 200)) * (rng.random((30, 200)) < 0.1)).astype(np.float32))
    cfg = ModelConfig(hidden_sizes=(16,), dropout=0.0, input_transform=transform)
    out = {}
    for fused in (False, True):
        trunk = M.init_trunk(200, cfg, 0)
        opt = adam.RowSparseAdam(trunk.input.weight, lr=0.01, weight_decay=0.1)
        for k in range(3):
            if fused:
                trunk.input.fused_optimizer = opt
            y = trunk(X)
            (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
            if fused:
                assert trunk.input.weight.grad is None  # never stored
            n = opt.step()
            opt.zero_grad()
            assert n == np.unique(X.indices).size
        out[fused] = (trunk.input.weight.detach().clone(), opt.exp_avg.clone(), opt.exp_avg_sq.clone())
    for a, b in zip(out[True], out[False]):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


def _fused_steps(state: str, transform: str, compiled: bool, threads: int, steps: int = 3):
    """Three fused steps of the input layer on a small sparse batch (a column used by every compound, empty ones)."""
    rng = np.random.default_rng(6)
    dense = rng.integers(0, 3, size=(40, 200)) * (rng.random((40, 200)) < 0.1)
    dense[:, 7] = 2  # every compound: a long run in the gradient
    dense[3] = 0
    X = sp.csr_matrix(dense.astype(np.float32))
    trunk = M.init_trunk(200, ModelConfig(hidden_sizes=(24,), dropout=0.0, input_transform=transform), 0)
    opt = adam.RowSparseAdam(trunk.input.weight, lr=0.01, weight_decay=0.1, state=state, threads=threads)
    opt.compiled = compiled
    trunk.input.fused_optimizer = opt
    for k in range(steps):
        y = trunk(X)
        (y * torch.linspace(-1, 1 + k, y.numel()).reshape(y.shape)).sum().backward()
        assert trunk.input.weight.grad is None
        assert opt.step() == np.unique(X.indices).size
    return trunk.input.weight.detach().clone(), opt.exp_avg.clone(), opt.exp_avg_sq.clone()


@pytest.mark.parametrize("state", ["full", "rowwise"])
@pytest.mark.parametrize("transform", ["none", "binarize"])
def test_compiled_step_equals_the_torch_step(state, transform):
    torch_step = _fused_steps(state, transform, compiled=False, threads=1)
    compiled = _fused_steps(state, transform, compiled=True, threads=1)
    assert not torch.equal(torch_step[0], M.init_trunk(200, ModelConfig(hidden_sizes=(24,)), 0).input.weight)
    for a, b in zip(compiled, torch_step):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("state", ["full", "rowwise"])
def test_compiled_step_on_two_threads_is_the_one_thread_step_bit_for_bit(state):
    for a, b in zip(_fused_steps(state, "none", True, 1), _fused_steps(state, "none", True, 2)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("state", ["full", "rowwise"])
def test_vectorised_kernels_give_the_guarded_kernels_bits(monkeypatch, state):
    """row_kernels compile with error_model="numpy" (no zero test on divisions, so the row loop vectorises): the
    same kernels compiled with numba's default "python" model give the same weights and moments bit for bit."""
    from numba import njit

    from fedchem.algo import row_kernels

    fast = _fused_steps(state, "none", True, 1)
    guarded_row = njit(boundscheck=False, inline="always")(row_kernels._gradient_row.py_func)
    monkeypatch.setattr(row_kernels, "_gradient_row", guarded_row)  # the kernels below resolve it when compiled
    for name in ("adam_rows", "rowwise_adam_rows"):
        guarded = njit(nogil=True, boundscheck=False)(getattr(row_kernels, name).py_func)
        assert guarded.targetoptions.get("error_model", "python") == "python"
        monkeypatch.setattr(row_kernels, name, guarded)
    slow = _fused_steps(state, "none", True, 1)
    for a, b in zip(fast, slow):
        assert torch.equal(a, b)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compiled_feature_order_is_torchs(seed):
    """The compiled step orders a batch's non-zeros by feature with a counting sort: the same features, run ends,
    rows and value order as torch's stable sort (so the same gradient sums, bit for bit), on batches with empty
    rows, a feature every compound uses, one used once, and the last feature; its scratch is left zero."""
    rng = np.random.default_rng(seed)
    n_features = 500
    dense = (rng.random((57, n_features)) < 0.04).astype(np.float32)
    dense[:, 3] = 1.0
    dense[[0, 10, 56]] = 0.0
    dense[5, n_features - 1] = 1.0
    x = rows_from_csr(sp.csr_matrix(dense))
    opt = adam.RowSparseAdam(torch.nn.Parameter(torch.zeros(n_features, 4)), lr=0.01)
    opt.compiled = True
    for _ in range(2):  # the second batch runs on the scratch the first left behind
        got = opt.feature_order(x.indices, x.offsets, x.n_rows)
        want = batches.feature_order(x.indices, x.offsets, x.n_rows)
        for name, a, b in zip(want._fields, got, want):
            assert a.dtype == b.dtype and torch.equal(a, b), name
        assert not opt._cursor.any()
    empty = opt.feature_order(torch.zeros(0, dtype=torch.int64), torch.zeros(3, dtype=torch.int64), 3)
    assert all(t.numel() == 0 for t in empty)
    for bad in (n_features, -1):  # no bounds checks in the kernel's loops: it refuses before writing anything
        with pytest.raises(IndexError, match="outside the input layer's 500 rows"):
            opt.feature_order(torch.tensor([2, bad]), torch.zeros(1, dtype=torch.int64), 1)
        assert not opt._cursor.any()


def test_the_compiled_step_is_taken_for_long_runs_only(ds):
    trunk = M.init_trunk(ds.n_features, MCFG, 0)
    head = M.init_head(MCFG, ds.Y_class.shape[1], ds.Y_regr.shape[1], 1)
    short = training.Optimizer(trunk, head, TCFG, expected_steps=adam.COMPILE_MIN_STEPS - 1)
    long = training.Optimizer(trunk, head, TCFG, expected_steps=adam.COMPILE_MIN_STEPS)
    assert not short.sparse.compiled and long.sparse.compiled
    assert training.steps_for(100, TCFG, 2.0) == len(list(BatchSource(ds, np.arange(100)).batches(
        training.epoch_order(100, 2.0, 0), TCFG.batch_size)))


def test_two_thread_forward_is_the_one_thread_forward_bit_for_bit(monkeypatch):
    monkeypatch.setattr(M, "SPLIT_ROWS", 4)
    rng = np.random.default_rng(7)
    X = sp.csr_matrix((rng.integers(0, 3, size=(33, 90)) * (rng.random((33, 90)) < 0.2)).astype(np.float32))
    outs = []
    for threads in (1, 2):
        trunk = M.init_trunk(90, ModelConfig(hidden_sizes=(8,), dropout=0.0, input_transform="none"), 0)
        opt = adam.RowSparseAdam(trunk.input.weight, lr=0.01, threads=threads)
        trunk.input.fused_optimizer = opt
        outs.append(trunk.input(rows_from_csr(X)).detach())
    assert torch.equal(outs[0], outs[1])


def test_block_batches_are_the_per_batch_batches_bit_for_bit(ds, monkeypatch):
    monkeypatch.setattr(batches, "BLOCK_ROWS", 70)  # several blocks, a block not a multiple of the batch
    rows = np.flatnonzero(np.asarray(ds.folds) >= 1)
    src = BatchSource(ds, rows)
    order = training.epoch_order(len(src), 1.7, seed=3)
    fast = list(src.batches(order, 32))
    ref = list(reference.reference_batches(src, order, 32))
    assert len(fast) == len(ref) == -(-order.size // 32)
    for a, b in zip(fast, ref):
        assert a.n_rows == b.n_rows
        for ta, tb in ((a.x.indices, b.x.indices), (a.x.offsets, b.x.offsets), (a.x.values, b.x.values),
                       (a.y_class.rows, b.y_class.rows), (a.y_class.cols, b.y_class.cols),
                       (a.y_class.values, b.y_class.values), (a.y_regr.rows, b.y_regr.rows),
                       (a.y_regr.values, b.y_regr.values), (a.y_regr.censor, b.y_regr.censor)):
            assert torch.equal(ta, tb)


def _train(ds):
    train = np.flatnonzero(np.asarray(ds.folds) >= 2)
    trunk = M.init_trunk(ds.n_features, MCFG, 0)
    head = M.init_head(MCFG, ds.Y_class.shape[1], ds.Y_regr.shape[1], 1)
    opt = training.Optimizer(trunk, head, TCFG)
    losses = [training.train_epochs(trunk, head, ds, train, TCFG, epochs=1, seed=e, optimizer=opt).mean_loss
              for e in range(3)]
    return losses, {**M.trunk_to_arrays(trunk), **{f"head.{k}": v for k, v in M.head_to_arrays(head).items()}}


def test_training_equals_todays_path_within_float_rounding(ds):
    with reference.todays_path(threads=1):
        ref_losses, ref = _train(ds)
    losses, new = _train(ds)
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-5)
    for k in ref:
        np.testing.assert_allclose(new[k], ref[k], rtol=1e-4, atol=1e-5, err_msg=k)
    assert not np.array_equal(new["input.weight"], M.trunk_to_arrays(M.init_trunk(ds.n_features, MCFG, 0))
                              ["input.weight"])


def test_train_local_equals_todays_path(ds, tmp_path):
    cfg = TCFG.model_copy(update={"epochs": 4, "early_stopping_patience": 0})
    with reference.todays_path(threads=1):
        ref = TL.train_local(ds, tmp_path / "today", MCFG, cfg)
    new = TL.train_local(ds, tmp_path / "new", MCFG, cfg)
    assert new.best_epoch == ref.best_epoch
    for a, b in zip(new.history, ref.history):
        assert a["validation"]["select_on"] == b["validation"]["select_on"]
        for key in ("value", "auc_roc", "auc_pr", "rmse", "r2", "pearson"):
            np.testing.assert_allclose(a["validation"][key], b["validation"][key], rtol=1e-4, err_msg=key)
    for split in ("validation", "test"):
        for kind, agg in getattr(ref, split).aggregate.items():
            for key in ("auc_roc", "auc_pr", "f1_max", "log_loss", "rmse", "r2"):
                if key in agg:
                    np.testing.assert_allclose(getattr(new, split).aggregate[kind][key], agg[key], rtol=1e-4)


def test_snapshot_is_a_copy_not_a_view(ds):
    trunk = M.init_trunk(ds.n_features, MCFG, 0)
    head = M.init_head(MCFG, ds.Y_class.shape[1], ds.Y_regr.shape[1], 1)
    t_state, h_state = TL._snapshot(trunk, head)
    with torch.no_grad():
        trunk.input.weight.add_(1.0)
        head.classification.bias.add_(1.0)
    assert not torch.equal(t_state["input.weight"], trunk.input.weight)
    assert not torch.equal(h_state["classification.bias"], head.classification.bias)
    assert list(t_state) == list(trunk.state_dict()) and list(h_state) == list(head.state_dict())
    again = TL._snapshot(trunk, head, into=(t_state, h_state))  # a later best epoch: written into the same tensors
    assert again[0] is t_state and torch.equal(t_state["input.weight"], trunk.input.weight)
    with torch.no_grad():
        trunk.input.weight.add_(1.0)
    assert not torch.equal(t_state["input.weight"], trunk.input.weight)


def test_masks_drawn_ahead_are_torchs_dropout_noise_bit_for_bit():
    x = torch.rand(7, 5) + 0.5
    torch.manual_seed(3)
    want = [torch.dropout(x[:n], 0.3, True) for n in (7, 7, 4)]  # three steps, one layer
    stream = dropout.MaskStream(3, 0.3, [5], [7, 7, 4], adam.RowSparseAdam.pool())
    got = [x[:n] * stream.next_step()[0] for n in (7, 7, 4)]
    for a, b in zip(got, want):
        assert torch.equal(a, b)
    with pytest.raises(RuntimeError, match="no more steps"):
        stream.next_step()
    with pytest.raises(ValueError):
        dropout.MaskStream(3, 0.0, [5], [7], adam.RowSparseAdam.pool())


@pytest.mark.parametrize("n,batch", [(100, 32), (96, 32), (1, 32), ((1 << 14) + 5, 121)])
def test_batch_sizes_are_the_batches_made(ds, n, batch):
    src = BatchSource(ds, np.arange(ds.n_compounds))
    order = np.resize(np.arange(len(src)), n)
    assert batches.batch_sizes(n, batch) == [b.n_rows for b in src.batches(order, batch)]


@pytest.mark.parametrize("hidden", [(32,), (32, 16)])
def test_masks_drawn_ahead_give_the_same_weights_bit_for_bit(ds, monkeypatch, hidden):
    mcfg = MCFG.model_copy(update={"hidden_sizes": hidden})
    made = []
    real = training.MaskStream

    def counted(*a, **k):
        made.append(1)
        return real(*a, **k)

    def run():
        train = np.flatnonzero(np.asarray(ds.folds) >= 2)
        trunk = M.init_trunk(ds.n_features, mcfg, 0)
        head = M.init_head(mcfg, ds.Y_class.shape[1], ds.Y_regr.shape[1], 1)
        opt = training.Optimizer(trunk, head, TCFG)
        opt.sparse.threads = 2
        for e in range(2):
            training.train_epochs(trunk, head, ds, train, TCFG, epochs=1.5, seed=e, optimizer=opt)
        assert trunk.dropout_masks is None
        return {**M.trunk_to_arrays(trunk), **M.head_to_arrays(head)}
    monkeypatch.setattr(training, "MaskStream", counted)
    ahead = run()
    assert len(made) == 2
    monkeypatch.setattr(training, "_masks_ahead", reference.reference_masks_in_step)  # as today's path draws them
    drawn_in_step = run()
    for k in drawn_in_step:
        np.testing.assert_array_equal(ahead[k], drawn_in_step[k], err_msg=k)


def test_a_snapshot_is_reused_only_when_no_other_kind_holds_it():
    a, b = ({}, {}), ({}, {})
    assert TL._reusable({}, ["classification"]) is None
    shared = {"classification": a, "regression": a}  # one epoch won both kinds
    assert TL._reusable(shared, ["classification"]) is None  # regression still needs it
    assert TL._reusable(shared, ["classification", "regression"]) is a
    apart = {"classification": a, "regression": b}
    assert TL._reusable(apart, ["regression"]) is b and TL._reusable(apart, ["classification"]) is a


def test_the_saved_model_is_the_chosen_epochs_after_reused_snapshots(ds, tmp_path):
    """Classification's best epoch comes early and regression keeps improving alone afterwards (reusing its own
    snapshots): the saved model (classification's) must still be that early epoch's, the same as a run stopped
    there (the same seeds draw the same batches and masks)."""
    mcfg = ModelConfig(hidden_sizes=(128,), dropout=0.1)
    cfg = TCFG.model_copy(update={"epochs": 8, "early_stopping_patience": 0, "learning_rate": 3e-2})
    long = TL.train_local(ds, tmp_path / "long", mcfg, cfg)
    alone = [h["epoch"] for h in long.history if h["best_for"] == ["regression"]]
    assert long.selected["classification"] < long.selected["regression"] and len(alone) >= 2, long.history
    short = TL.train_local(ds, tmp_path / "short", mcfg, cfg.model_copy(update={"epochs": long.best_epoch}))
    assert short.best_epoch == long.best_epoch
    for name in ("trunk.npz", "head.npz"):
        with np.load(tmp_path / "long" / name) as x, np.load(tmp_path / "short" / name) as y:
            assert sorted(x.files) == sorted(y.files)
            for k in x.files:
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"{name}:{k}")


@pytest.mark.parametrize("seed", range(6))
def test_ranking_areas_equal_scikit_learns(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 400))
    y = np.where(rng.random(n) < 0.3, 1, -1)
    y[:2] = [1, -1]
    p = rng.random(n)
    if seed % 2:  # ties, as float32 sigmoid outputs and saturated scores make them
        p = np.round(p * 7) / 7
    roc, pr = metrics.ranking_areas(y, p)
    assert roc == pytest.approx(metrics.auc_roc(y, p), rel=1e-12, abs=1e-15)
    assert pr == pytest.approx(metrics.auc_pr(y, p), rel=1e-12, abs=1e-15)


def test_rowwise_state_follows_its_formula_and_keeps_one_second_moment_a_row(monkeypatch):
    """state="rowwise" (huge input layers): m per weight, v per row = EMA of the row's mean squared gradient,
    update -lr * m_hat / (sqrt(v_hat) + eps) with decoupled decay; written out in numpy here, chunked there."""
    monkeypatch.setattr(adam, "CHUNK_ELEMENTS", 12)  # two rows a chunk
    torch.manual_seed(3)
    p = torch.nn.Parameter(torch.randn(30, 6))
    opt = adam.RowSparseAdam(p, lr=0.01, weight_decay=0.1, state="rowwise")
    assert opt.exp_avg_sq.shape == (30,)
    assert opt.state_bytes() == 30 * 6 * 4 + 30 * 4  # vs 2 * 30 * 6 * 4 for full Adam
    w, m, v = p.detach().numpy().astype(np.float64), np.zeros((30, 6)), np.zeros(30)
    for t, g in enumerate(_sparse_grads(30, 6, steps=6, seed=2), start=1):
        p.grad = g.clone()
        opt.step()
        r, gv = g.indices()[0].numpy(), g.values().numpy().astype(np.float64)
        m[r] = 0.9 * m[r] + 0.1 * gv
        v[r] = 0.999 * v[r] + 0.001 * (gv ** 2).mean(1)
        w[r] *= 1 - 0.01 * 0.1
        w[r] -= 0.01 / (1 - 0.9 ** t) * m[r] / (np.sqrt(v[r] / (1 - 0.999 ** t)) + 1e-8)[:, None]
    np.testing.assert_allclose(p.detach().numpy(), w, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(opt.exp_avg.numpy(), m, rtol=1e-5, atol=1e-9)
    np.testing.assert_allclose(opt.exp_avg_sq.numpy(), v, rtol=1e-5, atol=1e-12)


def test_rowwise_state_trains_as_well_on_the_planted_signal(ds):
    train, val = np.flatnonzero(np.asarray(ds.folds) >= 2), np.flatnonzero(np.asarray(ds.folds) == 0)
    aucs = {}
    for state in ("full", "rowwise"):
        cfg = TCFG.model_copy(update={"input_optimizer_state": state, "learning_rate": 1e-2})
        trunk = M.init_trunk(ds.n_features, MCFG, 0)
        head = M.init_head(MCFG, ds.Y_class.shape[1], ds.Y_regr.shape[1], 1)
        opt = training.Optimizer(trunk, head, cfg)
        assert opt.sparse.state == state
        for e in range(10):
            training.train_epochs(trunk, head, ds, train, cfg, epochs=1, seed=e, optimizer=opt)
        aucs[state] = evaluation.evaluate(trunk, head, ds, val).aggregate["classification"]["auc_roc"]
    assert aucs["rowwise"] > 0.6 and aucs["rowwise"] > aucs["full"] - 0.05


PRELOAD_THEN_TRAIN = """
import json, sys
import numpy as np
from algo_synthetic import synthetic_dataset
from fedchem.algo import model as M, row_kernels, training
from fedchem.algo.adam import COMPILE_MIN_STEPS, RowSparseAdam
from fedchem.algo.config import ModelConfig, TrainingConfig

state, transform = sys.argv[1], sys.argv[2]
kernels = {"feature_order": row_kernels.feature_order,
           "step": row_kernels.adam_rows if state == "full" else row_kernels.rowwise_adam_rows}
RowSparseAdam.preload(state)
after_preload = {k: len(f.signatures) for k, f in kernels.items()}
ds = synthetic_dataset(n=200, n_features=256, n_class=2, n_regr=1)
mcfg = ModelConfig(hidden_sizes=(16,), input_transform=transform)
tcfg = TrainingConfig(batch_size=50, input_optimizer_state=state)
trunk, head = M.init_trunk(ds.n_features, mcfg, 1), M.init_head(mcfg, 2, 1, 1)
opt = training.Optimizer(trunk, head, tcfg, expected_steps=COMPILE_MIN_STEPS)
assert opt.sparse.compiled
training.train_epochs(trunk, head, ds, np.arange(150), tcfg, epochs=1.0, seed=3, optimizer=opt)
print(json.dumps({"preload": after_preload, "trained": {k: len(f.signatures) for k, f in kernels.items()}}))
"""


@pytest.mark.parametrize("state,transform", [("full", "binarize"), ("full", "log1p"), ("rowwise", "none")])
def test_preload_loads_exactly_the_kernels_training_then_calls(state, transform):
    """After `RowSparseAdam.preload` a fresh process trains with the compiled step without numba typing a new
    signature: the scratch step asked for the very ones training asks for (else the preload would be wasted)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    helpers = Path(__file__).resolve().parents[1] / "helpers"
    run = subprocess.run([sys.executable, "-c", PRELOAD_THEN_TRAIN, state, transform], capture_output=True,
                         text=True, timeout=600, env={**os.environ, "PYTHONPATH": str(helpers)})
    assert run.returncode == 0, run.stderr
    counts = json.loads(run.stdout.strip().splitlines()[-1])
    assert all(n >= 1 for n in counts["preload"].values()), counts
    assert counts["trained"] == counts["preload"], counts


def test_set_up_on_two_threads_builds_the_one_thread_model_bit_for_bit(ds, monkeypatch):
    """train_local's set-up builds the model on the worker thread while numba starts (a compiled run, two
    threads); the trunk, head, optimiser state and batches are those of the plain sequential set-up."""
    folds = TL.Folds(train=np.arange(0, 200), validation=np.arange(200, 250), test=np.arange(250, 300))
    steps = adam.COMPILE_MIN_STEPS
    monkeypatch.setattr(training, "step_threads", lambda: 2)
    calls = []
    monkeypatch.setattr(adam.RowSparseAdam, "preload", staticmethod(lambda state: calls.append(state)))
    overlapped = TL._set_up(ds, folds, MCFG, TCFG, steps)
    assert calls == [TCFG.input_optimizer_state]  # the overlapped branch was the one taken
    monkeypatch.setattr(training, "step_threads", lambda: 1)
    sequential = TL._set_up(ds, folds, MCFG, TCFG, steps)
    assert len(calls) == 1
    for a, b in zip(overlapped[:2], sequential[:2]):
        for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            assert torch.equal(x, y), k
    for k, x in overlapped[2].state_arrays().items():
        np.testing.assert_array_equal(x, sequential[2].state_arrays()[k], err_msg=k)
    assert overlapped[2].sparse.compiled and sequential[2].sparse.compiled
    assert (overlapped[3].X != sequential[3].X).nnz == 0
    blank, none = overlapped[4], sequential[4]
    assert none is None and [list(part) for part in blank] == [list(m.state_dict()) for m in overlapped[:2]]
    assert all(not t.any() for part in blank for t in part.values())


def test_todays_path_preloads_nothing(ds, monkeypatch):
    """The baseline of bench/train_speed.py stays the code before issue 17: no numba start in its set-up."""
    folds = TL.Folds(train=np.arange(0, 200), validation=np.arange(200, 250), test=np.arange(250, 300))
    monkeypatch.setattr(training, "step_threads", lambda: 2)
    calls = []
    monkeypatch.setattr(adam.RowSparseAdam, "preload", staticmethod(lambda state: calls.append(state)))
    with reference.todays_path(threads=1):
        TL._set_up(ds, folds, MCFG, TCFG, adam.COMPILE_MIN_STEPS)
    assert calls == []


def test_train_local_with_the_overlapped_set_up_writes_the_sequential_runs_files(ds, tmp_path, monkeypatch):
    """A compiled run set up on two threads (model built beside numba's start, the first snapshot copied into
    the blank one) writes the same model and figures, bit for bit, as the same compiled run set up on one."""
    monkeypatch.setattr(training, "COMPILE_MIN_STEPS", 1)
    monkeypatch.setattr(TL, "COMPILE_MIN_STEPS", 1)
    mcfg = ModelConfig(hidden_sizes=(64,), dropout=0.1)
    cfg = TCFG.model_copy(update={"epochs": 5, "early_stopping_patience": 0, "learning_rate": 3e-2})
    blanks = []
    real_blank = TL._blank_snapshot
    monkeypatch.setattr(TL, "_blank_snapshot", lambda t, h: blanks.append(1) or real_blank(t, h))
    runs = {}
    for threads in (2, 1):
        monkeypatch.setattr(training, "step_threads", lambda n=threads: n)
        runs[threads] = TL.train_local(ds, tmp_path / f"t{threads}", mcfg, cfg)
    assert blanks == [1]  # only the two-thread run took the overlapped set-up
    assert sum(h["best"] for h in runs[2].history) >= 2  # the blank snapshot was filled and then reused
    assert [h["validation"] for h in runs[2].history] == [h["validation"] for h in runs[1].history]
    for name in ("trunk.npz", "head.npz", "test_predictions.npz"):
        with np.load(tmp_path / "t2" / name) as x, np.load(tmp_path / "t1" / name) as y:
            assert sorted(x.files) == sorted(y.files)
            for k in x.files:
                np.testing.assert_array_equal(x[k], y[k], err_msg=f"{name}:{k}")


def _previous_output_and_trunk_hook(ds, tmp_path, monkeypatch, on_trunk):
    """A finished train-local output in tmp_path/out (its files' bytes returned), then save_params patched so
    that `on_trunk()` runs before the trunk's file is written; the run's TrainingConfig comes back too."""
    cfg = TCFG.model_copy(update={"epochs": 2, "early_stopping_patience": 0})
    TL.train_local(ds, tmp_path / "out", MCFG, cfg)
    before = {f.name: f.read_bytes() for f in (tmp_path / "out").iterdir()}
    real_save = TL.save_params

    def hooked(path, arrays, *a, **k):
        if path.name == "trunk.npz":
            on_trunk()
        return real_save(path, arrays, *a, **k)
    monkeypatch.setattr(TL, "save_params", hooked)
    return cfg, before


def test_a_failed_output_block_waits_for_the_trunks_writer_and_leaves_no_folder(ds, tmp_path, monkeypatch):
    """The trunk's file is written on the worker thread: when the rest of the output fails, the temporary folder
    is removed only after that writer ended (else its late write would make the folder again, half-filled),
    and a previous output stays as it was."""
    import time

    cfg, before = _previous_output_and_trunk_hook(ds, tmp_path, monkeypatch, lambda: time.sleep(0.5))

    def broken(*a, **k):
        raise RuntimeError("predictions could not be written")
    monkeypatch.setattr(TL, "save_predictions", broken)
    with pytest.raises(RuntimeError, match="predictions could not be written"):
        TL.train_local(ds, tmp_path / "out", MCFG, cfg)
    time.sleep(0.7)  # a writer still running would have made its folder again by now
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert {f.name: f.read_bytes() for f in (tmp_path / "out").iterdir()} == before


def test_a_failed_trunk_write_fails_the_run_and_keeps_the_previous_output(ds, tmp_path, monkeypatch):
    from fedchem.opener.errors import FedchemError

    def full_disk():
        raise OSError(28, "No space left on device")
    cfg, before = _previous_output_and_trunk_hook(ds, tmp_path, monkeypatch, full_disk)
    with pytest.raises(FedchemError, match="no space left on the device"):
        TL.train_local(ds, tmp_path / "out", MCFG, cfg)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert {f.name: f.read_bytes() for f in (tmp_path / "out").iterdir()} == before
