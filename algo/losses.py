"""Training losses on labelled cells only: masked BCE with logits (+1/-1 labels) and censored MSE.

Both come in two forms: per-cell terms on gathered entries (what training uses: labels are sparse) and masked
dense functions over a compounds x tasks matrix with 0 = missing (for readability and tests). Per-task weights
multiply each cell's term; batch losses are sums divided by the number of compounds, as SparseChem normalises.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from fedchem.algo.batches import Labels


def bce_terms(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """BCE with logits per cell for labels +1/-1: log(1 + exp(-label * logit)), numerically stable."""
    return F.softplus(-labels * logits)


def censored_mse_terms(pred: torch.Tensor, target: torch.Tensor, censor: torch.Tensor | None) -> torch.Tensor:
    """Squared error per cell; for censor -1 ("<" bound) / +1 (">" bound) no loss once the prediction is on the
    right side of the bound (below / above it), the squared distance to the bound otherwise."""
    diff = target - pred
    if censor is not None:
        diff = torch.where(censor == 0, diff, torch.relu(censor * diff))
    return diff * diff


def masked_bce(logits: torch.Tensor, labels: torch.Tensor, task_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over labelled cells (label != 0) of task_weight * BCE; missing cells (0) cost nothing."""
    mask = labels != 0
    terms = bce_terms(logits, labels)
    if task_weights is not None:
        terms = terms * task_weights
    return torch.where(mask, terms, torch.zeros_like(terms)).sum()


def censored_mse(pred: torch.Tensor, target: torch.Tensor, censor: torch.Tensor | None, mask: torch.Tensor,
                 task_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Sum over cells where `mask` is true of task_weight * censored squared error."""
    terms = censored_mse_terms(pred, target, censor)
    if task_weights is not None:
        terms = terms * task_weights
    return torch.where(mask, terms, torch.zeros_like(terms)).sum()


def batch_loss(class_logits: torch.Tensor, regr_pred: torch.Tensor, y_class: Labels, y_regr: Labels,
               class_weights: torch.Tensor, regr_weights: torch.Tensor, n_rows: int,
               censored: bool = True) -> tuple[torch.Tensor, float, float]:
    """(total loss, classification part, regression part) of one batch: weighted sums over its labelled cells,
    divided by the number of compounds in the batch."""
    total = class_logits.new_zeros(())
    c_part = r_part = 0.0
    if len(y_class):
        z = class_logits[y_class.rows, y_class.cols]
        c = (bce_terms(z, y_class.values) * class_weights[y_class.cols]).sum() / n_rows
        total = total + c
        c_part = float(c.detach())
    if len(y_regr):
        p = regr_pred[y_regr.rows, y_regr.cols]
        r = (censored_mse_terms(p, y_regr.values, y_regr.censor if censored else None)
             * regr_weights[y_regr.cols]).sum() / n_rows
        total = total + r
        r_part = float(r.detach())
    return total, c_part, r_part
