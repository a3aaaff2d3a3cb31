"""Mondrian inductive conformal prediction of one task: calibrated on one fold (validation), judged on another (test).

Classification (label-conditional, "Mondrian" by class, as in MELLODDY's conformal efficiency): the nonconformity of
label c for a compound is 1 − P(c) (P(1) = the predicted probability, P(0) = 1 − it); the p-value of label c for a
test compound is (#{calibration compounds of class c with nonconformity ≥ its own} + 1) / (n_c + 1). The prediction
set at significance ε holds every label whose p-value exceeds ε. *Efficiency* is the share of test compounds whose
set holds exactly one label (higher is better); *validity* is the share whose set holds the true label, per class,
which the method guarantees to be at least 1 − ε for exchangeable folds (a scaffold split is not quite that, hence
the check: `valid` is False when a class's error count is improbably high for a rate of ε, one-sided binomial
p < 0.05).

Regression (Mondrian by task): the nonconformity is the absolute error on uncensored values; the interval is the
prediction ± the ⌈(n + 1)(1 − ε)⌉-th smallest calibration error; efficiency is its width (lower is better), validity
the share of uncensored test values inside it. Censored values ("<", ">") enter neither side.

Signatures follow scikit-learn: `metric(y_true, y_score, ...)` on the test cells, with the calibration cells given
by keyword. Too few calibration compounds to ever exclude a label (fewer than 1/ε − 1 of a class) give NaN and a
reason, never an exception.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from .inputs import as_1d_float, binary_labels, check_same_length, probabilities

DEFAULT_SIGNIFICANCE = 0.2


def _min_calibration(significance: float) -> int:
    """Calibration compounds of a class needed for its smallest p-value, 1 / (n + 1), to reach ε."""
    return max(1, math.ceil(1.0 / significance - 1.0 - 1e-12))


def _check_significance(significance: float) -> float:
    significance = float(significance)
    if not 0.0 < significance < 1.0:
        raise ValueError(f"significance must lie in (0, 1), got {significance}")
    return significance


def class_p_values(y_score, *, calibration_true, calibration_score) -> np.ndarray:
    """Label-conditional p-values, shape (n, 2): column 0 for label 0 (inactive), column 1 for label 1 (active)."""
    p = probabilities(y_score)
    cy = binary_labels(calibration_true)
    cp = probabilities(calibration_score)
    check_same_length(calibration_true=cy, calibration_score=cp)
    out = np.empty((p.size, 2))
    for c in (0, 1):
        cal = np.sort(1.0 - (cp[cy == c] if c == 1 else 1.0 - cp[cy == c]))  # nonconformity of class-c compounds
        own = 1.0 - (p if c == 1 else 1.0 - p)
        at_least = cal.size - np.searchsorted(cal, own, side="left")  # calibration scores >= own
        out[:, c] = (at_least + 1.0) / (cal.size + 1.0)
    return out


def classification_conformal(y_true, y_score, *, calibration_true, calibration_score,
                             significance: float = DEFAULT_SIGNIFICANCE) -> dict:
    """Efficiency, validity and set sizes of one classification task.

    Returns
    -------
    dict
        efficiency (share of single-label sets), empty and both (shares of empty and two-label sets), validity
        (share of sets holding the true label), validity_active / validity_inactive, valid (bool, the binomial check
        of each class's error count against ε), n, n_calibration and reason ("" when computed).
    """
    significance = _check_significance(significance)
    y = binary_labels(y_true)
    p = probabilities(y_score)
    check_same_length(y_true=y, y_score=p)
    cy = binary_labels(calibration_true)
    counts = {"n": int(y.size), "n_calibration": int(cy.size)}
    nan = dict.fromkeys(("efficiency", "empty", "both", "validity", "validity_active", "validity_inactive"),
                        float("nan"))
    need = _min_calibration(significance)
    short = [name for c, name in ((1, "active"), (0, "inactive")) if int((cy == c).sum()) < need]
    if short or y.size == 0:
        reason = ("no test values" if y.size == 0 else
                  f"fewer than {need} {' and '.join(short)} validation compounds to calibrate at ε = {significance:g}")
        return {**nan, "valid": None, **counts, "reason": reason}
    pv = class_p_values(p, calibration_true=cy, calibration_score=calibration_score)
    in_set = pv > significance
    size = in_set.sum(axis=1)
    covered = in_set[np.arange(y.size), y.astype(int)]
    valid = True
    per_class = {}
    for c, name in ((1, "active"), (0, "inactive")):
        mask = y == c
        per_class[f"validity_{name}"] = float(covered[mask].mean()) if mask.any() else float("nan")
        errors = int((~covered[mask]).sum())
        if mask.any() and errors and stats.binom.sf(errors - 1, int(mask.sum()), significance) < 0.05:
            valid = False
    return {"efficiency": float(np.mean(size == 1)), "empty": float(np.mean(size == 0)),
            "both": float(np.mean(size == 2)), "validity": float(covered.mean()), **per_class, "valid": valid,
            **counts, "reason": ""}


def regression_conformal(y_true, y_pred, *, calibration_true, calibration_pred,
                         significance: float = DEFAULT_SIGNIFICANCE) -> dict:
    """Interval width (efficiency, lower is better) and validity of one regression task, uncensored values only.

    Returns
    -------
    dict
        width (2 × the calibrated error), validity, valid (binomial check against ε), n, n_calibration, reason.
    """
    significance = _check_significance(significance)
    y, f = as_1d_float(y_true, "y_true"), as_1d_float(y_pred, "y_pred")
    check_same_length(y_true=y, y_pred=f)
    cy, cf = as_1d_float(calibration_true, "calibration_true"), as_1d_float(calibration_pred, "calibration_pred")
    check_same_length(calibration_true=cy, calibration_pred=cf)
    counts = {"n": int(y.size), "n_calibration": int(cy.size)}
    k = math.ceil((cy.size + 1) * (1.0 - significance))
    if y.size == 0 or k > cy.size:
        reason = "no test values" if y.size == 0 else (f"{cy.size} validation values are too few to calibrate at "
                                                       f"ε = {significance:g}")
        return {"width": float("nan"), "validity": float("nan"), "valid": None, **counts, "reason": reason}
    q = float(np.sort(np.abs(cf - cy))[k - 1])
    covered = np.abs(f - y) <= q
    errors = int((~covered).sum())
    valid = not (errors and stats.binom.sf(errors - 1, int(y.size), significance) < 0.05)
    return {"width": 2.0 * q, "validity": float(covered.mean()), "valid": valid, **counts, "reason": ""}


def conformal_efficiency(y_true, y_score, *, calibration_true, calibration_score,
                         significance: float = DEFAULT_SIGNIFICANCE) -> float:
    """Share of single-label Mondrian conformal prediction sets of one classification task (NaN when too few
    calibration compounds)."""
    return classification_conformal(y_true, y_score, calibration_true=calibration_true,
                                    calibration_score=calibration_score, significance=significance)["efficiency"]
