"""Classification and calibration metrics: hand-computed cases, agreement with scikit-learn, +1/-1 labels, quorum."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
from sklearn import calibration as skcal
from sklearn import metrics as skm

from fedchem import metrics as fm

# y = [+, -, +, -] with scores [0.9, 0.8, 0.3, 0.1]: the worked example of most hand cases below.
Y4 = np.array([1, -1, 1, -1])
P4 = np.array([0.9, 0.8, 0.3, 0.1])


def random_task(seed: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """+1/-1 labels and probabilities that are informative but noisy."""
    rng = np.random.default_rng(seed)
    y = rng.choice([-1, 1], size=n, p=[0.7, 0.3])
    p = 1 / (1 + np.exp(-(1.2 * y + rng.normal(0, 1.5, n))))
    return y, p


def test_auc_roc_by_hand():
    # positive/negative pairs ranked right: (0.9>0.8), (0.9>0.1), (0.3>0.1); wrong: (0.3<0.8) -> 3/4
    assert fm.auc_roc(Y4, P4) == pytest.approx(0.75)
    # a tied positive/negative pair counts one half
    y = [1, 1, -1, -1]
    p = [0.6, 0.4, 0.4, 0.2]
    # pairs: (0.6,0.4)=1, (0.6,0.2)=1, (0.4,0.4)=0.5, (0.4,0.2)=1 -> 3.5/4
    assert fm.auc_roc(y, p) == pytest.approx(3.5 / 4)


def test_auc_pr_trapezoid_and_average_precision_by_hand():
    # PR points (recall, precision) from the highest threshold down: (0.5, 1), (0.5, 0.5), (1, 2/3), (1, 0.5),
    # plus the (0, 1) start. Trapezoids: 0.5 * (1 + 1) / 2 + 0.5 * (0.5 + 2/3) / 2 = 1/2 + 7/24 = 19/24.
    assert fm.auc_pr(Y4, P4) == pytest.approx(19 / 24)
    # AP sums precision at each recall step: 0.5 * 1 + 0.5 * 2/3 = 5/6; it differs from the trapezoid.
    assert fm.average_precision(Y4, P4) == pytest.approx(5 / 6)


def test_f1_by_hand():
    # at 0.5: predicted [1, 1, 0, 0] vs [1, 0, 1, 0] -> tp 1, fp 1, fn 1 -> F1 = 2 / 4
    assert fm.f1_at(Y4, P4) == pytest.approx(0.5)
    # at 0.2: predicted [1, 1, 1, 0] -> tp 2, fp 1, fn 0 -> F1 = 4 / 5
    assert fm.f1_at(Y4, P4, threshold=0.2) == pytest.approx(0.8)
    # a score equal to the threshold counts as positive
    assert fm.f1_at([1, -1], [0.5, 0.2]) == pytest.approx(1.0)
    # thresholds 0.9 / 0.8 / 0.3 / 0.1 give F1 2/3, 1/2, 4/5, 2/3 -> max 4/5
    assert fm.f1_max(Y4, P4) == pytest.approx(0.8)


def test_kappa_by_hand():
    # labels [1,1,1,0,0], predictions [1,1,0,0,0]: po = 4/5; pe = 3/5*2/5 + 2/5*3/5 = 12/25 -> (0.8-0.48)/0.52
    y = [1, 1, 1, -1, -1]
    p = [0.9, 0.7, 0.4, 0.3, 0.1]
    assert fm.kappa(y, p) == pytest.approx((0.8 - 0.48) / 0.52)
    assert fm.kappa(y, p, threshold=0.35) == pytest.approx(1.0)


def test_brier_and_log_loss_by_hand():
    assert fm.brier([1, -1], [0.8, 0.4]) == pytest.approx((0.2**2 + 0.4**2) / 2)
    assert fm.log_loss_([1, -1], [0.8, 0.4]) == pytest.approx(-(math.log(0.8) + math.log(0.6)) / 2)
    assert fm.logloss is fm.log_loss_


def test_ece_by_hand():
    # two bins [0, .5) and [.5, 1]: bin 0 holds 0.05, 0.15 (acc 1/2, conf 0.1); bin 1 holds 0.85, 0.95 (acc 1, conf 0.9)
    y = [1, -1, 1, 1]
    p = [0.05, 0.15, 0.85, 0.95]
    assert fm.expected_calibration_error(y, p, n_bins=2) == pytest.approx(2 / 4 * 0.4 + 2 / 4 * 0.1)
    # edges: 0.5 opens the upper bin and 1.0 stays in the last one -> one bin, acc 1/2, conf 0.75
    assert fm.expected_calibration_error([1, -1], [0.5, 1.0], n_bins=2) == pytest.approx(0.25)
    # perfectly calibrated bins give 0
    assert fm.expected_calibration_error([1, -1, -1, -1], [0.25] * 4, n_bins=4) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="n_bins"):
        fm.expected_calibration_error(y, p, n_bins=0)


@pytest.mark.parametrize("n_bins", [5, 10, 15])
def test_ece_matches_sklearn_calibration_curve(n_bins):
    y, p = random_task(seed=n_bins)
    y01 = (y == 1).astype(int)
    prob_true, prob_pred = skcal.calibration_curve(y01, p, n_bins=n_bins, strategy="uniform")
    counts, _ = np.histogram(p, bins=np.linspace(0, 1, n_bins + 1))
    weights = counts[counts > 0] / len(p)
    assert fm.expected_calibration_error(y, p, n_bins=n_bins) == pytest.approx(np.sum(weights * np.abs(prob_true - prob_pred)))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_agrees_with_sklearn_on_random_tasks(seed):
    y, p = random_task(seed)
    y01 = (y == 1).astype(int)
    assert fm.auc_roc(y, p) == pytest.approx(skm.roc_auc_score(y01, p))
    assert fm.average_precision(y, p) == pytest.approx(skm.average_precision_score(y01, p))
    precision, recall, _ = skm.precision_recall_curve(y01, p)
    assert fm.auc_pr(y, p) == pytest.approx(skm.auc(recall, precision))
    for t in (0.3, 0.5, 0.7):
        assert fm.f1_at(y, p, threshold=t) == pytest.approx(skm.f1_score(y01, p >= t))
        assert fm.kappa(y, p, threshold=t) == pytest.approx(skm.cohen_kappa_score(y01, p >= t))
    assert fm.log_loss_(y, p) == pytest.approx(skm.log_loss(y01, p))
    assert fm.brier(y, p) == pytest.approx(skm.brier_score_loss(y01, p))
    # f1_max is the best f1_at over every distinct score used as threshold
    assert fm.f1_max(y, p) == pytest.approx(max(skm.f1_score(y01, p >= t) for t in np.unique(p)))


def test_plus_minus_one_and_one_zero_labels_agree():
    y, p = random_task(seed=7, n=60)
    y01 = (y == 1).astype(int)
    for metric in (fm.auc_roc, fm.auc_pr, fm.average_precision, fm.f1_at, fm.f1_max, fm.kappa, fm.log_loss_,
                   fm.brier, fm.expected_calibration_error):
        assert metric(y, p) == pytest.approx(metric(y01, p)), metric.__name__
        assert metric(y.astype(np.float32), p) == pytest.approx(metric(y01, p)), metric.__name__
    # flipping -1 to +1 must matter: the conversion is not a no-op
    assert fm.auc_roc(-y, p) == pytest.approx(1 - fm.auc_roc(y, p))


def test_bad_labels_and_logits_raise():
    with pytest.raises(ValueError, match="mixes"):
        fm.auc_roc([1, 0, -1], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="labels"):
        fm.auc_roc([1, 2, -1], [0.2, 0.3, 0.4])
    with pytest.raises(ValueError, match="probabilities"):
        fm.auc_roc([1, -1, -1], [2.5, -0.3, 0.4])
    with pytest.raises(ValueError, match="lengths"):
        fm.auc_roc([1, -1, -1], [0.5, 0.3])


def test_undefined_single_metrics_are_nan():
    for metric in (fm.auc_roc, fm.auc_pr, fm.average_precision, fm.f1_at, fm.f1_max):
        assert math.isnan(metric([-1, -1, -1], [0.2, 0.6, 0.4])), metric.__name__
    assert math.isnan(fm.kappa([-1, -1], [0.1, 0.2]))  # chance agreement 1
    for metric in (fm.log_loss_, fm.brier, fm.expected_calibration_error, fm.kappa):
        assert math.isnan(metric([], [])), metric.__name__
    # defined with one class present
    assert fm.brier([-1, -1], [0.1, 0.3]) == pytest.approx(0.05)


def test_task_metrics_keys_and_values():
    y, p = random_task(seed=11)
    row = fm.classification_task_metrics(y, p)
    assert list(row) == [*fm.CLASSIFICATION_METRICS, "n", "n_pos", "n_neg", "reason"]
    assert row["reason"] == ""
    assert (row["n"], row["n_pos"], row["n_neg"]) == (len(y), int((y == 1).sum()), int((y == -1).sum()))
    assert row["auc_roc"] == pytest.approx(fm.auc_roc(y, p))
    assert row["f1_at_0.5"] == pytest.approx(fm.f1_at(y, p, 0.5))
    assert row["ece"] == pytest.approx(fm.expected_calibration_error(y, p))
    assert all(np.isfinite(row[k]) for k in fm.CLASSIFICATION_METRICS)


@pytest.mark.parametrize(
    "y, kwargs, reason",
    [
        ([-1, -1, -1], {}, "only 0 positives (< 1 required)"),
        ([1, 1], {}, "only 0 negatives (< 1 required)"),
        ([1, 1, 1, -1, -1, -1, -1], {"min_pos": 5}, "only 3 positives (< 5 required)"),
        ([1, 1, 1, -1, -1, -1, -1], {"min_neg": 5}, "only 4 negatives (< 5 required)"),
        ([], {}, "no labelled values"),
        ([1, 1], {"min_pos": 0, "min_neg": 0}, "only one class present"),
    ],
)
def test_task_metrics_under_quorum_are_nan_with_reason(y, kwargs, reason):
    p = np.linspace(0.1, 0.9, len(y))
    row = fm.classification_task_metrics(y, p, **kwargs)
    assert row["reason"] == reason
    assert all(math.isnan(row[k]) for k in fm.CLASSIFICATION_METRICS)
    assert row["n"] == len(y)


def test_task_metrics_non_finite_scores_give_reason():
    row = fm.classification_task_metrics([1, -1, 1], [0.2, np.nan, 0.9])
    assert row["reason"] == "1 non-finite scores"
    assert math.isnan(row["auc_roc"])


def test_metrics_import_nothing_of_fedchem_nor_torch():
    code = ("import sys, fedchem.metrics; "
            "bad = [m for m in sys.modules if m == 'torch' or (m.startswith('fedchem.') and "
            "not m.startswith('fedchem.metrics'))]; print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("seed", range(8))
def test_numpy_metrics_equal_sklearn_to_1e12_with_ties_and_extremes(seed):
    """fedchem.metrics computes in numpy what scikit-learn computes (so that a train task need not import it):
    tied scores, scores of exactly 0 and 1, tiny and unbalanced tasks give scikit-learn's figures."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 400))
    y = rng.choice([-1, 1], size=n, p=[0.9, 0.1] if seed % 2 else [0.5, 0.5])
    y[:2] = [-1, 1]  # both classes present
    p = np.round(rng.uniform(0, 1, n), int(rng.integers(1, 4)))  # few decimals: many ties
    p[rng.integers(0, n, 3)] = [0.0, 1.0, 0.5]
    y01 = (y == 1).astype(int)
    exact = pytest.approx
    precision, recall, _ = skm.precision_recall_curve(y01, p)
    assert fm.auc_roc(y, p) == exact(skm.roc_auc_score(y01, p), abs=1e-12)
    assert fm.auc_pr(y, p) == exact(skm.auc(recall, precision), abs=1e-12)
    assert fm.average_precision(y, p) == exact(skm.average_precision_score(y01, p), abs=1e-12)
    for t in (0.0, 0.5, 0.95, 1.0):
        assert fm.f1_at(y, p, threshold=t) == exact(skm.f1_score(y01, p >= t, zero_division=0.0), abs=1e-12)
        assert fm.kappa(y, p, threshold=t) == exact(skm.cohen_kappa_score(y01, p >= t, labels=[0, 1]), abs=1e-12,
                                                     nan_ok=True)
    denom = precision + recall
    best = np.max(np.divide(2 * precision * recall, denom, out=np.zeros_like(denom), where=denom > 0))
    assert fm.f1_max(y, p) == exact(best, abs=1e-12)
    assert fm.log_loss_(y, p) == exact(skm.log_loss(y01, p, labels=[0, 1]), abs=1e-12)
    assert fm.brier(y, p) == exact(skm.brier_score_loss(y01, p, labels=[0, 1]), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_one_curve_gives_the_four_functions_values_exactly(seed):
    """The per-task table's curve metrics come from one sort (classification.curve_metrics): the very values of
    auc_roc, auc_pr, average_precision and f1_max, tied scores and one-class tasks included."""
    from fedchem.metrics import classification
    from fedchem.metrics.inputs import classification_inputs

    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 300))
    y = rng.choice([-1, 1], size=n, p=[0.8, 0.2])
    if seed == 4:
        y[:] = 1  # positives only: the areas are NaN, f1_max is not
    if seed == 5:
        y[:] = -1  # no positive: all four NaN
    p = np.round(rng.uniform(0, 1, n), int(rng.integers(1, 4)))
    got = classification.curve_metrics(*classification_inputs(y, p))
    want = {"auc_roc": fm.auc_roc(y, p), "auc_pr": fm.auc_pr(y, p), "avg_precision": fm.average_precision(y, p),
            "f1_max": fm.f1_max(y, p)}
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == want[k] or (math.isnan(got[k]) and math.isnan(want[k])), k
    table = fm.classification_task_metrics(y, p) if 0 < (y == 1).sum() < n else None
    if table is not None:
        assert all(table[k] == want[k] for k in want)


def test_metrics_import_neither_sklearn_nor_scipy_stats():
    code = "import sys, fedchem.metrics; print([m for m in ('sklearn', 'scipy.stats') if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
