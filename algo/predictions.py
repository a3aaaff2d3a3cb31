"""Predictions of one model on some rows of a partner's dataset, in the one file format every stage shares.

`fedchem train-local` and the federated evaluate task both write test-fold predictions with `save_predictions`,
so the report can compare "federated" with "alone" on the same compounds and tasks. The file is a plain .npz
(no pickles): rows, compound_ids, class_scores (probabilities, n x Tc), regr_preds (n x Tr), optionally
class_std / regr_std (MC-dropout spread) and the task names. It is private to the partner (it names compounds).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedchem.opener.fileio import atomic_write

FORMAT = "fedchem-predictions/1"


@dataclass
class Predictions:
    """Class probabilities and regression values for n compounds (rows and ids set when read from a file)."""

    class_scores: np.ndarray                 # n x Tc, probabilities
    regr_preds: np.ndarray                   # n x Tr
    class_std: np.ndarray | None = None      # n x Tc, MC-dropout std of the probabilities
    regr_std: np.ndarray | None = None       # n x Tr
    rows: np.ndarray | None = None           # row index in the prepared dataset
    compound_ids: np.ndarray | None = None   # input_compound_id per row
    class_tasks: np.ndarray | None = None    # task name per column of class_scores
    regr_tasks: np.ndarray | None = None


def _matrix(a, n: int, name: str) -> np.ndarray:
    m = np.asarray(a, dtype=np.float32)
    if m.ndim != 2 or m.shape[0] != n:
        raise ValueError(f"{name} must be a 2-D array with one row per compound ({n}), got shape {m.shape}")
    return m


def save_predictions(path: str | os.PathLike, rows, compound_ids, class_scores, regr_preds, class_std=None,
                     regr_std=None, class_tasks=None, regr_tasks=None) -> Path:
    """Write predictions to one .npz atomically (temp file, then rename)."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    n = rows.size
    ids = np.asarray([str(c) for c in compound_ids], dtype=str)
    if ids.size != n:
        raise ValueError(f"{ids.size} compound ids for {n} rows")
    payload = {
        "format": np.asarray(FORMAT),
        "rows": rows,
        "compound_ids": ids,
        "class_scores": _matrix(class_scores, n, "class_scores"),
        "regr_preds": _matrix(regr_preds, n, "regr_preds"),
    }
    if class_std is not None:
        payload["class_std"] = _matrix(class_std, n, "class_std")
    if regr_std is not None:
        payload["regr_std"] = _matrix(regr_std, n, "regr_std")
    if class_tasks is not None:
        payload["class_tasks"] = np.asarray([str(t) for t in class_tasks], dtype=str)
    if regr_tasks is not None:
        payload["regr_tasks"] = np.asarray([str(t) for t in regr_tasks], dtype=str)
    return atomic_write(path, lambda fh: np.savez_compressed(fh, **payload))


def load_predictions(path: str | os.PathLike) -> Predictions:
    """Read a file written by `save_predictions` (ValueError if it is not one)."""
    with np.load(Path(path), allow_pickle=False) as z:
        if "format" not in z.files or str(z["format"]) != FORMAT:
            raise ValueError(f"{path} is not a fedchem predictions file ({FORMAT})")
        get = lambda k: z[k] if k in z.files else None  # noqa: E731
        return Predictions(
            class_scores=z["class_scores"], regr_preds=z["regr_preds"], class_std=get("class_std"),
            regr_std=get("regr_std"), rows=z["rows"], compound_ids=z["compound_ids"],
            class_tasks=get("class_tasks"), regr_tasks=get("regr_tasks"),
        )
