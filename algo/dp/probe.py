"""The single-partner-row reconstruction an aggregator can try on a round's published trunk change, measured.

The trunk's input layer has one row per (scrambled) fingerprint column, and a round's row-sparse training changes
only the rows a partner's batches touched. On a row that exactly one partner touched, every other update is zero,
so the published mean change there is that partner's update times w_p / sum(w): the aggregator reads the partner's
update on those rows up to one scalar, and rows with an exactly zero change show the columns nobody used. This
module measures both, given the truth (each partner's own update), for the benches and tests that show what
differential privacy buys. It is an attacker's best case: it is told which rows are exclusive to whom.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np


def touched_rows(rows_delta: np.ndarray) -> np.ndarray:
    """Boolean mask of the input-layer rows a partner's update changed (rows_delta: n_features x hidden)."""
    return np.any(rows_delta != 0, axis=1)


def exclusive_rows(rows_deltas: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """partner -> mask of the rows only that partner's update changed."""
    touched = {p: touched_rows(d) for p, d in rows_deltas.items()}
    count = sum(t.astype(np.int64) for t in touched.values())
    return {p: t & (count == 1) for p, t in touched.items()}


def scale_free_error(estimate: np.ndarray, truth: np.ndarray) -> float:
    """min over a of ||truth - a * estimate|| / ||truth|| = sqrt(1 - cos^2): 0 = read exactly up to the unknown
    weight, 1 = nothing learned beyond chance."""
    e, t = np.ravel(estimate).astype(np.float64), np.ravel(truth).astype(np.float64)
    ne, nt = float(np.linalg.norm(e)), float(np.linalg.norm(t))
    if nt == 0 or ne == 0:
        return 1.0
    cos = float(np.dot(e, t)) / (ne * nt)
    return float(np.sqrt(max(0.0, 1.0 - cos * cos)))


@dataclass
class ProbeResult:
    n_rows: int                   # input-layer rows
    exclusive_fraction: float     # rows touched by exactly one partner, over all rows
    exclusive_rows: int
    zero_rows: int                # rows whose published change is exactly zero (columns nobody used)
    untouched_rows: int           # rows no partner touched (the truth behind zero_rows)
    errors: dict                  # partner -> scale-free reconstruction error on its exclusive rows

    def as_dict(self) -> dict:
        return asdict(self)


def probe(published_change_rows: np.ndarray, true_rows: Mapping[str, np.ndarray]) -> ProbeResult:
    """Try the reconstruction on a round: published mean change of the input layer (n_features x hidden) and each
    partner's true update rows (what it would have sent before clipping and noise)."""
    excl = exclusive_rows(true_rows)
    any_touched = np.zeros(published_change_rows.shape[0], dtype=bool)
    for d in true_rows.values():
        any_touched |= touched_rows(d)
    errors = {p: scale_free_error(published_change_rows[m], true_rows[p][m]) for p, m in excl.items() if m.any()}
    n_excl = int(sum(int(m.sum()) for m in excl.values()))
    zero = int(np.count_nonzero(~np.any(published_change_rows != 0, axis=1)))
    return ProbeResult(int(published_change_rows.shape[0]), n_excl / published_change_rows.shape[0], n_excl, zero,
                       int(np.count_nonzero(~any_touched)), errors)
