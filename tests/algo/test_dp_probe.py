"""The single-partner-row reconstruction on a real round (real local training, real secure aggregation in-process):
exact without DP, nothing left with DP; and the rows with an exactly zero change vanish under DP."""

from __future__ import annotations

import numpy as np
import pytest

from fedchem.algo import model as M
from fedchem.algo import training
from fedchem.algo.config import DPConfig, ModelConfig, SecAggConfig, TrainingConfig
from fedchem.algo.dp import privatize
from fedchem.algo.dp.mechanism import ring_clip_needed
from fedchem.algo.dp.probe import exclusive_rows, probe, scale_free_error
from fedchem.algo.params import flatten

from algo_synthetic import synthetic_dataset
from securesum import secure_sum

N_FEATURES = 4096
MCFG = ModelConfig(hidden_sizes=(32,), dropout=0.0)
TCFG = TrainingConfig(batch_size=32, learning_rate=0.01)


@pytest.fixture(scope="module")
def round_one():
    """Each of 3 partners trains one epoch from the same trunk; their true updates (float64 vectors)."""
    init = M.init_trunk(N_FEATURES, MCFG, 0)
    before = flatten(M.trunk_to_arrays(init))[0].astype(np.float64)
    deltas = {}
    for i, name in enumerate(["a", "b", "c"]):
        ds = synthetic_dataset(n=150, n_features=N_FEATURES, seed=10 + i)
        trunk = M.init_trunk(N_FEATURES, MCFG, 0)
        head = M.init_head(MCFG, ds.Y_class.shape[1], ds.Y_regr.shape[1], i)
        training.train_epochs(trunk, head, ds, np.arange(ds.n_compounds), TCFG, epochs=1.0, seed=i)
        deltas[name] = flatten(M.trunk_to_arrays(trunk))[0].astype(np.float64) - before
    return deltas


def _rows(v):
    return v[: N_FEATURES * 32].reshape(N_FEATURES, 32)


def _published_mean(deltas, dp):
    ids = sorted(deltas)
    if dp is None:
        cfg = SecAggConfig(clip=1.0)
        sent, weights = deltas, {p: 0.1 * (i + 1) for i, p in enumerate(ids)}  # unequal weights: the unknown scalar
    else:
        cfg = SecAggConfig(clip=ring_clip_needed(dp, 2))
        sent = {p: privatize(deltas[p], dp, 2, cfg)[0] for p in ids}  # the CSPRNG noise, as the train task adds it
        weights = {p: cfg.max_weight for p in ids}
    total, weight = secure_sum(sent, weights, cfg, threshold=2)
    return total / weight


def test_without_dp_the_sum_gives_each_partners_exclusive_rows_away(round_one):
    excl = exclusive_rows({p: _rows(d) for p, d in round_one.items()})
    assert all(m.sum() > 100 for m in excl.values())  # the leak exists on this data
    found = probe(_rows(_published_mean(round_one, None)), {p: _rows(d) for p, d in round_one.items()})
    assert 0.1 < found.exclusive_fraction < 0.6
    assert max(found.errors.values()) < 1e-6  # read exactly, up to the partner's weight
    assert found.zero_rows == found.untouched_rows > 0  # the unused columns show


def test_with_dp_the_reconstruction_fails_and_zero_rows_vanish(round_one):
    norms = [np.linalg.norm(d) for d in round_one.values()]
    dp = DPConfig(clip_norm=float(np.median(norms)), noise_multiplier=0.05, delta=1e-6)
    found = probe(_rows(_published_mean(round_one, dp)), {p: _rows(d) for p, d in round_one.items()})
    assert min(found.errors.values()) > 0.9, found.errors
    assert found.zero_rows == 0 and found.untouched_rows > 0


def test_scale_free_error():
    u = np.array([1.0, -2.0, 3.0])
    assert scale_free_error(-7 * u, u) == pytest.approx(0, abs=1e-12)
    assert scale_free_error(np.array([2.0, 1.0, 0.0]), u) == pytest.approx(1.0)  # orthogonal
    assert scale_free_error(np.zeros(3), u) == 1.0
