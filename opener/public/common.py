"""Shared pieces of the public-data readers: the in-memory T0/T1/T2 tables of one partner and their CSV writer.

Each `public_<set>` module turns one real public set into a list of PartnerTables (MELLODDY-TUNER layout,
DESIGN.md section 3); `fedchem.orchestrator.demo.public_data` writes them to disk with the consortium configs.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path

from fedchem.opener.fileio import sha256_file
from fedchem.opener.errors import DataError

T0_COLUMNS = ["input_assay_id", "assay_type", "use_in_regression", "is_binary", "expert_threshold_1",
              "expert_threshold_2", "expert_threshold_3", "expert_threshold_4", "expert_threshold_5",
              "direction", "auxiliary"]
T1_COLUMNS = ["input_compound_id", "input_assay_id", "standard_qualifier", "standard_value", "standard_units"]
T2_COLUMNS = ["input_compound_id", "smiles"]
QUALIFIERS = ("<", "<=", "=", ">=", ">", "~")


@dataclass(frozen=True)
class Assay:
    """One T0 row. Thresholds are on the log scale the values have after unit conversion (e.g. pIC50)."""

    assay_id: str
    assay_type: str = "OTHER"
    use_in_regression: bool = True
    is_binary: bool = False
    thresholds: tuple[float, ...] = ()
    direction: str = "high"  # "high": value >= threshold is active; "low": value <= threshold is active
    auxiliary: bool = False

    def row(self) -> list[str]:
        thr = [fmt_value(t) for t in self.thresholds] + [""] * (5 - len(self.thresholds))
        return [self.assay_id, self.assay_type, _bool(self.use_in_regression), _bool(self.is_binary), *thr,
                self.direction, _bool(self.auxiliary)]


@dataclass
class PartnerTables:
    """One partner's T0/T1/T2 in memory. `groups` names what the partner holds (targets, providers, technologies)."""

    name: str
    groups: list[str] = field(default_factory=list)
    assays: dict[str, Assay] = field(default_factory=dict)
    compounds: dict[str, str] = field(default_factory=dict)  # input_compound_id -> smiles
    rows: list[tuple[str, str, str, str, str]] = field(default_factory=list)  # T1 rows, T1_COLUMNS order

    def add(self, compound_id: str, smiles: str, assay: Assay, qualifier: str, value: str, units: str = "") -> None:
        """Add one measurement (and its compound and assay if new)."""
        if qualifier not in QUALIFIERS:
            raise DataError(f"unknown qualifier in a public source ({qualifier!r})", where=assay.assay_id)
        self.assays.setdefault(assay.assay_id, assay)
        self.compounds.setdefault(compound_id, smiles)
        self.rows.append((compound_id, assay.assay_id, qualifier, value, units))

    @property
    def n_compounds(self) -> int:
        return len(self.compounds)

    @property
    def n_assays(self) -> int:
        return len(self.assays)

    @property
    def n_measurements(self) -> int:
        return len(self.rows)

    def qualifier_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for row in self.rows:
            counts[row[2]] = counts.get(row[2], 0) + 1
        return dict(sorted(counts.items()))

    def write(self, folder: Path) -> None:
        """Write T0.csv, T1.csv, T2.csv into `folder`, sorted so that a re-run is byte-identical."""
        folder.mkdir(parents=True, exist_ok=True)
        _write_csv(folder / "T0.csv", T0_COLUMNS, [self.assays[a].row() for a in sorted(self.assays)])
        _write_csv(folder / "T1.csv", T1_COLUMNS, sorted(self.rows))
        _write_csv(folder / "T2.csv", T2_COLUMNS, sorted(self.compounds.items()))


def _bool(flag: bool) -> str:
    return "true" if flag else "false"


def _write_csv(path: Path, header: list[str], rows) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def fmt_value(value: float) -> str:
    """A float as stable text: 15 significant digits (exact for any source decimal of that length), no '.0'."""
    return format(float(value), ".15g")


def structure_bucket(smiles: str, n: int) -> int:
    """Partner index for a structure: sha256 of the SMILES text modulo n (same structure, same partner, every run)."""
    return int.from_bytes(hashlib.sha256(smiles.encode("utf-8")).digest()[:8], "big") % n


def structure_rank(smiles: str) -> bytes:
    """A sort key spreading structures uniformly (used to pick a stable, unbiased subset)."""
    return hashlib.sha256(b"subset:" + smiles.encode("utf-8")).digest()


def read_csv_gz(path: Path, required: list[str]) -> list[dict[str, str]]:
    """All rows of a gzipped CSV as dicts, after checking the columns the reader relies on."""
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            reader = csv.DictReader(fh)
            missing = [c for c in required if c not in (reader.fieldnames or [])]
            if missing:
                raise DataError(f"column(s) {', '.join(missing)} missing", where=str(path),
                                fix="reinstall fedchem or restore the original file (see SHA256SUMS beside it)")
            return list(reader)
    except (OSError, EOFError, csv.Error, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read the file ({type(exc).__name__})", where=str(path),
                        fix="reinstall fedchem or restore the original file (see SHA256SUMS beside it)") from None


def parse_float(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise DataError("a value is not a number", where=where) from None
    if not math.isfinite(value):
        raise DataError("a value is not finite", where=where)
    return value


def check_partners(n_partners: int, at_most: int | None = None, what: str = "") -> None:
    if n_partners < 1:
        raise DataError(f"the number of partners must be at least 1 (got {n_partners})", where="--partners")
    if at_most is not None and n_partners > at_most:
        raise DataError(f"this set can be split into at most {at_most} partners ({what})", where="--partners",
                        fix=f"use --partners {at_most} or fewer")


def new_partners(n_partners: int) -> list[PartnerTables]:
    return [PartnerTables(name=f"partner-{i + 1}") for i in range(n_partners)]


def deal_groups(sizes: dict[str, int], n_partners: int) -> list[list[str]]:
    """Group names dealt to partners, largest first, each to the partner holding the fewest measurements so far.

    Deterministic (ties broken by name, then by partner index), so a re-run gives the same split.
    """
    loads = [0] * n_partners
    out: list[list[str]] = [[] for _ in range(n_partners)]
    for name in sorted(sizes, key=lambda g: (-sizes[g], g)):
        i = min(range(n_partners), key=lambda k: (loads[k], k))
        out[i].append(name)
        loads[i] += sizes[name]
    return [sorted(g) for g in out]


def require_nonempty(partners: list[PartnerTables], what: str) -> list[PartnerTables]:
    """Refuse a split that leaves a partner without data (e.g. more partners than targets)."""
    for p in partners:
        if not p.rows:
            raise DataError(f"the split leaves {p.name} without any measurement ({what})", where="--partners",
                            fix="use fewer partners")
    return partners
