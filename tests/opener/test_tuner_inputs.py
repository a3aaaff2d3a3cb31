"""MELLODDY-TUNER's own example files prepare unchanged, with TUNER's reading of them.

tests/data/tuner/T0.csv and T1.csv are TUNER's unit_test/input/test_aggr files, byte for byte (PROVENANCE.md
there pins their sha256): T0 without an `auxiliary` column, True/False flags, empty directions, AUX_HTS assays;
T1 without units, with `<<`, `>>`, `~`, an empty qualifier, an empty value and an infinite one. A second,
hand-written T0/T1 pair in TUNER's columns adds rows without expert thresholds (TUNER's automatic thresholds).
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path

import numpy as np
import pytest

from fedchem.opener import thresholds
from fedchem.opener.activities import EQ, GT, LT
from fedchem.opener.config import FingerprintConfig, PreparationConfig
from fedchem.opener.dataset import load_prepared
from fedchem.opener.errors import DataError
from fedchem.opener.prepare import prepare_partner
from fedchem.opener.raw import Assay

TUNER = Path(__file__).parent / "data" / "tuner"
PINNED = {"T0.csv": "defd7beee492fdc19a941eb95c0c1be99962b0997e2bebb714f843f7a8828841",
          "T1.csv": "ca4ac3aa3126a8d7ba462d9252583b093c6c8371a481c1ebcecdab8b0df7c2af"}
FP = FingerprintConfig(size=1024)
LENIENT = dict(min_actives_total=1, min_inactives_total=1, min_actives_per_fold=0, min_inactives_per_fold=0,
               min_regression_values=2, min_regression_values_per_fold=0)
# TUNER's config/example_parameters.json credibility_range (min, max) per assay type
TUNER_RANGES = {"NON-CATALOG-PANEL": (3.0, 10.0), "CATALOG-PANEL": (3.0, 10.0), "OTHER": (3.0, 10.0),
                "AUX_HTS": (-10.0, 10.0), "ADME": (-1e12, 1e12)}


def _rows(name: str) -> list[dict[str, str]]:
    with open(TUNER / name, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _prepare(tmp_path: Path, prep: PreparationConfig, name: str = "out"):
    t0 = [TUNER / "T0.csv", TUNER / "T0_more.csv"]
    t1 = [TUNER / "T1.csv", TUNER / "T1_more.csv"]
    summary = prepare_partner(t0, t1, TUNER / "T2.csv", tmp_path / name, FP, prep, b"tuner-example-secret-0123",
                              "tuner-example", workers=1)
    ds = load_prepared(summary.out_dir)
    return summary, {t["task"]: t for t in ds.tasks}, summary.report_path.read_text()


def test_the_files_are_tuners_own_unchanged():
    for name, digest in PINNED.items():
        assert hashlib.sha256((TUNER / name).read_bytes()).hexdigest() == digest, name
    header = next(csv.reader(open(TUNER / "T0.csv")))
    assert "auxiliary" not in header and header[-1] == "is_binary"
    assert "standard_units" not in next(csv.reader(open(TUNER / "T1.csv")))


def test_tuner_example_prepares_as_tuner_reads_it(tmp_path):
    summary, tasks, report = _prepare(tmp_path, PreparationConfig(**LENIENT))
    t0 = {r["input_assay_id"]: r for r in _rows("T0.csv") + _rows("T0_more.csv")}
    for task in tasks.values():
        kind = t0[task["assay_id"]]["assay_type"]
        aux = kind in ("AUX_HTS", "AUX_PL")  # TUNER's auxiliary types, with no `auxiliary` column anywhere
        assert task["auxiliary"] == ("true" if aux else "false"), task
        assert float(task["weight"]) == (0.1 if aux else 1.0), task
        expected_dir = t0[task["assay_id"]]["direction"] or "high"  # TUNER: anything but "low" is "high"
        if t0[task["assay_id"]]["is_binary"] != "True":
            assert task["direction"] == expected_dir, task
    assert {t["assay_id"] for t in tasks.values() if t["auxiliary"] == "true"} >= {"4", "5", "12"}
    assert tasks["0_class_4"]["direction"] == "high" and tasks["4_class_-6"]["direction"] == "low"
    # the two T1 rows without a value (an empty cell, "inf") are dropped and counted, not an error
    no_value = sum(1 for r in _rows("T1.csv") if r["standard_value"].strip().lower() in ("", "inf"))
    assert no_value == 2
    assert f"| T1 rows without a value (empty, NaN or infinite; dropped, as MELLODDY-TUNER does) | {no_value} |" \
        in report
    assert summary.n_t1_rows == len(_rows("T1.csv")) + len(_rows("T1_more.csv"))
    assert summary.n_dropped_structures == 1  # compound 6: absent from TUNER's T5, unparsable here
    # automatic thresholds where T0 gave none: OTHER by TUNER's candidate list, ADME by median and quartile
    assert "10_class_7" in tasks and "fixed_adaptive" in report
    assert {"11_class_3", "11_class_2"} <= set(tasks) and tasks["11_class_2"]["direction"] == "low"


def test_tuner_credibility_range_drops_what_tuner_drops(tmp_path):
    prep = PreparationConfig(**LENIENT, credibility_range=TUNER_RANGES)
    _, _, report = _prepare(tmp_path, prep)
    types = {r["input_assay_id"]: r["assay_type"] for r in _rows("T0.csv") + _rows("T0_more.csv")}
    outside = 0
    for r in _rows("T1.csv") + _rows("T1_more.csv"):
        v = float(r["standard_value"]) if r["standard_value"] not in ("", "inf") else None
        rng = TUNER_RANGES.get(types[r["input_assay_id"]])
        if v is not None and rng and types[r["input_assay_id"]] != "AUX_PL" and not rng[0] <= v <= rng[1]:
            outside += 1
    assert outside == 6
    assert f"| T1 rows outside their assay type's credibility range (dropped) | {outside} |" in report


def test_an_assay_repeated_across_t0_files_is_an_error(tmp_path):
    with pytest.raises(DataError) as info:
        prepare_partner([TUNER / "T0.csv", TUNER / "T0.csv"], TUNER / "T1.csv", TUNER / "T2.csv", tmp_path / "o",
                        FP, PreparationConfig(**LENIENT), b"tuner-example-secret-0123", "x", workers=1)
    assert "listed twice" in info.value.message() and "across all T0 files" in info.value.message()
    assert not (tmp_path / "o").exists()


def _assay(kind: str, direction: str = "high") -> Assay:
    return Assay("A", kind, True, False, (), direction, False, 2)


def test_dose_response_rule_fixed_adaptive_then_median():
    values = np.array([7.5, 6.1, 8.2, 5.0, 7.1, 6.6, 5.5, 4.9, 6.0, 7.0, 5.2, 6.3])
    codes = np.full(len(values), EQ)
    # 8.0: 1 of 12 active (< 20%); 7.0: 4 of 12 (33%) with 4 actives and 8 inactives
    assert thresholds.automatic(_assay("OTHER"), codes, values, 1, 1) == [(7.0, "fixed_adaptive")]
    # with a quorum of 5 actives and 5 inactives no candidate qualifies: the median, 6.2
    (t, how), = thresholds.automatic(_assay("NON-CATALOG-PANEL"), codes, values, 5, 5)
    assert how == "median" and t == pytest.approx(6.2)
    # the median moves censored values by log10(2) first: "<" down, ">" up
    c = np.array([LT, GT, EQ])
    (t, how), = thresholds.automatic(_assay("OTHER"), c, np.array([5.0, 5.0, 5.0]), 10, 10)
    assert how == "median" and t == pytest.approx(5.0)
    (t, _), = thresholds.automatic(_assay("OTHER"), np.array([LT, LT, EQ]), np.array([5.0, 5.0, 5.0]), 10, 10)
    assert t == pytest.approx(5.0 - np.log10(2.0))


def test_adme_and_aux_hts_rules_and_no_rule_for_other_types():
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 0.5])
    c = np.array([EQ] * 5 + [LT])
    assert thresholds.automatic(_assay("ADME", "high"), c, v, 1, 1) == [(3.0, "median"), (4.0, "quartile")]
    assert thresholds.automatic(_assay("ADME", "low"), c, v, 1, 1) == [(3.0, "median"), (2.0, "quartile")]
    assert thresholds.automatic(_assay("ADME"), np.array([EQ, LT]), np.array([1.0, 2.0]), 1, 1) == []
    assert thresholds.automatic(_assay("AUX_HTS"), c, v, 1, 1) == [(3.0, "fixed")]
    assert thresholds.automatic(_assay("AUX_HTS", "low"), c, v, 1, 1) == [(-3.0, "fixed")]
    assert thresholds.automatic(_assay("CATALOG-PANEL"), c, v, 1, 1) == []
    with_expert = Assay("A", "OTHER", True, False, (6.0,), "high", False, 2)
    assert thresholds.automatic(with_expert, c, v, 1, 1) == []
