"""Learning curves over rounds: the validation figures the run logged for this partner, and the alone reference.

These are the only figures of the report not recomputed from test predictions: no model of an intermediate round
is kept, so the curve is what each round's train task measured on the validation fold for the global model it
received ("validation_of_incoming" in logs/round_NNN.json), plus the final evaluation's validation figures. The
alone model's reference is its validation figure at the epoch it was selected on (its metrics.json).
"""

from __future__ import annotations

import math

from fedchem.orchestrator.report import stats


def _value(aggregate: dict, kind: str, metric: str) -> float | None:
    v = (aggregate or {}).get(kind, {}).get(metric)
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def curves(round_logs: list[dict], federated_metrics: dict, alone_metrics: dict) -> dict:
    """{"rounds": [r...], "series": {kind: {metric: [value or None per round]}}, "alone": {kind: {metric: v}}}:
    the validation metrics of the global model after each round (mean over non-auxiliary tasks)."""
    points: dict[int, dict] = {}
    for log in round_logs:
        v = log.get("validation_of_incoming")
        if isinstance(v, dict) and isinstance(v.get("after_round"), int) and v["after_round"] > 0:
            points[v["after_round"]] = v.get("aggregate", {})
    fm = federated_metrics if isinstance(federated_metrics, dict) else {}
    final = (fm.get("last") or {}).get("validation") or fm.get("validation")  # the last round's model, not the chosen
    if isinstance(final, dict) and isinstance(federated_metrics.get("after_round"), int):
        points[federated_metrics["after_round"]] = final.get("aggregate", final)
    rounds = sorted(points)
    series: dict[str, dict[str, list]] = {}
    alone: dict[str, dict[str, float | None]] = {}
    alone_val = alone_metrics.get("validation", {}) if isinstance(alone_metrics, dict) else {}
    for kind in ("classification", "regression"):
        for m in stats.metrics_of(kind):
            values = [_value(points[r], kind, m) for r in rounds]
            ref = _value(alone_val, kind, m)
            if any(v is not None for v in values) or ref is not None:
                series.setdefault(kind, {})[m] = values
                alone.setdefault(kind, {})[m] = ref
    return {"rounds": rounds, "series": series, "alone": alone}
