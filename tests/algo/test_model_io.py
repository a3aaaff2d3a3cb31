"""Seeded initialisation, trunk/head arrays and files, the flat vector, and the predictions file format."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from fedchem.algo import model as M
from fedchem.algo.config import ModelConfig
from fedchem.algo.predictions import load_predictions, save_predictions
from fedchem.algo.params import flatten, load_params, save_params, unflatten

CFG = ModelConfig(hidden_sizes=(16, 8), dropout=0.0)


def _x(n=10, f=50, seed=0):
    rng = np.random.default_rng(seed)
    return sp.random(n, f, density=0.2, format="csr", dtype=np.float32, random_state=rng)


def test_same_seed_same_weights_bit_for_bit_and_another_seed_differs():
    a = M.trunk_to_arrays(M.init_trunk(50, CFG, seed=7))
    b = M.trunk_to_arrays(M.init_trunk(50, CFG, seed=7))
    c = M.trunk_to_arrays(M.init_trunk(50, CFG, seed=8))
    assert list(a) == ["input.weight", "input.bias", "hidden.0.weight", "hidden.0.bias"]
    assert a["input.weight"].shape == (50, 16) and a["hidden.0.weight"].shape == (8, 16)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["input.weight"], c["input.weight"])
    h1 = M.head_to_arrays(M.init_head(CFG, 3, 2, seed=1))
    h2 = M.head_to_arrays(M.init_head(CFG, 3, 2, seed=1))
    assert list(h1) == ["classification.weight", "classification.bias", "regression.weight", "regression.bias"]
    assert all(np.array_equal(h1[k], h2[k]) for k in h1)


def test_trunk_and_head_round_trip_through_files(tmp_path):
    X = _x()
    trunk, head = M.init_trunk(50, CFG, seed=3), M.init_head(CFG, 3, 2, seed=4, regr_bias=np.array([5.0, 6.0]))
    assert head.regression.bias.tolist() == [5.0, 6.0]
    save_params(tmp_path / "trunk.npz", M.trunk_to_arrays(trunk))
    save_params(tmp_path / "head.npz", M.head_to_arrays(head))
    trunk2, head2 = M.init_trunk(50, CFG, seed=99), M.init_head(CFG, 3, 2, seed=99)
    M.load_trunk_arrays(trunk2, load_params(tmp_path / "trunk.npz")[0])
    M.load_head_arrays(head2, load_params(tmp_path / "head.npz")[0])
    trunk.eval(), trunk2.eval()
    with torch.no_grad():
        for o1, o2 in zip(head(trunk(X)), head2(trunk2(X))):
            assert torch.equal(o1, o2)
    assert not list(tmp_path.glob(".*tmp"))  # atomic writes leave no temp file behind


def test_loading_arrays_of_another_shape_is_refused():
    trunk = M.init_trunk(50, CFG, seed=0)
    arrays = M.trunk_to_arrays(M.init_trunk(51, CFG, seed=0))
    with pytest.raises(ValueError, match="input.weight"):
        M.load_trunk_arrays(trunk, arrays)
    with pytest.raises(ValueError, match="missing"):
        M.load_head_arrays(M.init_head(CFG, 1, 1, seed=0), {"classification.weight": np.zeros((1, 8))})


def test_flatten_unflatten_round_trip_and_size_check():
    arrays = M.trunk_to_arrays(M.init_trunk(50, CFG, seed=5))
    vec, spec = flatten(arrays)
    assert vec.dtype == np.float32 and vec.ndim == 1 and vec.size == sum(a.size for a in arrays.values())
    back = unflatten(vec * 2, spec)
    assert list(back) == list(arrays)
    assert all(np.array_equal(back[k], arrays[k] * 2) for k in arrays)
    with pytest.raises(ValueError, match="values"):
        unflatten(vec[:-1], spec)


def test_params_does_not_import_torch():
    code = ("import sys, numpy as np; from fedchem.algo import params; "
            "v, s = params.flatten({'a': np.ones((2, 3), np.float32)}); params.unflatten(v, s); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_predictions_file_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    rows = np.array([4, 9, 11])
    p = save_predictions(tmp_path / "p.npz", rows, ["c4", "c9", "c11"], rng.random((3, 2)), rng.normal(size=(3, 1)),
                         class_std=rng.random((3, 2)), class_tasks=["t0", "t1"], regr_tasks=["r0"])
    got = load_predictions(p)
    np.testing.assert_array_equal(got.rows, rows)
    assert got.compound_ids.tolist() == ["c4", "c9", "c11"]
    assert got.class_scores.shape == (3, 2) and got.regr_preds.shape == (3, 1)
    assert got.class_std is not None and got.regr_std is None
    assert got.class_tasks.tolist() == ["t0", "t1"]
    with pytest.raises(ValueError, match="one row per compound"):
        save_predictions(tmp_path / "q.npz", rows, ["a", "b", "c"], np.zeros((2, 2)), np.zeros((3, 0)))
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="not a fedchem predictions file"):
        load_predictions(tmp_path / "other.npz")
