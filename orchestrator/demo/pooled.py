"""The pooled-central bound: every partner's data in one model, the upper reference federation is measured against.

Only a benchmark may do this: it puts every partner's compounds and labels in one place, which is exactly what
fedchem exists to avoid. `bench/payoff.py` uses it on public data. The pooled dataset stacks the partners' rows and
puts their task columns side by side (block-diagonal labels), so every compound keeps its own partner's labels only.
Folds carry over unchanged: a fold is a keyed hash of the scaffold, the same at every partner, so a compound two
partners share sits in the same fold in both blocks and nothing leaks from one partner's test fold into training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from fedchem.algo.predictions import Predictions
from fedchem.opener.dataset import PreparedDataset
from fedchem.opener.errors import DataError

KIND_MATRIX = {"classification": "Y_class", "regression": "Y_regr"}


@dataclass(frozen=True)
class Block:
    """Where one partner sits in the pooled dataset: its rows and its task columns of each kind."""

    row_offset: int
    n_rows: int
    class_offset: int
    n_class: int
    regr_offset: int
    n_regr: int


def pool(datasets: dict[str, PreparedDataset]) -> tuple[PreparedDataset, dict[str, Block]]:
    """One dataset holding every partner's rows and tasks (see the module docstring), and where each partner is."""
    if not datasets:
        raise DataError("nothing to pool: no partner dataset given")
    widths = {d.n_features for d in datasets.values()}
    if len(widths) != 1:
        raise DataError(f"the partners' fingerprints differ in width ({sorted(widths)}): they were not prepared with "
                        "one consortium's fingerprint settings", fix="prepare every partner with the same consortium")
    layout: dict[str, Block] = {}
    rows = cls = regr = 0
    tasks: list[dict] = []
    for name, d in datasets.items():
        block = Block(rows, d.n_compounds, cls, d.Y_class.shape[1], regr, d.Y_regr.shape[1])
        layout[name] = block
        for t in d.tasks:
            offset = block.class_offset if t["kind"] == "classification" else block.regr_offset
            tasks.append({**t, "column": str(int(t["column"]) + offset), "task": f"{name}/{t['task']}"})
        rows, cls, regr = rows + block.n_rows, cls + block.n_class, regr + block.n_regr
    parts = list(datasets.values())

    def diag(attr: str) -> sp.csr_matrix:
        return sp.csr_matrix(sp.block_diag([getattr(d, attr) for d in parts], format="csr"))

    pooled = PreparedDataset(
        X=sp.csr_matrix(sp.vstack([d.X for d in parts], format="csr")),
        Y_class=diag("Y_class"), Y_regr=diag("Y_regr"), Y_censor=diag("Y_censor"),
        folds=np.concatenate([np.asarray(d.folds) for d in parts]),
        tasks=tasks, compound_ids=[f"{n}/{c}" for n, d in datasets.items() for c in d.compound_ids],
        manifest={"partner": "pooled"})
    return pooled, layout


def cut(pred: Predictions, block: Block, data: PreparedDataset) -> Predictions:
    """The pooled model's predictions of one partner's own rows and tasks, indexed like that partner's dataset
    (`data`), so they can stand where that partner's federated predictions stand in a report comparison."""
    rows = np.asarray(pred.rows, dtype=np.int64)
    mine = (rows >= block.row_offset) & (rows < block.row_offset + block.n_rows)
    c = slice(block.class_offset, block.class_offset + block.n_class)
    r = slice(block.regr_offset, block.regr_offset + block.n_regr)
    local = rows[mine] - block.row_offset
    pick = lambda a, cols: None if a is None else np.asarray(a)[mine][:, cols]  # noqa: E731
    return Predictions(class_scores=pick(pred.class_scores, c), regr_preds=pick(pred.regr_preds, r),
                       class_std=pick(pred.class_std, c), regr_std=pick(pred.regr_std, r), rows=local,
                       compound_ids=np.asarray([data.compound_ids[i] for i in local], dtype=str),
                       class_tasks=np.asarray([t["task"] for t in data.class_tasks()], dtype=str),
                       regr_tasks=np.asarray([t["task"] for t in data.regr_tasks()], dtype=str))
