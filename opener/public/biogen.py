"""Biogen ADME (Fang et al. 2023, MIT): 6 log-scale endpoints, assay limits written as censored values.

Compounds are split across partners by a hash of the SMILES; every partner has the 6 endpoints. Values stay on
their log10 scale (empty units). An assay limit is detected from the data, not hard-coded: an endpoint's minimum
(maximum) is a limit when at least max(5, 1% of that endpoint's values) measurements sit exactly on it — a
continuous read-out never repeats that often at its extreme. Values on a lower limit become "<", on an upper limit
">" (e.g. 958 of 3,087 HLM values at 0.6757, 346 RLM values at 1.0279, 8 and 6 PPB values at 2.0 = 100% unbound).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from fedchem.opener.public.common import (Assay, PartnerTables, check_partners, fmt_value, new_partners,
                                          parse_float, read_csv_gz, require_nonempty,
                                          structure_bucket)
from fedchem.opener.public.files import public_file

SOURCE = "biogen_adme.csv.gz"
SOURCE_SHA256 = "74588c9fa75ab9113dd86dfa6458664531b9bf257e55101870e5e5e8efc97e83"
MIN_PILE = 5
MIN_PILE_FRACTION = 0.01

# column -> assay; thresholds on the column's log10 scale, direction = which side is the "active" (alert) class.
ENDPOINTS = {
    # clearance, log10(mL/min/kg): high clearance is the alert; 10 and ~32 mL/min/kg (human), 100 and ~316 (rat)
    "LOG HLM_CLint (mL/min/kg)": Assay("HLM_CLINT_LOG", "ADME", thresholds=(1.0, 1.5), direction="high"),
    "LOG RLM_CLint (mL/min/kg)": Assay("RLM_CLINT_LOG", "ADME", thresholds=(2.0, 2.5), direction="high"),
    # MDR1-MDCK efflux ratio, log10(B-A/A-B): ER >= 2 (P-gp substrate) and ER >= 5
    "LOG MDR1-MDCK ER (B-A/A-B)": Assay("MDR1_MDCK_ER_LOG", "ADME", thresholds=(round(math.log10(2), 4),
                                                                                round(math.log10(5), 4)),
                                        direction="high"),
    # solubility at pH 6.8, log10(ug/mL): poorly soluble is the alert, <= 10 and <= ~32 ug/mL
    "LOG SOLUBILITY PH 6.8 (ug/mL)": Assay("SOLUBILITY_PH6_8_LOG", "ADME", thresholds=(1.0, 1.5), direction="low"),
    # plasma protein binding, log10(% unbound): highly bound is the alert, <= 1% and <= 10% unbound
    "LOG PLASMA PROTEIN BINDING (HUMAN) (% unbound)": Assay("PPB_HUMAN_LOG", "ADME", thresholds=(0.0, 1.0),
                                                            direction="low"),
    "LOG PLASMA PROTEIN BINDING (RAT) (% unbound)": Assay("PPB_RAT_LOG", "ADME", thresholds=(0.0, 1.0),
                                                          direction="low"),
}


@dataclass(frozen=True)
class Limits:
    """Detected assay limits of one endpoint (None: no pile-up at that end) and how many values sit on each."""

    lower: float | None
    upper: float | None
    n_lower: int
    n_upper: int


def detect_limits(values: list[float]) -> Limits:
    """An extreme value is an assay limit when >= max(MIN_PILE, MIN_PILE_FRACTION * n) values equal it."""
    if not values:
        return Limits(None, None, 0, 0)
    need = max(MIN_PILE, math.ceil(MIN_PILE_FRACTION * len(values)))
    lo, hi = min(values), max(values)
    n_lo = sum(1 for v in values if v == lo)
    n_hi = sum(1 for v in values if v == hi)
    return Limits(lo if n_lo >= need else None, hi if n_hi >= need and hi != lo else None,
                  n_lo if n_lo >= need else 0, n_hi if n_hi >= need and hi != lo else 0)


def read_biogen(data_dir: Path | None = None) -> tuple[list[tuple[str, str, dict[str, float]]], dict[str, Limits]]:
    """[(compound id, smiles, {column: value})] and the detected limits per column."""
    path = public_file(SOURCE, SOURCE_SHA256, data_dir)
    rows = read_csv_gz(path, ["Internal ID", "SMILES", *ENDPOINTS])
    out = []
    for i, row in enumerate(rows, start=2):
        values = {c: parse_float(row[c], f"{path}, row {i}, column '{c}'") for c in ENDPOINTS if row[c].strip()}
        out.append((row["Internal ID"], row["SMILES"], values))
    limits = {c: detect_limits([v[c] for _, _, v in out if c in v]) for c in ENDPOINTS}
    return out, limits


def split_biogen(n_partners: int, data_dir: Path | None = None) -> tuple[list[PartnerTables], dict[str, Limits]]:
    """Compounds split by a hash of the SMILES; values at a detected limit written as "<" (lower) / ">" (upper)."""
    check_partners(n_partners)
    rows, limits = read_biogen(data_dir)
    partners = new_partners(n_partners)
    for cid, smiles, values in rows:
        p = partners[structure_bucket(smiles, n_partners)]
        for column, value in values.items():
            lim = limits[column]
            qualifier = "<" if value == lim.lower else ">" if value == lim.upper else "="
            p.add(cid, smiles, ENDPOINTS[column], qualifier, fmt_value(value))
    for p in partners:
        p.groups = sorted(p.assays)
    return require_nonempty(partners, "Biogen ADME"), limits
