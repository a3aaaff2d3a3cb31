"""Looks for a partner's private material inside files: SMILES, compound ids, task names, head weights, features.

Files are opened as a reader would: zip/npz members are decompressed and JSON is read as text, then searched
byte for byte. Used by the leak tests, which also prove it finds what it looks for (positive controls).
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fedchem.algo.params import load_params
from fedchem.opener.dataset import load_prepared


def blob_of(path: Path) -> bytes:
    """Everything a reader of this file can see, decompressed."""
    raw = Path(path).read_bytes()
    if zipfile.is_zipfile(io.BytesIO(raw)):
        with zipfile.ZipFile(io.BytesIO(raw)) as z:
            return b"\n".join(z.read(n) for n in z.namelist())
    return raw


@dataclass
class Needles:
    """What must never appear outside a partner's own folder: named byte strings."""

    items: dict[str, list[bytes]] = field(default_factory=dict)

    def add(self, kind: str, values) -> None:
        self.items.setdefault(kind, []).extend(values)

    def find(self, blob: bytes) -> list[str]:
        return [f"{kind}: {v[:40]!r}" for kind, vals in self.items.items() for v in vals if v in blob]


def partner_needles(t2_csv: Path, prepared_dir: Path, head_npz: Path | None = None) -> Needles:
    n = Needles()
    with open(t2_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    n.add("smiles", [r["smiles"].encode() for r in rows if len(r["smiles"]) >= 12])
    n.add("compound id", [r["input_compound_id"].encode() for r in rows])
    ds = load_prepared(prepared_dir, verify=False)
    n.add("task name", [t["task"].encode() for t in ds.tasks])
    # features: each compound's run of fingerprint column indices, as stored (int32) — 6 columns in a row
    X = ds.X.tocsr()
    for i in range(0, X.shape[0], max(1, X.shape[0] // 50)):
        idx = X.indices[X.indptr[i]:X.indptr[i + 1]]
        if idx.size >= 6:
            n.add("feature indices", [idx[:6].astype(np.int32).tobytes(), idx[:6].astype(np.int64).tobytes()])
    # labels: a compound-ordered run of 8 regression values (float32) of one task
    Yr = ds.Y_regr.tocsc()
    for j in range(Yr.shape[1]):
        vals = Yr.data[Yr.indptr[j]:Yr.indptr[j + 1]]
        if vals.size >= 8:
            n.add("label values", [vals[:8].astype(np.float32).tobytes(), vals[:8].astype(np.float64).tobytes()])
    if head_npz is not None:
        for a in load_params(head_npz)[0].values():
                a = a.ravel()
                if a.size >= 8:
                    n.add("head weights", [a[s:s + 8].tobytes() for s in range(0, a.size - 8, max(8, a.size // 20))])
    return n
