"""Automatic classification thresholds for a T0 row without expert thresholds, by MELLODDY-TUNER's rules.

Read from melloddy_tuner/scripts/apply_thresholding.py (github.com/melloddy/MELLODDY-TUNER, commit 5b19df6, year 3:
`get_thresholds_dose_response`, `get_thresholds_ADME`, `calculate_single_assay`), applied to the aggregated
(structure, assay) values, as TUNER applies them to its aggregated T4r (after its credibility-range filter, which
`activities.read_measurements` applies when the consortium sets `credibility_range`):
- OTHER, NON-CATALOG-PANEL (and PANEL): the first of the candidate thresholds 8.0, 7.0, 6.0, 5.0, 4.7, 4.4 at which,
  labelling with direction "high", at least 20% of the labels are active and there are at least the quorum's
  actives and inactives (TUNER reads its classification quorum for OTHER; we use the consortium's
  `min_actives_total` / `min_inactives_total`): "fixed_adaptive". If none qualifies: the median of all values,
  with "<" values moved down and ">" values moved up by log10(2) first ("median").
- ADME: the median of the exact ("=") values, plus the upper (direction high) or lower (low) quartile when it
  differs from the median; nothing with fewer than two exact values.
- AUX_HTS: TUNER's fixed global threshold (`global_thresholds.AUX_HTS` = 3.0 in its example parameters), negated
  for direction "low" (`get_class_label_HTS`).
- any other type (CATALOG-PANEL needs TUNER's catalog file; AUX_PL is binary): no automatic threshold.
Not reproduced: TUNER's auxiliary "sandwich" thresholds at +-0.5 around the chosen ones, and its |value| rule for an
AUX_HTS row with an empty direction (fedchem reads an empty direction as "high" for every type).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from fedchem.opener.activities import EQ, Aggregated
from fedchem.opener.raw import Assay, fmt_threshold
from fedchem.opener.tasks import classify

CANDIDATES = (8.0, 7.0, 6.0, 5.0, 4.7, 4.4)  # TUNER's l_trial_threshold
MIN_ACTIVE_FRACTION = 0.2
CENSOR_SHIFT = math.log10(2.0)  # TUNER's convert_qualified_values
AUX_HTS_THRESHOLD = 3.0  # TUNER's example_parameters.json: global_thresholds.AUX_HTS
DOSE_RESPONSE_TYPES = ("OTHER", "NON-CATALOG-PANEL", "PANEL")


def dose_response(codes: np.ndarray, values: np.ndarray, min_actives: int, min_inactives: int
                  ) -> tuple[float, str] | None:
    """TUNER's fixed-adaptive threshold, else the censor-shifted median; None without values."""
    if len(values) == 0:
        return None
    for t in CANDIDATES:
        lab = classify(codes, values, t, "high")
        n_act, n_inact = int((lab > 0).sum()), int((lab < 0).sum())
        if n_act + n_inact and n_act / (n_act + n_inact) >= MIN_ACTIVE_FRACTION and n_act >= min_actives \
                and n_inact >= min_inactives:
            return t, "fixed_adaptive"
    shifted = values - CENSOR_SHIFT * (codes < 0) + CENSOR_SHIFT * (codes > 0)
    return float(np.quantile(shifted, 0.5, method="linear")), "median"


def adme(codes: np.ndarray, values: np.ndarray, direction: str) -> list[tuple[float, str]]:
    """TUNER's ADME thresholds: median of the exact values, plus the quartile on the active side if distinct."""
    exact = values[codes == EQ]
    if exact.size <= 1:
        return []
    median = float(np.quantile(exact, 0.5, method="linear"))
    quartile = float(np.quantile(exact, 0.75 if direction == "high" else 0.25, method="linear"))
    return [(median, "median")] + ([(quartile, "quartile")] if quartile != median else [])


def automatic(assay: Assay, codes: np.ndarray, values: np.ndarray, min_actives: int, min_inactives: int
              ) -> list[tuple[float, str]]:
    """(threshold, method) pairs for one assay without expert thresholds (empty for a binary assay)."""
    if assay.is_binary or assay.thresholds:
        return []
    kind = assay.assay_type.upper()
    if kind in DOSE_RESPONSE_TYPES:
        found = dose_response(codes, values, min_actives, min_inactives)
        return [found] if found else []
    if kind == "ADME":
        return adme(codes, values, assay.direction)
    if kind == "AUX_HTS":
        return [(-AUX_HTS_THRESHOLD if assay.direction == "low" else AUX_HTS_THRESHOLD, "fixed")]
    return []


def resolve(assays: list[Assay], agg: Aggregated, min_actives: int, min_inactives: int
            ) -> tuple[list[Assay], list[str]]:
    """Assays with automatic thresholds filled in where T0 gave none, and one report note per assay changed."""
    out, notes = [], []
    for idx, assay in enumerate(assays):
        sel = agg.assays == idx
        found = automatic(assay, agg.codes[sel], agg.values[sel], min_actives, min_inactives)
        if found:
            assay = dataclasses.replace(assay, thresholds=tuple(t for t, _ in found))
            what = ", ".join(f"{fmt_threshold(t)} ({m})" for t, m in found)
            notes.append(f"assay {assay.assay_id} ({assay.assay_type}) had no expert threshold: automatic "
                         f"threshold(s) {what}, by MELLODDY-TUNER's rules")
        out.append(assay)
    return out, notes
