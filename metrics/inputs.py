"""Checks and conversions shared by every metric: labels to 1/0, scores to finite 1-D float arrays.

Kept apart so each metric states its rule once (scikit-learn's `check_consistent_length` idea); raises ValueError
like scikit-learn does, since metrics import nothing of fedchem.
"""

from __future__ import annotations

import numpy as np


def as_1d_float(values, name: str) -> np.ndarray:
    """Return `values` as a 1-D float64 array (column vectors are flattened), or raise ValueError."""
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 2 and 1 in arr.shape:
        arr = arr.reshape(-1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {arr.shape}")
    return arr


def check_same_length(**arrays: np.ndarray) -> None:
    """Raise ValueError unless every named array has the same length."""
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"inconsistent lengths: {lengths}")


def binary_labels(y_true) -> np.ndarray:
    """Convert labels stored as +1/-1 (SparseChem's Y_class) or 1/0 (scikit-learn's) to an int 1/0 array.

    Mixing the two codings (a -1 next to a 0) or any other value is ambiguous and raises ValueError.
    """
    y = as_1d_float(y_true, "y_true")
    if np.isnan(y).any():
        raise ValueError("y_true contains NaN: pass only labelled values")
    bad = ~np.isin(y, (-1.0, 0.0, 1.0))
    if bad.any():
        raise ValueError(f"y_true must hold +1/-1 or 1/0 labels; found {int(bad.sum())} other values")
    if (y == -1).any() and (y == 0).any():
        raise ValueError("y_true mixes -1 and 0: use either +1/-1 or 1/0 labels")
    return (y == 1).astype(np.int64)


def probabilities(y_score, name: str = "y_score") -> np.ndarray:
    """Return scores as a float array of probabilities; raise ValueError if any lies outside [0, 1].

    Catches the easy mistake of passing logits where probabilities are expected. NaN passes through
    (callers decide what a non-finite score means).
    """
    p = as_1d_float(y_score, name)
    finite = p[np.isfinite(p)]
    if finite.size and (finite.min() < 0.0 or finite.max() > 1.0):
        raise ValueError(f"{name} must be probabilities in [0, 1] (got range [{finite.min():.3g}, {finite.max():.3g}]); "
                         "apply a sigmoid to logits first")
    if np.isinf(p).any():
        raise ValueError(f"{name} must be probabilities in [0, 1]; found inf")
    return p


def censor_flags(censor, n: int) -> np.ndarray:
    """Return censor flags as an int array of -1/0/+1 ("<", "=", ">"); None means all "=". Raise on other values."""
    if censor is None:
        return np.zeros(n, dtype=np.int64)
    c = as_1d_float(censor, "censor")
    if len(c) != n:
        raise ValueError(f"censor has length {len(c)}, expected {n}")
    if not np.isin(c, (-1.0, 0.0, 1.0)).all():
        raise ValueError("censor must hold -1 ('<'), 0 ('=') or +1 ('>')")
    return c.astype(np.int64)


def classification_inputs(y_true, y_score) -> tuple[np.ndarray, np.ndarray]:
    """Labels as int 1/0 and scores as finite probabilities of the same length, or raise ValueError."""
    y = binary_labels(y_true)
    p = probabilities(y_score)
    check_same_length(y_true=y, y_score=p)
    if np.isnan(p).any():
        raise ValueError("y_score contains NaN")
    return y, p
