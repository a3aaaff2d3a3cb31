"""Quorum filters: a task is kept only with enough labels overall and in every fold, else dropped with a reason.

Classification: at least min_actives_total actives and min_inactives_total inactives, and at least
min_actives_per_fold / min_inactives_per_fold in each of the n_folds folds (every fold serves as a validation fold).
Regression: at least min_regression_values uncensored values, and min_regression_values_per_fold in each fold.
"""

from __future__ import annotations

import numpy as np

from fedchem.opener.config import PreparationConfig
from fedchem.opener.tasks import Task


def _per_fold(rows: np.ndarray, folds: np.ndarray, n_folds: int) -> np.ndarray:
    return np.bincount(folds[rows], minlength=n_folds)


def quorum_reason(task: Task, folds: np.ndarray, cfg: PreparationConfig) -> str:
    """Why the task fails the quorum ('' if it passes); `folds` is the fold of every structure row."""
    n = cfg.n_folds
    if len(task.rows) == 0:
        return "no labels (no activity, or every value was censored on the uninformative side)"
    if task.kind == "classification":
        act = task.rows[task.labels > 0]
        ina = task.rows[task.labels < 0]
        if len(act) < cfg.min_actives_total:
            return f"{len(act)} actives, fewer than min_actives_total={cfg.min_actives_total}"
        if len(ina) < cfg.min_inactives_total:
            return f"{len(ina)} inactives, fewer than min_inactives_total={cfg.min_inactives_total}"
        for what, rows, minimum, key in (("actives", act, cfg.min_actives_per_fold, "min_actives_per_fold"),
                                         ("inactives", ina, cfg.min_inactives_per_fold, "min_inactives_per_fold")):
            per = _per_fold(rows, folds, n)
            bad = np.flatnonzero(per < minimum)
            if len(bad):
                return f"fold {int(bad[0])} has {int(per[bad[0]])} {what}, fewer than {key}={minimum}"
        return ""
    exact = task.rows[task.censor == 0]
    if len(exact) < cfg.min_regression_values:
        return f"{len(exact)} uncensored values, fewer than min_regression_values={cfg.min_regression_values}"
    per = _per_fold(exact, folds, n)
    bad = np.flatnonzero(per < cfg.min_regression_values_per_fold)
    if len(bad):
        return (f"fold {int(bad[0])} has {int(per[bad[0]])} uncensored values, fewer than "
                f"min_regression_values_per_fold={cfg.min_regression_values_per_fold}")
    return ""


def apply_quorum(tasks: list[Task], folds: np.ndarray, cfg: PreparationConfig
                 ) -> tuple[list[Task], list[tuple[str, str, str]]]:
    """(kept tasks, [(name, kind, reason)] of the dropped ones), order kept."""
    kept, dropped = [], []
    for task in tasks:
        reason = quorum_reason(task, folds, cfg)
        if reason:
            dropped.append((task.name, task.kind, reason))
        else:
            kept.append(task)
    return kept, dropped
