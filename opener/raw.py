"""Read and check a partner's raw MELLODDY-TUNER files (T0 assays, T1 activities, T2 structures).

Only structure is checked here: files and columns exist, ids are unique, every T1 row points at a known assay and
compound. Values, qualifiers and units are checked in `activities`. Errors name the file, the line (line 1 is the
header) and the column, never a SMILES, an id or a value. Files may be plain `.csv` or gzipped `.csv.gz`.

MELLODDY-TUNER's own files are read unchanged (its README, "T0 weight table" / "T1 activity file", and
melloddy_tuner/scripts/apply_thresholding.py at github.com/melloddy/MELLODDY-TUNER commit 5b19df6, year 3):
T0 without an `auxiliary` column (assay types AUX_HTS and AUX_PL are auxiliary, as TUNER's T3c `is_auxiliary`),
True/False flags, an empty `direction` read as "high" (TUNER: `if direction != "low": direction = "high"`), extra
columns (catalog_assay_id, parent_assay_id, ...) ignored, T1 without `standard_units`, and several T0 and T1
files per partner, concatenated ("NEW in YEAR 3": no identifier may repeat across files).
"""

from __future__ import annotations

import csv
import gzip
import math
from dataclasses import dataclass, field
from collections.abc import Sequence
from pathlib import Path

from fedchem.opener.errors import DataError

T0_REQUIRED = ["input_assay_id", "assay_type", "use_in_regression", "is_binary", "expert_threshold_1", "direction"]
T0_THRESHOLDS = [f"expert_threshold_{i}" for i in range(1, 6)]  # _2.._5 may be absent
T1_REQUIRED = ["input_compound_id", "input_assay_id", "standard_qualifier", "standard_value"]
T2_REQUIRED = ["input_compound_id", "smiles"]
DIRECTIONS = ("high", "low")
FLOAT32_MAX = 3.4028234663852886e38  # labels and values are stored as float32: thresholds must fit it too
AUXILIARY_TYPES = ("AUX_HTS", "AUX_PL")  # TUNER's auxiliary assay types: trained and weighted, never headlined
_TRUE = {"true", "1", "yes", "y", "t"}
_FALSE = {"false", "0", "no", "n", "f", ""}


@dataclass(frozen=True)
class Assay:
    """One T0 row. Thresholds are on the log scale values have after unit conversion (pIC50-like)."""

    assay_id: str
    assay_type: str
    use_in_regression: bool
    is_binary: bool
    thresholds: tuple[float, ...]
    direction: str  # "high": value >= threshold is active; "low": value <= threshold is active
    auxiliary: bool
    line: int
    source: str = ""  # the T0 file the row came from (several T0 files may be given)


@dataclass
class Structures:
    """T2: one row per input compound (identical repeated rows are collapsed)."""

    ids: list[str]
    smiles: list[str]
    lines: list[int]
    n_repeated_rows: int = 0


@dataclass
class ActivityRows:
    """T1 as read: text fields, one entry per row, plus the row's line number in the file."""

    compound_ids: list[str]
    assay_ids: list[str]
    qualifiers: list[str]
    values: list[str]
    units: list[str]
    lines: list[int]
    files: list[str] = field(default_factory=list)  # the T1 file(s) read, in order
    file_of: list[int] = field(default_factory=list)  # per row: index into `files`

    def __len__(self) -> int:
        return len(self.lines)

    def where(self, i: int, default: str = "T1") -> str:
        """'<file>, line <n>' of row i (the file it came from when several T1 files were read)."""
        path = self.files[self.file_of[i]] if self.file_of else default
        return f"{path}, line {self.lines[i]}"


def short(token: str, limit: int = 12) -> str:
    """Quote a short token (qualifier, unit, flag) for an error message; longer text, or text with digits (it
    could be a value or an id in the wrong column), is described, not echoed."""
    token = token.strip()
    if len(token) <= limit and not any(ch.isdigit() for ch in token):
        return repr(token)
    return f"a {len(token)}-character text (not shown: it may be a value or an id)"


def _rows(path: Path, what: str, required: list[str], optional: tuple[str, ...] = ()):
    """Yield (line, get) per CSV row after checking that the file exists and has the required columns;
    get(column) is the stripped field ('' for an absent optional column)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"the {what} file does not exist", where=str(path),
                        fix=f"check the `data` section of the partner config ({what})")
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise DataError(f"the {what} file is empty", where=str(path),
                                fix=f"export the {what} with a header row: {', '.join(required)}")
            header = [h.strip() for h in header]
            missing = [c for c in required if c not in header]
            if missing:
                raise DataError(f"the {what} file lacks column(s) {', '.join(missing)}", where=str(path),
                                fix=f"add the column(s); the {what} needs {', '.join(required)}")
            dup = sorted({h for h in header if h and header.count(h) > 1})
            if dup:
                raise DataError(f"the {what} file repeats column(s) {', '.join(dup)}", where=str(path),
                                fix="keep one column of each name")
            n = len(header)
            index = {c: header.index(c) for c in (*required, *optional) if c in header}
            for row in reader:
                if len(row) != n:
                    if not row or all(not c.strip() for c in row):
                        continue
                    raise DataError(f"row has {len(row)} fields, the header has {n}",
                                    where=f"{path}, line {reader.line_num}",
                                    fix="quote fields that contain commas; check the row")
                yield reader.line_num, (lambda c, row=row: row[index[c]].strip() if c in index else "")
    except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"cannot read the {what} file ({type(exc).__name__})", where=str(path),
                        fix="export it as UTF-8 CSV (optionally gzipped as .csv.gz)") from None


def fmt_threshold(t: float) -> str:
    """A threshold as short stable text (10 significant digits), used in task names and tasks.csv."""
    return format(float(t), ".10g")


def _flag(text: str, column: str, where: str) -> bool:
    t = text.strip().lower()
    if t in _TRUE:
        return True
    if t in _FALSE:
        return False
    raise DataError(f"column {column} must be true or false, got {short(text)}", where=where,
                    fix="use true/false (or 1/0)")


def _require_id(text: str, column: str, where: str) -> str:
    if not text:
        raise DataError(f"empty {column}", where=where, fix=f"give every row a {column}")
    return text


def paths_of(paths: Path | Sequence[Path]) -> list[Path]:
    """One path or several as a list (a partner may split T0 and T1 over several files, as TUNER allows)."""
    if isinstance(paths, (str, Path)):
        return [Path(paths)]
    return [Path(p) for p in paths]


def read_t0(paths: Path | Sequence[Path]) -> dict[str, Assay]:
    """T0 assay metadata, keyed by input_assay_id in file order (files in the order given). Flags take true/false
    (or 1/0, yes/no; empty is false). A binary assay (is_binary) is one task, 1 = active (threshold 0.5, direction
    high), never regression; its own threshold and direction columns are ignored. Repeated thresholds of one assay
    make one task. An assay is auxiliary when its `auxiliary` flag is set or its type is AUX_HTS / AUX_PL. A row
    without thresholds gets automatic ones later (`fedchem.opener.thresholds`)."""
    assays: dict[str, Assay] = {}
    first: dict[str, str] = {}
    for path in paths_of(paths):
        _read_t0_file(path, assays, first)
    if not assays:
        raise DataError("the T0 assay table has no rows", where=", ".join(map(str, paths_of(paths))),
                        fix="list the partner's assays")
    return assays


def _read_t0_file(path: Path, assays: dict[str, Assay], first: dict[str, str]) -> None:
    for line, r in _rows(path, "T0 assay table", T0_REQUIRED, (*T0_THRESHOLDS, "auxiliary")):
        where = f"{path}, line {line}"
        aid = _require_id(r("input_assay_id"), "input_assay_id", where)
        if aid in assays:
            raise DataError(f"assay listed twice (first in {first[aid]})", where=where,
                            fix="keep one T0 row per input_assay_id (across all T0 files)")
        is_binary = _flag(r("is_binary"), "is_binary", where)
        use_regr = _flag(r("use_in_regression"), "use_in_regression", where)
        assay_type = r("assay_type") or "OTHER"
        aux = _flag(r("auxiliary"), "auxiliary", where) or assay_type.upper() in AUXILIARY_TYPES
        thresholds: list[float] = []
        for col in T0_THRESHOLDS:
            text = r(col)
            if not text:
                continue
            try:
                t = float(text)
            except ValueError:
                t = math.nan
            if not math.isfinite(t) or abs(t) > FLOAT32_MAX:
                raise DataError(f"column {col} is not a finite number that fits a float32", where=where,
                                fix="give thresholds as numbers on the log scale (e.g. 6.5), or leave empty")
            if fmt_threshold(t) not in {fmt_threshold(x) for x in thresholds}:  # repeats add no task
                thresholds.append(t)
        direction = r("direction").lower()
        if is_binary:
            direction, thresholds = "high", [0.5]
        elif not direction:
            direction = "high"  # as TUNER: anything but "low" is "high"; an empty cell is common in its files
        elif direction not in DIRECTIONS:
            raise DataError(f"column direction must be 'high', 'low' or empty, got {short(r('direction'))}",
                            where=where, fix="'high' (or empty): value >= threshold is active; 'low': value <= "
                                             "threshold")
        assays[aid] = Assay(aid, assay_type, use_regr and not is_binary, is_binary, tuple(thresholds), direction,
                            aux, line, str(path))
        first[aid] = f"{path}, line {line}"


def read_t2(path: Path) -> Structures:
    """T2 structures. The same id twice with different SMILES is an error; identical repeats are collapsed."""
    ids: list[str] = []
    smiles: list[str] = []
    lines: list[int] = []
    seen: dict[str, int] = {}
    repeated = 0
    for line, r in _rows(path, "T2 structure table", T2_REQUIRED):
        where = f"{path}, line {line}"
        cid = _require_id(r("input_compound_id"), "input_compound_id", where)
        smi = r("smiles")
        if cid in seen:
            i = seen[cid]
            if smiles[i] != smi:
                raise DataError(f"compound id listed twice with different SMILES (first on line {lines[i]})",
                                where=where, fix="keep one T2 row per input_compound_id")
            repeated += 1
            continue
        seen[cid] = len(ids)
        ids.append(cid)
        smiles.append(smi)
        lines.append(line)
    if not ids:
        raise DataError("the T2 structure table has no rows", where=str(path), fix="list the partner's structures")
    return Structures(ids, smiles, lines, repeated)


def read_t1(paths: Path | Sequence[Path], assays: dict[str, Assay], compound_ids: set[str]) -> ActivityRows:
    """T1 activities as text (files concatenated in the order given); every row must name an assay of T0 and a
    compound of T2."""
    out = ActivityRows([], [], [], [], [], [])
    for k, path in enumerate(paths_of(paths)):
        out.files.append(str(path))
        _read_t1_file(path, k, assays, compound_ids, out)
    if not out.lines:
        raise DataError("the T1 activity table has no rows", where=", ".join(out.files),
                        fix="export the partner's activities")
    return out


def _read_t1_file(path: Path, k: int, assays: dict[str, Assay], compound_ids: set[str], out: ActivityRows) -> None:
    for line, r in _rows(path, "T1 activity table", T1_REQUIRED, ("standard_units",)):
        cid, aid = r("input_compound_id"), r("input_assay_id")
        if aid not in assays:
            where = f"{path}, line {line}"
            _require_id(aid, "input_assay_id", where)
            raise DataError("activity for an assay that is not in the T0 assay table", where=where,
                            fix="add the assay to T0 or remove its rows from T1")
        if cid not in compound_ids:
            where = f"{path}, line {line}"
            _require_id(cid, "input_compound_id", where)
            raise DataError("activity for a compound that is not in the T2 structure table", where=where,
                            fix="add the compound to T2 or remove its rows from T1")
        out.compound_ids.append(cid)
        out.assay_ids.append(aid)
        out.qualifiers.append(r("standard_qualifier"))
        out.values.append(r("standard_value"))
        out.units.append(r("standard_units"))
        out.lines.append(line)
        out.file_of.append(k)
