"""The aggregator applies the round's mean update in place (`functions.aggregate.apply_mean_update`): the same
float32 trunk, bit for bit, as the formula it replaces, without that formula's trunk-sized float64 temporaries."""

from __future__ import annotations

import tracemalloc

import numpy as np

from fedchem.algo.functions.aggregate import apply_mean_update
from fedchem.algo.params import unflatten


def _formula(vector: np.ndarray, total: np.ndarray, weight: float) -> np.ndarray:
    return (vector.astype(np.float64) + total / weight).astype(np.float32)


def _case(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    rng = np.random.default_rng(seed)
    vector = (rng.standard_normal(n) * 10.0 ** rng.integers(-6, 3, n)).astype(np.float32)
    total = rng.standard_normal(n) * 10.0 ** rng.integers(-9, 0, n)  # updates from far below to near a weight's ulp
    return vector, total, float(rng.uniform(0.001, 0.3))


def test_in_place_update_gives_the_formulas_bits():
    for seed in range(5):
        vector, total, weight = _case(200_000, seed)
        want = _formula(vector, total, weight)
        got = apply_mean_update(vector, total, weight)
        assert got is vector and got.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
        assert not np.array_equal(want, _case(200_000, seed)[0])  # the update moved the trunk


def test_in_place_update_allocates_no_trunk_sized_array():
    vector, total, weight = _case(1_000_000, 9)
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        _formula(vector.copy(), total.copy(), weight)
        formula_peak = tracemalloc.get_traced_memory()[1]
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        apply_mean_update(vector, total, weight)
        in_place_peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert formula_peak > 3 * total.nbytes  # the control: copies, the division, the cast and the sum (float64)
    assert in_place_peak < total.nbytes // 20  # numpy's casting buffers (~64 KB), no trunk-sized array


def test_unflatten_views_share_the_vector():
    vector = np.arange(10, dtype=np.float32)
    spec = [("a", (2, 3)), ("b", (4,))]
    views, copies = unflatten(vector, spec, copy=False), unflatten(vector, spec)
    assert all(np.shares_memory(v, vector) for v in views.values())
    assert not any(np.shares_memory(v, vector) for v in copies.values())
    for name in ("a", "b"):
        assert np.array_equal(views[name], copies[name])
