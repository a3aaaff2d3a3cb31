"""The report never fails on the figures it computes (issue 19): rendered over many synthetic partners (tiny test
folds, one task, one class, constant or identical predictions, empty similarity bins, awkward task names), it
writes every file, and every interval is drawn from its own ends wherever the estimate lies, including at or
beyond an end (a percentile bootstrap interval need not contain its estimate; the report says so).

Inputs: synthetic prepared folders, baselines and run folders in the real layouts (tests/helpers/synthreport.py).
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, target
from hypothesis import strategies as st

from fedchem.orchestrator.report import plots, stats
from fedchem.orchestrator.report.compare import CompareSettings
from fedchem.orchestrator.report.html import render
from fedchem.orchestrator.report.summary import OUTSIDE
from fedchem.orchestrator.report.write import FILES, build_document, csv_tables, make_plots, write_report
from fedchem.orchestrator.report.inputs import load_inputs

from synthreport import MODES, Case, write_run

QUICK = CompareSettings(replicates=100, seed=0)


def _write(case: Case, root: Path) -> tuple[Path, dict]:
    info = write_run(root, {"p": case})
    out = root / "out"
    html = write_report(info["run_dir"], "p", alone_dir=info["alone"]["p"], out_dir=out,
                        prepared_dir=info["prepared"]["p"], settings=QUICK)
    assert html == out / "report.html"
    return out, json.loads((out / "report.json").read_text())


def _num(v) -> float:
    return float("nan") if v is None else float(v)


def drawn(domain: dict, kind: str, metric: str) -> dict:
    """What the domain plot draws, read back from its matplotlib figure: bar heights, the dots on them and the
    vertical interval segments, by bin position."""
    fig = plots.domain_figure(domain, kind, metric)
    ax = fig.axes[0]
    bars = [p.get_height() for p in ax.patches]
    dots = {int(round(ln.get_xdata()[0])): float(ln.get_ydata()[0]) for ln in ax.lines if ln.get_marker() == "o"}
    segments = {}
    for coll in ax.collections:
        for seg in coll.get_segments():
            (x0, y0), (x1, y1) = seg
            if x0 == x1:  # the vertical part of an interval (the caps are horizontal)
                segments[int(round(x0))] = (min(y0, y1), max(y0, y1))
    plots._plt().close(fig)
    return {"bars": bars, "dots": dots, "segments": segments}


def check_domain_drawn(domain: dict, kind: str, metric: str) -> int:
    """Assert the domain plot shows each bin's median and interval as they are; return how many bins have their
    estimate at or beyond an end of the interval."""
    d = drawn(domain, kind, metric)
    at_or_beyond = 0
    assert len(d["bars"]) == len(domain["bins"])
    for k, b in enumerate(domain["bins"]):
        s = b["kinds"].get(kind, {}).get(metric, {})
        m, lo, hi = _num(s.get("median_delta")), _num(s.get("ci_low")), _num(s.get("ci_high"))
        assert d["bars"][k] == pytest.approx(m if math.isfinite(m) else 0.0, abs=1e-12)
        if math.isfinite(m):
            assert d["dots"][k] == pytest.approx(m, abs=1e-12)
        if math.isfinite(lo) and math.isfinite(hi):
            assert d["segments"][k] == pytest.approx((lo, hi), abs=1e-12)  # from its own ends, not m ± offsets
            if math.isfinite(m) and (m <= lo or m >= hi):
                at_or_beyond += 1
        else:
            assert k not in d["segments"]
    return at_or_beyond


def check_document(out: Path, doc: dict) -> int:
    """Every file written; every interval ordered; plots and tables say what the figures are."""
    for name in FILES:
        assert (out / name).is_file(), name
    fig = doc["figures"]
    html = (out / "report.html").read_text()
    entries = [(t["metrics"][m]["delta"], t["metrics"][m]) for t in fig["tasks"] for m in t["metrics"]]
    entries += [(s["median_delta"], s) for g in fig["summary"].values() for b in g.values()
                for s in b["metrics"].values()]
    entries += [(s["median_delta"], s) for b in fig["domain"]["bins"] for ms in b["kinds"].values()
                for s in ms.values()]
    for est, s in entries:
        if s["ci_low"] is not None:
            assert s["ci_high"] is not None and s["ci_low"] <= s["ci_high"]
        if stats.outside_interval(est, s["ci_low"], s["ci_high"]):
            assert OUTSIDE in html or "†" in html
    # the domain table flags an estimate outside its interval, and only then
    domain_part = html[html.index("<h2>Applicability domain"):html.index("<h2>Over the rounds")]
    assert (OUTSIDE in domain_part) == bool(_bins_outside(doc, strict=True))
    at_or_beyond = 0
    for kind in fig["summary"]["headline"]:
        at_or_beyond += check_domain_drawn(fig["domain"], kind, stats.PRIMARY[kind])
        assert html.count("<svg") >= 3  # histogram, scatter, domain bars at least
    return at_or_beyond


cases = st.builds(
    Case,
    seed=st.integers(0, 2**31 - 1),
    n_compounds=st.integers(1, 160),
    n_class=st.integers(0, 5),
    n_regr=st.integers(0, 3),
    label_density=st.sampled_from([0.1, 0.5, 1.0]),
    pos_rate=st.sampled_from([0.0, 0.03, 0.3, 1.0]),
    test_share=st.sampled_from([0.0, 0.1, 0.3, 0.9]),
    fed_mode=st.sampled_from(MODES[:3]),
    alone_mode=st.sampled_from(MODES),
    constant_target=st.booleans(),
    censored=st.booleans(),
    odd_names=st.booleans(),
    aux_share=st.sampled_from([0.0, 0.5, 1.0]),
    clusters=st.integers(1, 6),
).filter(lambda c: c.n_class + c.n_regr > 0)


@settings(max_examples=20, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(case=cases)
def test_report_is_written_whatever_the_data(case):
    with tempfile.TemporaryDirectory() as tmp:
        out, doc = _write(case, Path(tmp))
        target(float(check_document(out, doc)), label="bins with the estimate at or beyond an interval end")


# Two cases found by searching seeds of the generator above, kept because each is the failure of issue 19:
# ROUNDING: sklearn's AUC-PR and the weighted bootstrap's differ by ~1e-17 where both models are perfect, so a bin's
#   median is 5.6e-17 against an interval of [0, 0]: errorbar(yerr=[m - lo, hi - m]) raised on -5.6e-17.
# BEYOND: a median over 5 tasks lies clearly above the percentile interval of its resampled medians.
ROUNDING = Case(seed=1, n_compounds=150, n_class=4, n_regr=3)
BEYOND = Case(seed=57, n_compounds=134, n_class=7, n_regr=1, label_density=1.0, pos_rate=0.03,
              fed_mode="informative", alone_mode="random")


def _bins_outside(doc: dict, strict: bool) -> list[dict]:
    found = []
    for b in doc["figures"]["domain"]["bins"]:
        for ms in b["kinds"].values():
            for s in ms.values():
                m, lo, hi = s["median_delta"], s["ci_low"], s["ci_high"]
                if m is None or lo is None:
                    continue
                if stats.outside_interval(m, lo, hi) if strict else (m < lo or m > hi):
                    found.append(s)
    return found


@pytest.mark.parametrize("case, strict", [(ROUNDING, False), (BEYOND, True)], ids=["rounding", "beyond"])
def test_a_median_outside_its_interval_is_drawn_as_it_is(case, strict, tmp_path):
    out, doc = _write(case, tmp_path)
    outside = _bins_outside(doc, strict)
    assert outside, "the case no longer has a bin outside its interval: search the generator for another seed"
    assert check_document(out, doc) >= 1
    if not strict:  # a rounding difference is drawn and reported as it is, but not flagged as "outside"
        assert not any(stats.outside_interval(s["median_delta"], s["ci_low"], s["ci_high"]) for s in outside)
    table = (out / "domain.csv").read_text()
    s = outside[0]
    assert repr(s["median_delta"])[:8] in table and repr(s["ci_high"])[:8] in table  # reported as is, not clamped


def test_hand_made_pathological_figures_render(tmp_path):
    """Estimates at, below and above an interval end, degenerate and missing intervals, huge values, one bin only:
    the plots, the page and the CSV files are made, and each plot shows exactly those numbers."""
    _, doc = _write(Case(seed=3, n_compounds=80, n_class=6, n_regr=1, odd_names=True), tmp_path)
    assert any("$\\nocommand$" in t["task"] for t in doc["figures"]["tasks"])  # mathtext would fail on it
    odd = {"task": "bad$\\nocommand$tex", "verdict": "helped",
           "metrics": {"auc_pr": {"delta": 0.4, "ci_low": 0.1, "ci_high": 0.3}}}  # delta beyond its interval
    assert "nocommand" in plots.forest([odd], "auc_pr")
    every = [(0.01, 0.01, 0.03), (0.03, 0.01, 0.03), (-0.02, 0.01, 0.03), (0.05, 0.01, 0.03), (0.0, 0.0, 0.0),
             (0.02, None, None), (None, -0.01, 0.01), (None, None, None), (1e-17, 0.0, 0.0), (-1e12, -5.0, 3.0)]
    for variants, flagged in ((every, True), ([(0.03, 0.01, 0.03)], False), ([(0.05, 0.01, 0.03)], True)):
        d = copy.deepcopy(doc)
        template = d["figures"]["domain"]["bins"][0]
        assert template["kinds"]
        bins = []
        for k, (m, lo, hi) in enumerate(variants):
            b = copy.deepcopy(template)
            b.update(bin=k, label=f"bin {k}", n_compounds=k)
            for ms in b["kinds"].values():
                for s in ms.values():
                    s.update(median_delta=m, ci_low=lo, ci_high=hi, n_tasks=0 if m is None else 3)
            bins.append(b)
        d["figures"]["domain"]["bins"] = bins
        for kind in d["figures"]["summary"]["headline"]:
            check_domain_drawn(d["figures"]["domain"], kind, stats.PRIMARY[kind])
        page = render(d, make_plots(d))
        assert page.count("<svg") >= 3
        domain_part = page[page.index("<h2>Applicability domain"):page.index("<h2>Over the rounds")]
        assert (OUTSIDE in domain_part) == flagged
        n_entries = sum(len(ms) for ms in template["kinds"].values())
        assert len(csv_tables(d)["domain.csv"].splitlines()) == 1 + len(bins) * n_entries


def test_non_finite_predictions_are_a_clear_error(tmp_path):
    from fedchem.algo.predictions import load_predictions, save_predictions
    from fedchem.opener.errors import DataError

    info = write_run(tmp_path, {"p": Case(seed=5, n_compounds=60)})
    path = info["run_dir"] / "partners" / "p" / "test_predictions.npz"
    p = load_predictions(path)
    scores = np.array(p.class_scores)
    scores[0, 0] = np.nan
    save_predictions(path, p.rows, p.compound_ids, scores, p.regr_preds, class_tasks=p.class_tasks,
                     regr_tasks=p.regr_tasks)
    with pytest.raises(DataError, match="non-finite classification values") as exc:
        load_inputs(info["run_dir"], "p", info["alone"]["p"], info["prepared"]["p"])
    assert "diverged" in exc.value.fix and str(path) in exc.value.where
