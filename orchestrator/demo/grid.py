"""Equal budgets: the same small hyperparameter grid for both sides, each point chosen by the same rule.

For every grid point the demo trains each partner alone and runs the consortium federated, with the point's
settings and everything else equal. Then each partner, on its own, picks its alone point and its federated point by
the figure `fedchem.algo.selection` already chose its epochs and rounds by (validation AUC-PR for classification,
censor-aware validation RMSE for regression, read from each side's metrics.json), so both sides get the same
budget and the same rule, and the test fold enters no choice. When a partner has both kinds of task, the point is
chosen on the kind with more headline tasks (one model per side, so one point per side).
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fedchem.algo.selection import RULE

# key -> (section of the consortium config, values tried); two values each, so 4 points: the demo's budget allows no
# more (each point is one federated run). epochs_per_round is left at 1: it changes what a round means, not a budget.
GRID = {"learning_rate": ("training", (0.001, 0.003)), "dropout": ("model", (0.2, 0.5))}
FORMAT = "fedchem-tuning/1"


@dataclass(frozen=True)
class Point:
    """One grid point: its settings and a label usable as a folder name."""

    settings: dict

    @property
    def label(self) -> str:
        return "_".join(f"{k}-{v:g}" if isinstance(v, float) else f"{k}-{v}" for k, v in self.settings.items())


def points(grid: dict | None = None) -> list[Point]:
    """Every combination of the grid's values (default GRID), in a fixed order."""
    grid = GRID if grid is None else grid
    keys = list(grid)
    return [Point(dict(zip(keys, values))) for values in itertools.product(*(grid[k][1] for k in keys))]


def apply(doc: dict, point: Point, grid: dict | None = None) -> dict:
    """A copy of consortium config `doc` with the point's settings in their sections."""
    grid = GRID if grid is None else grid
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in doc.items()}
    for key, value in point.settings.items():
        section = grid[key][0]
        out[section] = {**out.get(section, {}), key: value}
    return out


def point_consortium(raw_consortium: Path, folder: Path, point: Point, grid: dict | None = None) -> Path:
    """Write the point's consortium config into `folder` (same partners, secret and folds as the demo's; partner
    configs and the secret referred to by absolute path) and return its path."""
    raw_consortium = Path(raw_consortium).resolve()
    doc = yaml.safe_load(raw_consortium.read_text(encoding="utf-8"))
    base = raw_consortium.parent
    doc = apply(doc, point, grid)
    doc["name"] = f"{doc['name']}-{point.label}"
    doc["secret"] = {**doc["secret"], "file": str((base / doc["secret"]["file"]).resolve())}
    doc["partners"] = [{**p, "config": str((base / p["config"]).resolve())} for p in doc["partners"]]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "consortium.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def chosen_figure(metrics: dict, kind: str) -> float:
    """The validation figure the selection kept for `kind` in a metrics.json (alone or federated); NaN if none."""
    value = ((metrics.get("selection") or {}).get("chosen") or {}).get(kind, {}).get("value")
    return float(value) if value is not None and math.isfinite(float(value)) else float("nan")


def selection_kind(metrics: dict) -> str | None:
    """The kind a point is chosen on: the one with more headline validation tasks (classification on a tie)."""
    agg = (metrics.get("validation") or {}).get("aggregate") or {}
    counts = {k: int((agg.get(k) or {}).get("n_tasks", 0) or 0) for k in RULE}
    present = [k for k in RULE if k in ((metrics.get("selection") or {}).get("chosen") or {})]
    if not present:
        return None
    return max(present, key=lambda k: (counts.get(k, 0), k == "classification"))


def choose(figures: dict[str, float], kind: str) -> str | None:
    """The label with the best figure for `kind` by the selection rule (ties keep the earlier point); None if no
    figure is finite."""
    _, higher = RULE[kind]
    best = None
    for label, value in figures.items():
        if not math.isfinite(value):
            continue
        if best is None or (value > figures[best] if higher else value < figures[best]):
            best = label
    return best


@dataclass
class SideChoice:
    """One side's choice for one partner: the point, its settings, and every point's validation figure."""

    point: str | None
    settings: dict
    figures: dict[str, float] = field(default_factory=dict)


def choose_for_partner(alone: dict[str, dict], federated: dict[str, dict], grid: dict | None = None) -> dict:
    """Both sides' choices for one partner from its metrics.json per point label ({label: metrics}), as the
    report's `tuning` section (JSON-ready)."""
    grid = GRID if grid is None else grid
    kind = next((selection_kind(m) for m in [*alone.values(), *federated.values()] if selection_kind(m)), None)
    by_label = {p.label: p.settings for p in points(grid)}
    doc = {"format": FORMAT, "grid": {k: list(v[1]) for k, v in grid.items()}, "kind": kind,
           "metric": RULE[kind][0] if kind else None, "higher_is_better": RULE[kind][1] if kind else None}
    for side, metrics in (("alone", alone), ("federated", federated)):
        figs = {label: chosen_figure(m, kind) if kind else float("nan") for label, m in metrics.items()}
        label = choose(figs, kind) if kind else None
        doc[side] = {"point": label, "settings": by_label.get(label, {}),
                     "figures": {k: (v if math.isfinite(v) else None) for k, v in figs.items()}}
    return doc


def read_metrics(path: Path) -> dict:
    """A metrics.json, or {} when it is missing or unreadable (that point then never wins)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
