"""The report's plots as inline SVG strings (matplotlib, Agg backend): nothing to fetch, the file opens offline.

Colours: federation better = green, worse = red, no difference beyond noise = grey; the alone model is dashed.
Every plot draws whatever figures it is given: a missing or non-finite value is left out (an empty bin is an empty
bar), and an interval is drawn from its own ends, never as offsets from the estimate, because a percentile
bootstrap interval need not contain its point estimate (see report.stats.outside_interval). Task names are drawn
as plain text (no mathtext), so a partner's own naming can never break a plot.
"""

from __future__ import annotations

import io
import math

import numpy as np

from fedchem.orchestrator.report import stats

COLOURS = {"helped": "#1b9e77", "hurt": "#d95f02", "no difference": "#9e9e9e", "not evaluable": "#cccccc"}
FOREST_MAX_TASKS = 80


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "svg.hashsalt": "fedchem", "text.parse_math": False})
    return plt


def _svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    _plt().close(fig)
    text = buf.getvalue()
    return text[text.index("<svg"):]


def _num(v) -> float:
    return float(v) if v is not None and math.isfinite(float(v)) else float("nan")


def delta_histogram(tasks: list[dict], metric: str) -> str:
    """Distribution of the per-task delta of one metric, coloured by verdict; a line at 0."""
    plt = _plt()
    spec = stats.METRICS[metric]
    sel = [t for t in tasks if metric in t["metrics"] and math.isfinite(_num(t["metrics"][metric]["delta"]))]
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    d = np.array([_num(t["metrics"][metric]["delta"]) for t in sel])
    if d.size:
        lim = max(1e-6, float(np.max(np.abs(d))))
        edges = np.linspace(-lim, lim, 21)
        bottom = np.zeros(len(edges) - 1)
        for g in ("helped", "no difference", "hurt", "not evaluable"):
            counts, _ = np.histogram([_num(t["metrics"][metric]["delta"]) for t in sel if t["verdict"] == g], edges)
            if counts.any():
                ax.bar(edges[:-1], counts, width=np.diff(edges), bottom=bottom, align="edge", color=COLOURS[g],
                       label=g)
                bottom += counts
        ax.legend(frameon=False, fontsize=7)
    ax.axvline(0, color="black", lw=0.8)
    better = "right" if spec.higher_is_better else "left"
    ax.set_xlabel(f"{spec.label}: federated − alone (better to the {better})")
    ax.set_ylabel("tasks")
    return _svg(fig)


def forest(tasks: list[dict], metric: str) -> str | None:
    """Each task's delta with its bootstrap interval, sorted; None when there are too many tasks to read."""
    sel = [t for t in tasks if metric in t["metrics"] and math.isfinite(_num(t["metrics"][metric]["delta"]))]
    if not sel or len(sel) > FOREST_MAX_TASKS:
        return None
    plt = _plt()
    spec = stats.METRICS[metric]
    sel.sort(key=lambda t: _num(t["metrics"][metric]["delta"]))
    fig, ax = plt.subplots(figsize=(6.0, 0.6 + 0.18 * len(sel)))
    for i, t in enumerate(sel):
        m = t["metrics"][metric]
        lo, hi = _num(m["ci_low"]), _num(m["ci_high"])
        if math.isfinite(lo) and math.isfinite(hi):
            ax.plot([lo, hi], [i, i], color=COLOURS[t["verdict"]], lw=1.5)
        ax.plot([_num(m["delta"])], [i], "o", color=COLOURS[t["verdict"]], ms=3.5)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(range(len(sel)), [t["task"] for t in sel], fontsize=6)
    ax.set_xlabel(f"{spec.label}: federated − alone, with 95% bootstrap interval")
    return _svg(fig)


def scatter(tasks: list[dict], metric: str) -> str:
    """Alone (x) vs federated (y) per task; points above the diagonal favour federation (below, for RMSE)."""
    plt = _plt()
    spec = stats.METRICS[metric]
    sel = [t for t in tasks if metric in t["metrics"]]
    x = np.array([_num(t["metrics"][metric]["alone"]) for t in sel])
    y = np.array([_num(t["metrics"][metric]["federated"]) for t in sel])
    ok = np.isfinite(x) & np.isfinite(y)
    fig, ax = plt.subplots(figsize=(3.4, 3.2))
    for t, xi, yi, k in zip(sel, x, y, ok):
        if k:
            ax.plot([xi], [yi], "o", color=COLOURS[t["verdict"]], ms=4, alpha=0.85)
    if ok.any():
        lo, hi = float(min(x[ok].min(), y[ok].min())), float(max(x[ok].max(), y[ok].max()))
        pad = 0.05 * (hi - lo or 1.0)
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="black", lw=0.8, ls="--")
    ax.set_xlabel(f"{spec.label}, alone")
    ax.set_ylabel(f"{spec.label}, federated")
    return _svg(fig)


def domain_figure(domain: dict, kind: str, metric: str):
    """The figure of `domain_bars` (kept apart so tests can read what was drawn): per bin a bar up to the median
    delta (a black dot on its top), and, where there is one, the bootstrap interval as a capped black segment from
    ci_low to ci_high, wherever the median lies relative to it."""
    plt = _plt()
    spec = stats.METRICS[metric]
    bins = domain["bins"]
    fig, ax = plt.subplots(figsize=(5.2, 2.8))
    meds, los, his = [], [], []
    for b in bins:
        s = b["kinds"].get(kind, {}).get(metric, {})
        meds.append(_num(s.get("median_delta")))
        los.append(_num(s.get("ci_low")))
        his.append(_num(s.get("ci_high")))
    xs = np.arange(len(bins), dtype=np.float64)
    colours = []
    for m in meds:
        better = stats.improvement(metric, m) if math.isfinite(m) else None
        colours.append(COLOURS["not evaluable"] if better is None else COLOURS["helped"] if better > 0
                       else COLOURS["hurt"] if better < 0 else COLOURS["no difference"])
    ax.bar(xs, np.nan_to_num(np.array(meds), nan=0.0), color=colours)
    for x, m, lo, hi in zip(xs, meds, los, his):
        if math.isfinite(m):
            ax.plot([x], [m], "o", color="black", ms=3)
        if math.isfinite(lo) and math.isfinite(hi):
            lo, hi = min(lo, hi), max(lo, hi)
            ax.vlines([x], [lo], [hi], color="black", lw=0.8)
            ax.hlines([lo, hi], [x - 0.1, x - 0.1], [x + 0.1, x + 0.1], color="black", lw=0.8)
    ax.axhline(0, color="black", lw=0.8)
    ax.set_xticks(xs, [f"{b['label']}\n({b['n_compounds']} cpds)" for b in bins])
    ax.set_xlabel("nearest-neighbour Tanimoto similarity to your training compounds")
    ax.set_ylabel(f"median Δ {spec.label}")
    return fig


def domain_bars(domain: dict, kind: str, metric: str) -> str:
    """Median per-task delta in each similarity bin, with its bootstrap interval and the bin's compound count."""
    return _svg(domain_figure(domain, kind, metric))


def curve(curves: dict, kind: str, metric: str) -> str | None:
    """Validation metric of the global model after each round, with the alone model's as a dashed line."""
    values = curves.get("series", {}).get(kind, {}).get(metric)
    if not values:
        return None
    plt = _plt()
    spec = stats.METRICS[metric]
    rounds = curves["rounds"]
    fig, ax = plt.subplots(figsize=(4.6, 2.8))
    y = np.array([_num(v) for v in values])
    ax.plot(rounds, y, "o-", color="#386cb0", label="federated (global model after round)")
    ref = curves.get("alone", {}).get(kind, {}).get(metric)
    if ref is not None:
        ax.axhline(ref, color="#444444", ls="--", lw=1, label="alone (selected epoch)")
    ax.set_xlabel("round")
    ax.set_ylabel(f"validation {spec.label}")
    if rounds:
        ax.set_xticks(rounds)
    ax.legend(frameon=False, fontsize=7)
    return _svg(fig)
