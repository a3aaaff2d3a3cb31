"""Mondrian inductive conformal prediction against cases worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fedchem.metrics.conformal import (class_p_values, classification_conformal, conformal_efficiency,
                                       regression_conformal)

# calibration (validation) cells: actives score 0.9, 0.8, 0.4; inactives 0.1, 0.3, 0.6
CAL_Y = np.array([1, 1, 1, -1, -1, -1])
CAL_P = np.array([0.9, 0.8, 0.4, 0.1, 0.3, 0.6])


def test_p_values_by_hand():
    """Nonconformity of 'active' = 1 − p: actives' are 0.1, 0.2, 0.6; of 'inactive' = p: inactives' are 0.1, 0.3,
    0.6. A test score p = 0.7: 'active' 0.3 is reached by one of three (0.6) → (1 + 1) / 4 = 0.5; 'inactive' 0.7 by
    none → 1/4. p = 0.35: active 0.65 by none → 0.25; inactive 0.35 by one → 0.5. p = 0.5: both 0.5, reached by one
    each → 0.5 and 0.5. p = 0.4: active 0.6 ties the calibration 0.6 (a tie counts) → 0.5; inactive 0.4 → 0.5."""
    pv = class_p_values([0.7, 0.35, 0.5, 0.4], calibration_true=CAL_Y, calibration_score=CAL_P)
    assert np.allclose(pv, [[0.25, 0.5], [0.5, 0.25], [0.5, 0.5], [0.5, 0.5]])


def test_efficiency_and_validity_by_hand():
    """At ε = 0.3: p = 0.7 → {active}; 0.35 → {inactive}; 0.5 → both. Truths active, inactive, active: every set
    holds its truth, two of three are single labels."""
    res = classification_conformal([1, 0, 1], [0.7, 0.35, 0.5], calibration_true=CAL_Y, calibration_score=CAL_P,
                                   significance=0.3)
    assert res["efficiency"] == pytest.approx(2 / 3) and res["both"] == pytest.approx(1 / 3) and res["empty"] == 0
    assert res["validity"] == 1.0 and res["validity_active"] == 1.0 and res["validity_inactive"] == 1.0
    assert res["valid"] is True and res["reason"] == ""
    assert conformal_efficiency([1, 0, 1], [0.7, 0.35, 0.5], calibration_true=CAL_Y, calibration_score=CAL_P,
                                significance=0.3) == pytest.approx(2 / 3)
    # the same sets with the truths swapped: p = 0.7 and 0.35 now exclude their truth
    wrong = classification_conformal([0, 1, 1], [0.7, 0.35, 0.5], calibration_true=CAL_Y, calibration_score=CAL_P,
                                     significance=0.3)
    assert wrong["validity"] == pytest.approx(1 / 3) and wrong["validity_inactive"] == 0.0
    assert wrong["efficiency"] == pytest.approx(2 / 3)


def test_validity_check_flags_an_improbable_error_rate():
    rng = np.random.default_rng(0)
    cal_y = rng.integers(0, 2, 400)
    cal_p = np.clip(0.5 + 0.3 * (cal_y - 0.5) + 0.15 * rng.normal(size=400), 0, 1)
    y = rng.integers(0, 2, 400)
    good = np.clip(0.5 + 0.3 * (y - 0.5) + 0.15 * rng.normal(size=400), 0, 1)
    ok = classification_conformal(y, good, calibration_true=cal_y, calibration_score=cal_p, significance=0.2)
    assert ok["valid"] is True and ok["validity"] >= 0.75
    flipped = classification_conformal(1 - y, good, calibration_true=cal_y, calibration_score=cal_p, significance=0.2)
    assert flipped["valid"] is False


def test_too_few_calibration_compounds_give_nan_and_a_reason():
    """At ε = 0.2 a label can be excluded only with at least 4 calibration compounds of its class (1/5 ≥ 1/(n+1))."""
    res = classification_conformal([1, 0], [0.9, 0.1], calibration_true=CAL_Y, calibration_score=CAL_P,
                                   significance=0.2)
    assert math.isnan(res["efficiency"]) and res["valid"] is None and "fewer than 4" in res["reason"]
    with pytest.raises(ValueError):
        classification_conformal([1], [0.5], calibration_true=CAL_Y, calibration_score=CAL_P, significance=1.5)


def test_regression_interval_by_hand():
    """Calibration errors 0.1, 0.2, 0.3, 0.4 (n = 4); at ε = 0.2 the ⌈5 · 0.8⌉ = 4th smallest, 0.4: width 0.8.
    Test errors 0.35 (inside), 0.5 (outside)."""
    res = regression_conformal([5.0, 6.0], [5.35, 6.5], calibration_true=[1.0, 2.0, 3.0, 4.0],
                               calibration_pred=[1.1, 1.8, 3.3, 4.4], significance=0.2)
    assert res["width"] == pytest.approx(0.8) and res["validity"] == 0.5 and res["reason"] == ""
    few = regression_conformal([5.0], [5.1], calibration_true=[1.0, 2.0, 3.0], calibration_pred=[1, 2, 3],
                               significance=0.2)
    assert math.isnan(few["width"]) and "too few" in few["reason"]
