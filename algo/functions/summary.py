"""Substra function publishing one headline figure of a partner's final evaluation (opt-in, for the web UI).

It reads the partner's private metrics and writes a single number, the test fold's mean AUC-ROC over
classification tasks (or, with none, minus the mean RMSE over regression tasks, so that higher is better): no
task names, no per-task figure, nothing else.
"""

from __future__ import annotations

import math

import substratools as tools

from fedchem.algo.functions.keys import guard_of
from fedchem.opener.fileio import read_json


def headline_figure(metrics: dict) -> float:
    """The one figure a partner may publish, from its private metrics file."""
    agg = metrics["test"]["aggregate"]
    auc = (agg.get("classification") or {}).get("auc_roc")
    if auc is not None and not math.isnan(auc):
        return float(auc)
    rmse = (agg.get("regression") or {}).get("rmse")
    return -float(rmse) if rmse is not None else float("nan")


@tools.register
def publish_summary(inputs, outputs, task_properties):
    guard = guard_of(inputs, "publish_summary")
    if not guard.agreement.publish_summary:
        raise guard.refuse("publish opt-in", "the partner's agreement does not opt in to publishing a summary figure")
    metrics = read_json(inputs["metrics"])
    if metrics.get("agreement") != guard.fingerprint:
        raise guard.refuse("own agreement", "the metrics were made under another agreement")
    tools.save_performance(headline_figure(metrics), outputs["summary"])
