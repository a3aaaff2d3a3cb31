"""The global trunk as a file: its parameter arrays plus the plan's public metadata, without torch.

Every task that handles the trunk reads this file: the aggregator (numpy only, so it never pays for importing
torch) and the partners' train/evaluate tasks. The metadata travels with the trunk because Substra gives a task
no other channel: the round it stands at, the plan id, the roster and the consortium-wide settings (no secret).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

_META = "__fedchem_meta__"


def save_trunk(path: Path, arrays: dict[str, np.ndarray], meta: dict) -> None:
    """Write arrays (in order) and metadata to one .npz, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    payload = {f"p{i:03d}:{name}": np.ascontiguousarray(a, dtype=np.float32) for i, (name, a) in enumerate(arrays.items())}
    payload[_META] = np.frombuffer(json.dumps(meta, sort_keys=True).encode(), dtype=np.uint8)
    with open(tmp, "wb") as fh:
        np.savez(fh, **payload)
    os.replace(tmp, path)


def load_trunk_meta(path: Path) -> dict:
    """Only the metadata (npz members load lazily, so the arrays are not read)."""
    with np.load(path) as z:
        return json.loads(z[_META].tobytes().decode())


def load_trunk(path: Path) -> tuple[dict[str, np.ndarray], dict]:
    with np.load(path) as z:
        meta = json.loads(z[_META].tobytes().decode())
        names = sorted(k for k in z.files if k != _META)
        arrays = {k.split(":", 1)[1]: z[k] for k in names}
    return arrays, meta
