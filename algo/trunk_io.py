"""Model parameters as plain numpy: ordered dicts of float32 arrays, .npz files, and one flat vector.

No torch here on purpose: the aggregator task reads, sums and writes trunks with numpy alone (importing torch costs
~1.5 s a task). `flatten`/`unflatten` turn a trunk into the 1-D vector secure aggregation works on, and back.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

Spec = list[tuple[str, tuple[int, ...]]]  # (name, shape) per array, in order


def save_arrays(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write named float32 arrays (order kept) to one .npz, atomically (temp file beside it, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **{k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_arrays(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read the named arrays of a .npz written by `save_arrays`, in the order they were written."""
    with np.load(Path(path), allow_pickle=False) as z:
        return {k: np.asarray(z[k], dtype=np.float32) for k in z.files}


def flatten(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, Spec]:
    """All arrays as one float32 vector (in dict order) and the spec that undoes it."""
    spec: Spec = [(k, tuple(int(d) for d in np.shape(v))) for k, v in arrays.items()]
    if not arrays:
        return np.zeros(0, dtype=np.float32), spec
    vec = np.concatenate([np.asarray(v, dtype=np.float32).ravel() for v in arrays.values()])
    return vec, spec


def unflatten(vector: np.ndarray, spec: Spec) -> dict[str, np.ndarray]:
    """Split a flat vector back into named arrays of the spec's shapes (ValueError if the sizes disagree)."""
    vector = np.asarray(vector, dtype=np.float32).ravel()
    total = sum(int(np.prod(shape, dtype=np.int64)) for _, shape in spec)
    if vector.size != total:
        raise ValueError(f"vector has {vector.size} values, the spec needs {total}")
    out, pos = {}, 0
    for name, shape in spec:
        n = int(np.prod(shape, dtype=np.int64))
        out[name] = vector[pos:pos + n].reshape(shape).copy()
        pos += n
    return out
