"""Model parameters as files, one format for trunk and head: named float32 arrays in order, plus optional metadata.

A `.npz` whose members are `p000:<name>`, `p001:<name>`, ... (so the order survives) and, when given, a JSON
metadata member. No torch here on purpose: the aggregator task reads, sums and writes trunks with numpy alone
(importing torch costs ~1.5 s a task). `flatten`/`unflatten` turn a trunk into the one vector secure aggregation
works on, and back. Metadata is public (the plan id, the round): partner-side code never takes security settings
from it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from fedchem.opener.fileio import FILE_MODE, atomic_write

Spec = list[tuple[str, tuple[int, ...]]]  # (name, shape) per array, in order
FORMAT = "fedchem-params/1"
_META = "__fedchem_meta__"


def save_params(path: str | os.PathLike, arrays: dict[str, np.ndarray], meta: dict | None = None,
                mode: int = FILE_MODE) -> Path:
    """Write named arrays (as float32, order kept) and optional metadata to one .npz, atomically."""
    payload = {f"p{i:03d}:{name}": np.ascontiguousarray(a, dtype=np.float32) for i, (name, a) in enumerate(arrays.items())}
    if meta is not None:
        payload[_META] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    return atomic_write(path, lambda fh: np.savez(fh, **payload), mode)


def _check(z, path) -> None:
    bad = [k for k in z.files if k != _META and not (k[:1] == "p" and k[1:4].isdigit() and k[4:5] == ":")]
    if bad:
        raise ValueError(f"{path} is not a fedchem parameter file ({FORMAT}): member {bad[0]!r}")


def load_params(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays (in the order written) and the metadata ({} when none) of a file written by `save_params`."""
    with np.load(Path(path), allow_pickle=False) as z:
        _check(z, path)
        meta = json.loads(z[_META].tobytes().decode()) if _META in z.files else {}
        names = sorted(k for k in z.files if k != _META)
        arrays = {k.split(":", 1)[1]: np.asarray(z[k], dtype=np.float32) for k in names}
    return arrays, meta


def load_meta(path: str | os.PathLike) -> dict:
    """Only the metadata (npz members load lazily, so the arrays are not read)."""
    with np.load(Path(path), allow_pickle=False) as z:
        _check(z, path)
        return json.loads(z[_META].tobytes().decode()) if _META in z.files else {}


def flatten(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, Spec]:
    """All arrays as one float32 vector (in dict order) and the spec that undoes it."""
    spec: Spec = [(k, tuple(int(d) for d in np.shape(v))) for k, v in arrays.items()]
    if not arrays:
        return np.zeros(0, dtype=np.float32), spec
    vec = np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in arrays.values()])
    return vec, spec


def unflatten(vector: np.ndarray, spec: Spec, copy: bool = True) -> dict[str, np.ndarray]:
    """Split a flat vector back into named arrays of the spec's shapes (ValueError if the sizes disagree).
    copy=False gives views of a float32 vector, for writing them out at once."""
    vector = np.asarray(vector, dtype=np.float32).ravel()
    total = sum(int(np.prod(shape, dtype=np.int64)) for _, shape in spec)
    if vector.size != total:
        raise ValueError(f"vector has {vector.size} values, the spec needs {total}")
    out, pos = {}, 0
    for name, shape in spec:
        n = int(np.prod(shape, dtype=np.int64))
        part = vector[pos:pos + n].reshape(shape)
        out[name] = part.copy() if copy else part
        pos += n
    return out
