"""Regression metrics: censor-aware RMSE by hand, agreement with scikit-learn/scipy, quorum and NaN reasons."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from fedchem import metrics as fm


def random_task(seed: int, n: int = 120) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Values, noisy predictions and a mix of "<" / "=" / ">" flags."""
    rng = np.random.default_rng(seed)
    y = rng.normal(6.0, 1.2, n)
    f = y + rng.normal(0, 0.6, n)
    c = rng.choice([-1, 0, 1], size=n, p=[0.15, 0.7, 0.15])
    return y, f, c


def test_rmse_by_hand_and_vs_sklearn():
    assert fm.rmse([0.0, 0.0], [3.0, 4.0]) == pytest.approx(math.sqrt(12.5))
    y, f, _ = random_task(1)
    assert fm.rmse(y, f) == pytest.approx(math.sqrt(skm.mean_squared_error(y, f)))
    assert math.isnan(fm.rmse([], []))


def test_rmse_censored_by_hand_on_both_sides_of_bounds():
    y = [1.0, 2.0, 3.0, 4.0, 5.0]
    f = [1.5, 1.0, 3.5, 5.0, 4.0]
    c = [0, -1, -1, 1, 1]
    # "=" 0.5 off; "<2" predicted 1.0 (right side) 0; "<3" predicted 3.5: 0.5 past the bound;
    # ">4" predicted 5.0 (right side) 0; ">5" predicted 4.0: 1.0 short of the bound.
    assert fm.rmse_censored(y, f, c) == pytest.approx(math.sqrt((0.25 + 0 + 0.25 + 0 + 1.0) / 5))
    np.testing.assert_allclose(fm.censored_errors(y, f, c), [0.5, 0.0, 0.5, 0.0, -1.0])
    # a prediction exactly on the bound costs nothing either way
    assert fm.rmse_censored([2.0, 2.0], [2.0, 2.0], [-1, 1]) == 0.0
    # the flags matter: ignoring them gives the plain RMSE, which is larger here
    assert fm.rmse_censored(y, f) == pytest.approx(fm.rmse(y, f))
    assert fm.rmse(y, f) > fm.rmse_censored(y, f, c)


def test_rmse_censored_never_exceeds_plain_rmse_on_random_data():
    y, f, c = random_task(2)
    assert fm.rmse_censored(y, f, c) <= fm.rmse(y, f)
    expected = np.where(c == 0, f - y, np.where(c < 0, np.clip(f - y, 0, None), np.clip(f - y, None, 0)))
    assert fm.rmse_censored(y, f, c) == pytest.approx(np.sqrt(np.mean(expected**2)))


def test_bad_censor_flags_raise():
    with pytest.raises(ValueError, match="censor"):
        fm.rmse_censored([1.0, 2.0], [1.0, 2.0], [0, 2])
    with pytest.raises(ValueError, match="length"):
        fm.rmse_censored([1.0, 2.0], [1.0, 2.0], [0])
    with pytest.raises(ValueError, match="finite"):
        fm.rmse([1.0, np.nan], [1.0, 2.0])


def test_r2_and_pearson_vs_sklearn_scipy_and_by_hand():
    y, f, _ = random_task(3)
    assert fm.r2(y, f) == pytest.approx(skm.r2_score(y, f))
    assert fm.pearson(y, f) == pytest.approx(stats.pearsonr(y, f).statistic)
    # by hand: y = [1, 2, 3], f = [1, 2, 4]: SSres = 1, SStot = 2 -> R2 = 0.5; r = 3 / sqrt(2 * 14/3)
    assert fm.r2([1, 2, 3], [1, 2, 4]) == pytest.approx(0.5)
    assert fm.pearson([1, 2, 3], [1, 2, 4]) == pytest.approx(3 / math.sqrt(2 * 14 / 3))


def test_r2_and_pearson_undefined_are_nan():
    assert math.isnan(fm.r2([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]))
    assert math.isnan(fm.pearson([3.0, 3.0, 3.0], [1.0, 2.0, 3.0]))
    assert math.isnan(fm.pearson([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]))
    assert math.isnan(fm.r2([1.0], [1.0]))
    assert math.isnan(fm.pearson([1.0], [1.0]))


def test_task_metrics_use_uncensored_points_for_r2_pearson():
    y, f, c = random_task(4)
    row = fm.regression_task_metrics(y, f, censor=c)
    assert list(row) == [*fm.REGRESSION_METRICS, "n", "n_censored", "n_uncensored", "reason"]
    exact = c == 0
    assert row["reason"] == ""
    assert (row["n"], row["n_censored"], row["n_uncensored"]) == (len(y), int((~exact).sum()), int(exact.sum()))
    assert row["rmse"] == pytest.approx(fm.rmse_censored(y, f, c))
    assert row["rmse_uncensored"] == pytest.approx(fm.rmse(y[exact], f[exact]))
    assert row["r2"] == pytest.approx(skm.r2_score(y[exact], f[exact]))
    assert row["pearson"] == pytest.approx(stats.pearsonr(y[exact], f[exact]).statistic)
    assert row["r2"] != pytest.approx(skm.r2_score(y, f))  # the censored points really were left out


def test_task_metrics_quorum_and_reasons():
    row = fm.regression_task_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], censor=[0, 1, -1])
    assert row["reason"] == "only 1 uncensored values (< 2 required)"
    assert all(math.isnan(row[k]) for k in fm.REGRESSION_METRICS)
    row = fm.regression_task_metrics([], [])
    assert row["reason"] == "no values" and row["n"] == 0
    assert all(math.isnan(row[k]) for k in fm.REGRESSION_METRICS)
    row = fm.regression_task_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], min_n=5)
    assert row["reason"] == "only 3 uncensored values (< 5 required)"
    # constant target: RMSE still reported, r2 and pearson NaN with the reason
    row = fm.regression_task_metrics([5.0, 5.0, 5.0, 5.0], [4.0, 5.0, 6.0, 5.0])
    assert row["rmse"] == pytest.approx(math.sqrt(0.5))
    assert math.isnan(row["r2"]) and math.isnan(row["pearson"])
    assert "constant y_true" in row["reason"]
    # constant predictions: pearson NaN, r2 still defined
    row = fm.regression_task_metrics([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])
    assert math.isnan(row["pearson"]) and row["r2"] == pytest.approx(0.0)
    assert "constant predictions" in row["reason"]
    row = fm.regression_task_metrics([1.0, 2.0, 3.0], [2.0, np.nan, 2.0])
    assert row["reason"] == "1 non-finite predictions" and math.isnan(row["rmse"])


@pytest.mark.parametrize("seed", range(6))
def test_numpy_regression_metrics_equal_sklearn_and_scipy_to_1e12(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    scale = 10.0 ** rng.integers(-3, 4)
    y = rng.normal(5, 2, n) * scale
    f = (y + rng.normal(0, 1, n) * scale) if seed % 3 else np.round(y, 0)
    assert fm.rmse(y, f) == pytest.approx(math.sqrt(skm.mean_squared_error(y, f)), rel=1e-12)
    assert fm.r2(y, f) == pytest.approx(skm.r2_score(y, f), rel=1e-12, abs=1e-12)
    if not np.all(f == f[0]):
        assert fm.pearson(y, f) == pytest.approx(stats.pearsonr(y, f).statistic, rel=1e-12, abs=1e-12)
