"""The plain-language top of the report: did joining help, on how many tasks, by how much, and where.

Everything is read off the figures `report.compare.compare` computed; "beyond noise" means the 95% bootstrap
interval (over test compounds) of the change excludes zero. When federation did not help, the text says so.
"""

from __future__ import annotations

import math

from fedchem.orchestrator.report import stats


def signed(v, digits: int = 3) -> str:
    """+0.012 / −0.034 / n/a."""
    if v is None or not math.isfinite(float(v)):
        return "n/a"
    s = f"{float(v):+.{digits}f}"
    return s.replace("-", "−")


OUTSIDE = "the estimate lies outside it"


def interval(lo, hi, digits: int = 3, estimate=None) -> str:
    """"95% CI −0.010 to +0.020", flagged when `estimate` (if given) lies outside it: a percentile bootstrap
    interval is reported as it is, not stretched to contain the estimate (see report.stats.outside_interval)."""
    if lo is None or hi is None or not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
        return "interval not available"
    text = f"95% CI {signed(lo, digits)} to {signed(hi, digits)}"
    return text + f" ({OUTSIDE})" if stats.outside_interval(estimate, lo, hi) else text


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def kind_outcome(block: dict) -> str:
    """"helped" / "hurt" / "no difference" / "not evaluable" for one kind, from the interval of the median change
    of its primary metric over tasks."""
    m = block["primary_metric"]
    s = block["metrics"].get(m, {})
    return stats.verdict(m, (s.get("ci_low") if s.get("ci_low") is not None else float("nan"),
                             s.get("ci_high") if s.get("ci_high") is not None else float("nan")))


def overall(figures: dict) -> str:
    """One verdict over the headline kinds: helped, hurt, mixed, or no measurable difference."""
    outcomes = {kind_outcome(b) for b in figures["summary"]["headline"].values()}
    if "helped" in outcomes and "hurt" in outcomes:
        return "mixed"
    if "helped" in outcomes:
        return "helped"
    if "hurt" in outcomes:
        return "hurt"
    if outcomes & {"no difference"}:
        return "no difference"
    return "not evaluable"


HEADLINES = {
    "helped": "Yes: joining the consortium made your models measurably better (on the median task).",
    "hurt": "No: on this run, joining the consortium made your models worse (on the median task).",
    "mixed": "Mixed: federation helped one kind of task and hurt the other.",
    "no difference": "No measurable benefit: on this run, federation did not make your median task better than "
                     "training alone, beyond what the test set's noise can explain.",
    "not evaluable": "Not enough test data to tell whether federation helped.",
}


def headline(figures: dict) -> str:
    """The first sentence; when only some kinds of task moved, it names them and what happened to the others."""
    verdict = overall(figures)
    outcomes = {kind: kind_outcome(b) for kind, b in figures["summary"]["headline"].items()}
    if verdict not in ("helped", "hurt") or len(set(outcomes.values())) == 1:
        return HEADLINES[verdict]
    moved = [k for k, o in outcomes.items() if o == verdict]
    others = "; ".join(f"{k} tasks: {o if o != 'no difference' else 'no measurable difference'}"
                       for k, o in outcomes.items() if o != verdict)
    return HEADLINES[verdict].replace("(on the median task)", f"on {' and '.join(moved)} tasks (median task); "
                                      f"{others}")


def summary_sentences(figures: dict) -> list[str]:
    """The report's opening paragraph, one sentence (or short group of them) per item."""
    out = [headline(figures)]
    for kind, block in figures["summary"]["headline"].items():
        v = block["verdicts"]
        primary = stats.METRICS[block["primary_metric"]].label
        out.append(
            f"{kind.capitalize()} ({_plural(block['n_tasks'], 'task')}, judged on {primary}): federation helped on "
            f"{v['helped']}, hurt on {v['hurt']} and made no difference beyond noise on {v['no difference']}"
            + (f"; {v['not evaluable']} could not be judged (too few test compounds)" if v["not evaluable"] else "")
            + ".")
        parts = []
        for m, s in block["metrics"].items():
            spec = stats.METRICS[m]
            note = "" if spec.higher_is_better else " (lower is better)"
            parts.append(f"{spec.label} {signed(s['median_delta'])}{note} "
                         f"({interval(s['ci_low'], s['ci_high'], estimate=s['median_delta'])})")
        out.append("Median change over these tasks, federated minus alone: " + "; ".join(parts) + ".")
    sel = figures.get("selection") or {}
    if sel.get("federated") and sel.get("alone"):
        out.append("Both models were chosen by the same rule on your validation fold: federated "
                   + ", ".join(f"{k} round {i}" for k, i in sel["federated"].items()) + "; alone "
                   + ", ".join(f"{k} epoch {i}" for k, i in sel["alone"].items()) + ".")
    tuning = figures.get("tuning") or {}
    if tuning.get("alone") and tuning.get("federated"):
        out.append(f"Both sides had the same budget: {len(tuning['alone'].get('figures') or {})} settings each, "
                   f"chosen by the same rule on your validation fold: alone {tuning['alone'].get('point')}, "
                   f"federated {tuning['federated'].get('point')}.")
    conf = (figures.get("conformal") or {}).get("summary", {}).get("classification")
    if conf and conf.get("median_delta") is not None:
        out.append(f"Conformal efficiency (share of single-label predictions at ε = "
                   f"{figures['conformal']['significance']:g}, classification): median {conf['median_federated']:.3f} "
                   f"federated vs {conf['median_alone']:.3f} alone, higher for federation on "
                   f"{conf['federated_better']} of {conf['n_evaluated']} tasks; validity held on "
                   f"{conf['valid_federated']} (federated) and {conf['valid_alone']} (alone).")
    aux = figures["summary"].get("auxiliary", {})
    if aux:
        n = sum(b["n_tasks"] for b in aux.values())
        out.append(f"{_plural(n, 'auxiliary task')} (trained on, not part of the headline) are summarised "
                   "separately below.")
    bins = figures["domain"]["bins"]
    kinds = list(figures["summary"]["headline"])
    if bins and kinds:
        kind = kinds[0]
        m = stats.PRIMARY[kind]
        label = stats.METRICS[m].label
        lo, hi = bins[0], bins[-1]
        s_lo = lo["kinds"].get(kind, {}).get(m, {})
        s_hi = hi["kinds"].get(kind, {}).get(m, {})
        out.append(
            f"By distance to your own training compounds ({kind}, {label}): median change "
            f"{signed(s_lo.get('median_delta'))} on the least similar test compounds (similarity {lo['label']}, "
            f"{lo['n_compounds']} compounds) and {signed(s_hi.get('median_delta'))} on the most similar "
            f"({hi['label']}, {hi['n_compounds']} compounds).")
    if figures["n_test_compounds"] < 200:
        out.append(f"Your test fold holds only {figures['n_test_compounds']} compounds: intervals are wide, and "
                   "small differences cannot be told from noise.")
    return out
