"""Helpers for the prepare tests: write T0/T1/T2 CSVs, and cut a real partner out of ChEMBL hERG."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

T0_HEADER = ["input_assay_id", "assay_type", "use_in_regression", "is_binary", "expert_threshold_1",
             "expert_threshold_2", "expert_threshold_3", "expert_threshold_4", "expert_threshold_5", "direction",
             "auxiliary"]
T1_HEADER = ["input_compound_id", "input_assay_id", "standard_qualifier", "standard_value", "standard_units"]
T2_HEADER = ["input_compound_id", "smiles"]


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    return path


def t0_row(assay: str, thresholds=(), regression=True, binary=False, direction="high", auxiliary=False,
           assay_type="OTHER") -> list:
    thr = [str(t) for t in thresholds] + [""] * (5 - len(thresholds))
    b = lambda x: "true" if x else "false"  # noqa: E731
    return [assay, assay_type, b(regression), b(binary), *thr, direction, b(auxiliary)]


def write_partner(folder: Path, t0: list[list], t1: list[list], t2: list[list]) -> tuple[Path, Path, Path]:
    return (write_csv(folder / "T0.csv", T0_HEADER, t0), write_csv(folder / "T1.csv", T1_HEADER, t1),
            write_csv(folder / "T2.csv", T2_HEADER, t2))


def herg_rows(public_data_dir: Path, n: int, skip: int = 0) -> list[dict[str, str]]:
    """The first n rows (after `skip`) of the real ChEMBL hERG IC50 table."""
    with gzip.open(public_data_dir / "chembl_herg.csv.gz", "rt", encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return rows[skip:skip + n]


def herg_partner(folder: Path, public_data_dir: Path, n: int = 700, skip: int = 0, thresholds=(5, 6),
                 aux_every: int = 0) -> tuple[Path, Path, Path]:
    """A real partner: hERG IC50s in nM with their real qualifiers, one assay (plus an auxiliary copy of every
    aux_every-th measurement, if asked)."""
    t2: dict[str, str] = {}
    t1 = []
    for i, r in enumerate(herg_rows(public_data_dir, n, skip)):
        t2.setdefault(r["mol_chembl_id"], r["canonical_smiles"])
        t1.append([r["mol_chembl_id"], "HERG", r["standard_relation"], r["standard_value"], r["standard_units"]])
        if aux_every and i % aux_every == 0:
            t1.append([r["mol_chembl_id"], "HERG_AUX", r["standard_relation"], r["standard_value"], "nM"])
    t0 = [t0_row("HERG", thresholds, assay_type="PANEL")]
    if aux_every:
        t0.append(t0_row("HERG_AUX", (5,), regression=False, auxiliary=True, assay_type="AUX_HTS"))
    return write_partner(folder, t0, t1, [[k, v] for k, v in t2.items()])
