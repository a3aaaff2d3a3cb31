"""Turn T1 activity rows into one log-scale value and qualifier per (structure, assay).

Qualifiers: `<`, `<=`, `=`, `>=`, `>`; `~` and an empty qualifier count as `=` (an exact value is what most exports
leave unmarked); `<<` and `>>` count as `<` and `>` (MELLODDY-TUNER's `map_qualifiers`). Units: empty, `log`, `p`
(any case) mean the value is already on a log scale (pIC50-like); `pM`, `nM`, `uM`/`µM`, `mM`, `M` are
concentrations, converted to p-scale = -log10(molar) with the qualifier flipped (an IC50 "< 10 nM" is a pIC50 ">
8"). Anything else, a non-numeric value, a value that does not fit the float32 the prepared matrices store (|value|
> 3.4e38 after conversion), or a concentration <= 0 stops the run with an error naming the file and line. An empty,
NaN or infinite value is no measurement: the row is dropped and counted, as MELLODDY-TUNER drops it
(aggregate_values.filter_credibility_range removes NaN values; an infinite one is outside any credibility range).
With a `credibility_range` for an assay type in the preparation settings, log-scale values outside [min, max] are
dropped and counted too (TUNER's rule, same file).

Replicates of one (structure, assay) pair are aggregated so that no information is invented:
- if any replicate is exact (`=`), the pair is the mean of the exact values (censored replicates are ignored);
- if all are upper bounds (`<`, `<=`), the pair is the tightest bound (the smallest; `<` wins a tie);
- if all are lower bounds (`>`, `>=`), the pair is the tightest bound (the largest; `>` wins a tie);
- upper and lower bounds without any exact value conflict: the pair is dropped (and counted in the report).
Binary assays (T0 is_binary) take values 0/1 with `=` only; replicates are averaged (the task's 0.5 threshold then
makes a tie active).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fedchem.opener.errors import DataError
from fedchem.opener.raw import ActivityRows, Assay, short

# qualifier codes: the sign is the censor sign (-1 "<": true value below; +1 ">": true value above)
LT, LE, EQ, GE, GT = -2, -1, 0, 1, 2
QUALIFIER_CODES = {"<": LT, "<=": LE, "<<": LT, "=": EQ, "~": EQ, "": EQ, ">=": GE, ">": GT, ">>": GT}
_NO_VALUE = {"", "nan", "inf", "+inf", "-inf", "infinity", "+infinity", "-infinity", "na", "n/a", "null", "none"}
_FLIP = {LT: GT, LE: GE, EQ: EQ, GE: LE, GT: LT}
LOG_UNITS = {"", "log", "p"}
# concentration units, spelled exactly (mM and M differ only by case): molar = value * 10^-exponent
CONCENTRATION_EXPONENT = {"pM": 12, "nM": 9, "uM": 6, "\u00b5M": 6, "\u03bcM": 6, "mM": 3, "M": 0}
STORED_MAX = float(np.finfo(np.float32).max)  # values are stored as float32 in Y_regr (and thresholds compared)


@dataclass
class Measurements:
    """One entry per T1 row: compound (T2 index, later structure row), assay index, qualifier code, log value."""

    rows: np.ndarray
    assays: np.ndarray
    codes: np.ndarray
    values: np.ndarray
    n_no_value: int = 0  # T1 rows without a usable value (empty, NaN, infinite): dropped
    n_outside_range: int = 0  # T1 rows outside their assay type's credibility range: dropped


@dataclass
class Aggregated:
    """One entry per (structure, assay) pair, sorted by assay then structure row."""

    rows: np.ndarray
    assays: np.ndarray
    codes: np.ndarray
    values: np.ndarray
    n_measurements: int = 0
    n_replicated_pairs: int = 0
    n_censored_ignored: int = 0  # pairs where censored replicates were ignored beside exact ones
    n_conflicting_dropped: int = 0  # pairs with only conflicting bounds


def parse_qualifier(text: str, where: str) -> int:
    """Qualifier text -> code; unknown qualifiers are an error."""
    code = QUALIFIER_CODES.get(text.strip())
    if code is None:
        raise DataError(f"unknown qualifier {short(text)} in column standard_qualifier", where=where,
                        fix="use one of <, <=, <<, =, >=, >, >>, ~ (empty means =)")
    return code


def unit_exponent(text: str, where: str) -> int | None:
    """None for a value already on a log scale, else e such that molar = value * 10^-e."""
    u = text.strip()
    if u.lower() in LOG_UNITS:
        return None
    if u in CONCENTRATION_EXPONENT:
        return CONCENTRATION_EXPONENT[u]
    raise DataError(f"unknown unit {short(text)} in column standard_units", where=where,
                    fix="use a log-scale value with an empty unit (or 'log'/'p'), or one of pM, nM, uM, µM, mM, M")


def parse_value(text: str, where: str) -> float:
    """A finite float, or an error naming the place (the value itself is not echoed)."""
    try:
        v = float(text)
    except ValueError:
        v = math.nan
    if not math.isfinite(v):
        raise DataError("standard_value is empty, not a number, NaN or infinite", where=where,
                        fix="give every activity a finite number, or remove the row")
    return v


def to_log_scale(value: float, code: int, exponent: int | None, where: str) -> tuple[float, int]:
    """Convert a concentration to p-scale (flipping the qualifier); log-scale values pass through."""
    if exponent is None:
        return value, code
    if value <= 0:
        raise DataError("a concentration must be > 0 to be put on a log scale", where=where,
                        fix="fix or remove the row (or give log-scale values with an empty unit)")
    return exponent - math.log10(value), _FLIP[code]


def read_measurements(t1: ActivityRows, t1_path: str, assays: dict[str, Assay], compound_index: dict[str, int],
                      credibility_range: dict[str, tuple[float, float]] | None = None) -> Measurements:
    """Check and convert every T1 row; `rows` holds each row's T2 index (compound_index maps id -> T2 index).
    Rows without a value, or outside their assay type's credibility range (log scale), are dropped and counted."""
    assay_index = {a: i for i, a in enumerate(assays)}
    ranges = {k.upper(): v for k, v in (credibility_range or {}).items()}
    rows, idx, codes, values = [], [], [], []
    no_value = outside = 0
    qual_seen: dict[str, int] = {}  # few distinct qualifier / unit texts: check each once
    unit_seen: dict[str, int | None] = {}
    for i in range(len(t1)):
        q, u = t1.qualifiers[i], t1.units[i]
        code = qual_seen.get(q)
        if code is None:
            code = qual_seen[q] = parse_qualifier(q, t1.where(i, t1_path))
        if u in unit_seen:
            exponent = unit_seen[u]
        else:
            exponent = unit_seen[u] = unit_exponent(u, t1.where(i, t1_path))
        try:
            value = float(t1.values[i])
        except ValueError:
            value = math.nan
        if not math.isfinite(value):
            if t1.values[i].strip().lower() in _NO_VALUE:
                no_value += 1
                continue
            parse_value(t1.values[i], t1.where(i, t1_path))  # raises, naming the place
        assay = assays[t1.assay_ids[i]]
        if assay.is_binary:
            if exponent is not None or code != EQ or value not in (0.0, 1.0):
                raise DataError("a binary assay takes values 0 or 1 with qualifier '=' and no unit",
                                where=t1.where(i, t1_path),
                                fix="fix the row, or set is_binary=false for this assay in T0")
        elif exponent is not None:
            value, code = to_log_scale(value, code, exponent, t1.where(i, t1_path))
        if abs(value) > STORED_MAX:
            raise DataError("standard_value is too large to be stored (beyond float32, about 3.4e38, on the log "
                            "scale the value ends up on)", where=t1.where(i, t1_path),
                            fix="check the value and its standard_units (a log-scale value such as a pIC50 lies "
                                "around 2 to 12), or remove the row")
        bounds = ranges.get(assay.assay_type.upper()) if not assay.is_binary else None
        if bounds is not None and not bounds[0] <= value <= bounds[1]:
            outside += 1
            continue
        rows.append(compound_index[t1.compound_ids[i]])
        idx.append(assay_index[t1.assay_ids[i]])
        codes.append(code)
        values.append(value)
    return Measurements(np.asarray(rows, dtype=np.int64), np.asarray(idx, dtype=np.int64),
                        np.asarray(codes, dtype=np.int64), np.asarray(values, dtype=np.float64), no_value, outside)


def remap(m: Measurements, row_of: np.ndarray) -> tuple[Measurements, int]:
    """Replace T2 indices by structure rows (row_of[t2 index], -1 = dropped structure); drop those rows."""
    rows = row_of[m.rows]
    keep = rows >= 0
    return (Measurements(rows[keep], m.assays[keep], m.codes[keep], m.values[keep], m.n_no_value, m.n_outside_range),
            int((~keep).sum()))


def aggregate(m: Measurements) -> Aggregated:
    """Replicates -> one (qualifier, value) per (structure, assay), by the rules in the module docstring."""
    order = np.lexsort((m.rows, m.assays))
    r, a, c, v = m.rows[order], m.assays[order], m.codes[order], m.values[order]
    n = len(r)
    starts = np.flatnonzero(np.r_[True, (r[1:] != r[:-1]) | (a[1:] != a[:-1])]) if n else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], n].astype(np.int64)
    out_r, out_a, out_c, out_v = [], [], [], []
    replicated = ignored = conflicting = 0
    for s, e in zip(starts.tolist(), ends.tolist()):
        if e - s == 1:
            out_r.append(r[s]), out_a.append(a[s]), out_c.append(c[s]), out_v.append(v[s])
            continue
        replicated += 1
        cc, vv = c[s:e], v[s:e]
        exact = cc == EQ
        if exact.any():
            ignored += int(not exact.all())
            code, value = EQ, float(vv[exact].mean())
        elif (cc < 0).all():
            value = float(vv.min())
            code = LT if (cc[vv == value] == LT).any() else LE
        elif (cc > 0).all():
            value = float(vv.max())
            code = GT if (cc[vv == value] == GT).any() else GE
        else:
            conflicting += 1
            continue
        out_r.append(r[s]), out_a.append(a[s]), out_c.append(code), out_v.append(value)
    return Aggregated(np.asarray(out_r, np.int64), np.asarray(out_a, np.int64), np.asarray(out_c, np.int64),
                      np.asarray(out_v, np.float64), n, replicated, ignored, conflicting)
