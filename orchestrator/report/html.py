"""The report as one self-contained HTML file: inline CSS, a few lines of inline JS to sort tables, inline SVG plots.

No external resource of any kind (no CDN, font or image URL), so it opens offline and leaks nothing when opened.
Every text is escaped; numbers are formatted here and carry their raw value in data-sort for sorting.
"""

from __future__ import annotations

import html
import math

from fedchem.orchestrator.report import stats
from fedchem.orchestrator.report.summary import interval, signed

CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#222;
background:#fafafa}
main{max-width:1180px;margin:0 auto;padding:24px 32px 64px;background:#fff}
h1{font-size:1.7em;margin:0 0 4px}h2{margin-top:2.2em;border-bottom:2px solid #386cb0;padding-bottom:4px}
h3{margin-top:1.6em}.sub{color:#666;margin:0 0 18px}
.verdict{font-size:1.25em;font-weight:600;padding:14px 18px;border-radius:6px;margin:12px 0}
.v-helped{background:#e3f4ee;border-left:6px solid #1b9e77}.v-hurt{background:#fbe9dd;border-left:6px solid #d95f02}
.v-mixed,.v-no-difference,.v-not-evaluable{background:#eee;border-left:6px solid #888}
.summary li{margin:6px 0;line-height:1.45}
table{border-collapse:collapse;margin:10px 0;font-size:.86em}
th,td{padding:4px 8px;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th{background:#f1f4f9;cursor:pointer;user-select:none;position:sticky;top:0}
th.sorted-asc::after{content:" \\25B2"}th.sorted-desc::after{content:" \\25BC"}
td.l,th.l{text-align:left}tr:hover td{background:#f7f9fc}
.helped{color:#127a5c;font-weight:600}.hurt{color:#b54a00;font-weight:600}.no-difference,.not-evaluable{color:#777}
.plots{display:flex;flex-wrap:wrap;gap:18px;align-items:flex-start}.plots figure{margin:0}
figcaption{font-size:.8em;color:#555;max-width:520px}.facts td{text-align:left}
.note{font-size:.85em;color:#555;max-width:900px}.wrap{overflow-x:auto;max-height:640px;overflow-y:auto}
"""

JS = """
document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){th.addEventListener('click',function(){
    var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows),asc=!th.classList.contains('sorted-asc');
    t.querySelectorAll('th').forEach(function(h){h.classList.remove('sorted-asc','sorted-desc')});
    th.classList.add(asc?'sorted-asc':'sorted-desc');
    rows.sort(function(a,b){var x=a.cells[i].dataset.sort,y=b.cells[i].dataset.sort,
      nx=parseFloat(x),ny=parseFloat(y),r;
      if(!isNaN(nx)&&!isNaN(ny)){r=nx-ny}else if(isNaN(nx)&&!isNaN(ny)){return 1}else if(!isNaN(nx)){return -1}
      else{r=String(x).localeCompare(String(y))}return asc?r:-r});
    rows.forEach(function(r){body.appendChild(r)});});});});
"""


def esc(v) -> str:
    return html.escape(str(v), quote=True)


def _fmt(v, digits: int = 3) -> str:
    if v is None:
        return "n/a"
    f = float(v)
    return f"{f:.{digits}f}".replace("-", "−") if math.isfinite(f) else "n/a"


def _pct(v) -> str:
    if v is None or not math.isfinite(float(v)):
        return "n/a"
    return f"{100 * float(v):+.1f}%".replace("-", "−")


def _cell(text: str, sort=None, cls: str = "") -> str:
    key = sort if sort is not None else text
    if isinstance(key, float) and not math.isfinite(key):
        key = ""
    c = f' class="{cls}"' if cls else ""
    return f'<td{c} data-sort="{esc("" if key is None else key)}">{text}</td>'


def _table(headers: list[tuple[str, bool]], rows: list[str], sortable: bool = True, cls: str = "") -> str:
    head = "".join(f'<th class="{"l" if left else ""}">{esc(h)}</th>' for h, left in headers)
    klass = " ".join(x for x in ("sortable" if sortable else "", cls) if x)
    return (f'<div class="wrap"><table class="{klass}"><thead><tr>{head}</tr></thead><tbody>'
            + "".join(rows) + "</tbody></table></div>")


def _task_interval(x: dict) -> str:
    """"lo … hi" of one task's delta, "†" when the delta lies outside it; "n/a" without an interval."""
    lo, hi = x.get("ci_low"), x.get("ci_high")
    if lo is None or hi is None or not (math.isfinite(float(lo)) and math.isfinite(float(hi))):
        return "n/a"
    mark = " †" if stats.outside_interval(x.get("delta"), lo, hi) else ""
    return f"{signed(lo)} … {signed(hi)}{mark}"


def task_table(tasks: list[dict], kind: str) -> str:
    """One sortable row per task: both models on each metric, deltas, interval, verdict."""
    ms = stats.metrics_of(kind)
    headers = [("task", True), ("assay type", True), ("n", False)]
    headers.append(("actives / inactives", False) if kind == "classification" else ("censored", False))
    for m in ms:
        lab = stats.METRICS[m].label
        headers += [(f"{lab} alone", False), (f"{lab} federated", False), (f"Δ {lab}", False),
                    (f"Δ {lab} 95% CI", False), (f"relative Δ {lab}", False)]
        if stats.METRICS[m].bounded_by_one:
            headers.append((f"improvement to perfect ({lab})", False))
    headers.append(("verdict", True))
    rows = []
    for t in tasks:
        cells = [_cell(esc(t["task"]), t["task"], "l"), _cell(esc(t["assay_type"]), t["assay_type"], "l"),
                 _cell(str(t["n"]), t["n"])]
        if kind == "classification":
            cells.append(_cell(f"{t['n_pos']} / {t['n_neg']}", t["n_pos"]))
        else:
            cells.append(_cell(str(t["n_censored"]), t["n_censored"]))
        for m in ms:
            x = t["metrics"][m]
            cells += [_cell(_fmt(x["alone"]), x["alone"]), _cell(_fmt(x["federated"]), x["federated"]),
                      _cell(signed(x["delta"]), x["delta"]),
                      _cell(esc(_task_interval(x)), x["ci_low"]),
                      _cell(_pct(x["relative_delta"]), x["relative_delta"])]
            if stats.METRICS[m].bounded_by_one:
                cells.append(_cell(_pct(x["improvement_to_perfect"]), x["improvement_to_perfect"]))
        v = t["verdict"]
        cells.append(_cell(esc(v), v, "l " + v.replace(" ", "-")))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return _table(headers, rows)


def summary_table(block: dict) -> str:
    headers = [("metric", True), ("tasks", False), ("mean alone", False), ("mean federated", False),
               ("median Δ (per task)", False), ("95% CI of the median Δ", False)]
    rows = []
    for m, s in block["metrics"].items():
        rows.append("<tr>" + "".join([
            _cell(esc(stats.METRICS[m].label), m, "l"), _cell(str(s["n_tasks"]), s["n_tasks"]),
            _cell(_fmt(s["mean_alone"]), s["mean_alone"]), _cell(_fmt(s["mean_federated"]), s["mean_federated"]),
            _cell(signed(s["median_delta"]), s["median_delta"]),
            _cell(esc(interval(s["ci_low"], s["ci_high"], estimate=s["median_delta"])), s["ci_low"])]) + "</tr>")
    return _table(headers, rows, sortable=False)


def breakdown_table(rows_in: list[dict]) -> str:
    headers = [("kind", True), ("assay type", True), ("auxiliary", True), ("tasks", False), ("helped", False),
               ("hurt", False), ("no difference", False), ("not evaluable", False), ("primary metric", True),
               ("median Δ", False)]
    rows = []
    for b in rows_in:
        rows.append("<tr>" + "".join([
            _cell(esc(b["kind"]), b["kind"], "l"), _cell(esc(b["assay_type"]), b["assay_type"], "l"),
            _cell("yes" if b["auxiliary"] else "no", int(b["auxiliary"]), "l"), _cell(str(b["n_tasks"]), b["n_tasks"]),
            _cell(str(b["helped"]), b["helped"]), _cell(str(b["hurt"]), b["hurt"]),
            _cell(str(b["no difference"]), b["no difference"]), _cell(str(b["not evaluable"]), b["not evaluable"]),
            _cell(esc(stats.METRICS[b["primary_metric"]].label), b["primary_metric"], "l"),
            _cell(signed(b["median_delta"]), b["median_delta"])]) + "</tr>")
    return _table(headers, rows)


def domain_table(domain: dict) -> str:
    headers = [("similarity to training set", True), ("test compounds", False)]
    metric_keys = []
    for kind in ("classification", "regression"):
        if any(kind in b["kinds"] for b in domain["bins"]):
            for m in stats.metrics_of(kind):
                metric_keys.append((kind, m))
                lab = stats.METRICS[m].label
                headers += [(f"median Δ {lab}", False), (f"95% CI", False), (f"tasks ({lab})", False)]
    rows = []
    for b in domain["bins"]:
        cells = [_cell(esc(b["label"]), b["bin"], "l"), _cell(str(b["n_compounds"]), b["n_compounds"])]
        for kind, m in metric_keys:
            s = b["kinds"].get(kind, {}).get(m, {})
            cells += [_cell(signed(s.get("median_delta")), s.get("median_delta")),
                      _cell(esc(interval(s.get("ci_low"), s.get("ci_high"), estimate=s.get("median_delta"))),
                            s.get("ci_low")),
                      _cell(str(s.get("n_tasks", 0)), s.get("n_tasks", 0))]
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return _table(headers, rows)


def _chosen(picks: dict, unit: str) -> str:
    return ", ".join(f"{kind} {unit} {i}" for kind, i in picks.items()) or "not recorded (an older fedchem)"


def selection_section(fig: dict) -> str:
    """Which rounds / epochs are compared, and the rule (the same on both sides, on the validation fold only)."""
    sel = fig.get("selection") or {}
    rule = sel.get("rule") or {}
    said = "; ".join(f"{kind}: {'highest' if r.get('higher_is_better') else 'lowest'} mean validation "
                     f"{stats.METRICS[r['metric']].label if r.get('metric') in stats.METRICS else r.get('metric')}"
                     for kind, r in rule.items()) or "not recorded"
    text = (f"<p class='note'>Both models are chosen by the same rule, per kind of task, on your validation fold only "
            f"(the test fold never enters a choice): {esc(said)} over your non-auxiliary tasks; ties keep the earlier "
            f"one. Federated: {esc(_chosen(sel.get('federated', {}), 'round'))} of {esc(sel.get('last_round'))}; "
            f"alone: {esc(_chosen(sel.get('alone', {}), 'epoch'))} of {esc(sel.get('epochs_run'))} run. Each kind's "
            "test predictions come from its chosen model.</p>")
    tuned = fig.get("finetuned")
    if tuned:
        text += (f"<h3>Federated, then fine-tuned on your own data ({esc(tuned.get('epochs'))} epochs after the last "
                 f"round; {esc(_chosen(tuned.get('selected', {}), 'epoch'))}, chosen by the same rule), against the "
                 "same alone model</h3>")
        for kind, block in tuned["summary"].items():
            text += f"<h4>{esc(kind.capitalize())} tasks</h4>" + summary_table(block)
    last = fig.get("last_round")
    if last:
        text += (f"<h3>The last round (round {esc(last.get('round'))}) instead of the chosen one, against the same "
                 "alone model</h3>")
        for kind, block in last["summary"].items():
            text += f"<h4>{esc(kind.capitalize())} tasks</h4>" + summary_table(block)
    return text


def tuning_section(tuning: dict | None) -> str:
    """Equal budgets: the grid both sides searched, each point's validation figure, and the point each chose."""
    if not tuning:
        return ""
    metric = tuning.get("metric")
    label = stats.METRICS[metric].label if metric in stats.METRICS else str(metric)
    grid = "; ".join(f"{k} ∈ {{{', '.join(f'{v:g}' for v in vals)}}}" for k, vals in (tuning.get("grid") or {}).items())
    rows = []
    for point in (tuning.get("alone") or {}).get("figures", {}):
        cells = [_cell(esc(point))]
        for side in ("alone", "federated"):
            s = tuning.get(side) or {}
            v = (s.get("figures") or {}).get(point)
            cells.append(_cell(_fmt(v) + (" (chosen)" if s.get("point") == point else ""), v))
        rows.append("<tr>" + "".join(cells) + "</tr>")
    head = [("grid point", False), (f"alone: validation {label}", True), (f"federated: validation {label}", True)]
    return (f"<h3>Equal budgets</h3><p class='note'>Both sides searched the same grid ({esc(grid)}); each chose its "
            f"point by the same rule on your validation fold ({esc(tuning.get('kind'))} tasks, "
            f"{'highest' if tuning.get('higher_is_better') else 'lowest'} {esc(label)}). Alone: "
            f"{esc((tuning.get('alone') or {}).get('point'))}; federated: "
            f"{esc((tuning.get('federated') or {}).get('point'))}.</p>" + _table(head, rows, sortable=False))


def conformal_section(conf: dict | None) -> str:
    """Conformal efficiency per task, federated vs alone, with each model's validity check."""
    if not conf:
        return ("<p class='note'>Not available: the run or the baseline saved no validation predictions (made by an "
                "older fedchem).</p>")
    eps = conf["significance"]
    out = (f"<p class='note'>Mondrian inductive conformal prediction at significance ε = {eps:g}, as MELLODDY's "
           "conformal efficiency: each model is calibrated on its own predictions for your validation fold, class by "
           "class (classification) or task by task (regression, uncensored values), and judged on the test fold. "
           "Classification: efficiency = the share of test compounds given a single label (higher is better). "
           f"Regression: the width of the interval that should hold {100 * (1 - eps):.0f}% of the values (lower is "
           f"better). Validity: the share of test values the sets hold; it should be at least {1 - eps:.2f}, and a "
           "task fails the check when its error count is improbable for that rate (one-sided binomial p &lt; 0.05): "
           "then its efficiency is not to be trusted.</p>")
    headers = [("kind", True), ("figure", True), ("tasks", False), ("median federated", False),
               ("median alone", False), ("median Δ", False), ("federated better", False), ("alone better", False),
               ("valid federated", False), ("valid alone", False)]
    rows = []
    for kind, b in conf["summary"].items():
        rows.append("<tr>" + "".join([
            _cell(esc(kind), kind, "l"),
            _cell(esc(b["figure"] + (" (higher is better)" if b["higher_is_better"] else " (lower is better)")),
                  b["figure"], "l"),
            _cell(f"{b['n_evaluated']} / {b['n_tasks']}", b["n_evaluated"]),
            _cell(_fmt(b["median_federated"]), b["median_federated"]),
            _cell(_fmt(b["median_alone"]), b["median_alone"]),
            _cell(signed(b["median_delta"]), b["median_delta"]),
            _cell(str(b["federated_better"]), b["federated_better"]),
            _cell(str(b["alone_better"]), b["alone_better"]),
            _cell(f"{b['valid_federated']} / {b['n_evaluated']}", b["valid_federated"]),
            _cell(f"{b['valid_alone']} / {b['n_evaluated']}", b["valid_alone"])]) + "</tr>")
    out += _table(headers, rows, sortable=False)
    trows = []
    for t in conf["tasks"]:
        if t["auxiliary"]:
            continue
        fig_name = "efficiency" if t["kind"] == "classification" else "width"
        f, a = t["federated"], t["alone"]
        trows.append("<tr>" + "".join([
            _cell(esc(t["task"]), t["task"], "l"), _cell(esc(t["kind"]), t["kind"], "l"),
            _cell(str(f["n"]), f["n"]), _cell(str(f["n_calibration"]), f["n_calibration"]),
            _cell(_fmt(a[fig_name]), a[fig_name]), _cell(_fmt(f[fig_name]), f[fig_name]),
            _cell(signed(t["delta"]), t["delta"]),
            _cell(_fmt(a["validity"]), a["validity"]), _cell(_fmt(f["validity"]), f["validity"]),
            _cell(esc({True: "yes", False: "NO", None: "n/a"}[a["valid"]]), str(a["valid"]), "l"),
            _cell(esc({True: "yes", False: "NO", None: "n/a"}[f["valid"]]), str(f["valid"]), "l"),
            _cell(esc(f["reason"] or a["reason"]), f["reason"] or a["reason"], "l")]) + "</tr>")
    out += "<h3>Per task</h3>" + _table(
        [("task", True), ("kind", True), ("test values", False), ("validation values", False),
         ("efficiency / width alone", False), ("efficiency / width federated", False), ("Δ", False),
         ("validity alone", False), ("validity federated", False), ("valid alone", True),
         ("valid federated", True), ("note", True)], trows)
    return out


def facts_table(facts: dict) -> str:
    rows = "".join(f"<tr><th class='l'>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts.items())
    return f'<table class="facts"><tbody>{rows}</tbody></table>'


def _g(v) -> str:
    return "n/a" if v is None else f"{float(v):.3g}"


def privacy_table(privacy: dict) -> str:
    """Differential privacy, round by round: survivors, effective noise multiplier, epsilon alone and composed."""
    rows = [f"<tr><td>{r['round']}</td><td>{r['survivors']}</td><td>{'yes' if r['in_sum'] else 'no'}</td>"
            f"<td>{_g(r['noise_multiplier'])}</td><td>{_g(r['epsilon_round'])}</td>"
            f"<td>{_g(r['epsilon_total'])}</td></tr>" for r in privacy.get("rounds", [])]
    head = ("<tr><th>round</th><th>survivors</th><th>your update in the sum</th><th>noise multiplier</th>"
            f"<th>epsilon of the round</th><th>epsilon so far (delta {esc(privacy.get('delta'))})</th></tr>")
    return (f"<h3>Differential privacy, round by round</h3><table class='facts'><thead>{head}</thead>"
            f"<tbody>{''.join(rows)}</tbody></table>")


def _figure(svg: str | None, caption: str) -> str:
    if not svg:
        return ""
    return f"<figure>{svg}<figcaption>{esc(caption)}</figcaption></figure>"


def render(doc: dict, plots: dict[str, str | None]) -> str:
    """The whole HTML document from the report's figures (`doc`) and its plots (SVG by name)."""
    fig = doc["figures"]
    verdict = doc["overall"]
    parts = [f"<h1>Did joining the consortium help? — partner {esc(doc['partner'])}</h1>",
             f"<p class='sub'>Run <b>{esc(doc['run']['run name'])}</b> · report generated {esc(doc['generated'])} · "
             f"{fig['n_test_compounds']} test compounds (the same held-out fold for both models)</p>",
             f"<div class='verdict v-{esc(verdict.replace(' ', '-'))}'>{esc(doc['summary'][0])}</div>",
             "<ul class='summary'>" + "".join(f"<li>{esc(s)}</li>" for s in doc["summary"][1:]) + "</ul>"]

    parts.append("<h2>Headline figures</h2>")
    for kind, block in fig["summary"]["headline"].items():
        parts.append(f"<h3>{esc(kind.capitalize())} tasks</h3>" + summary_table(block))
        m = block["primary_metric"]
        parts.append("<div class='plots'>"
                     + _figure(plots.get(f"hist_{kind}"), f"Distribution of the per-task change in "
                               f"{stats.METRICS[m].label}; green: helped, red: hurt, grey: within noise.")
                     + _figure(plots.get(f"scatter_{kind}"), f"Each task's {stats.METRICS[m].label}, alone vs "
                               "federated; the dashed line is 'no change'.")
                     + _figure(plots.get(f"forest_{kind}"), f"Each task's change in {stats.METRICS[m].label} "
                               "with its 95% bootstrap interval (over test compounds).")
                     + "</div>")

    parts.append("<h2>Which models are compared</h2>" + selection_section(fig) + tuning_section(fig.get("tuning")))

    parts.append("<h2>Per task</h2><p class='note'>Click a column header to sort. Δ = federated − alone on the same "
                 "test compounds; relative Δ = Δ / |alone|; improvement to perfect = Δ / (1 − alone) (MELLODDY's "
                 "relative improvement towards a perfect score, for metrics whose best value is 1). The verdict uses "
                 "the kind's primary metric (AUC-PR for classification, R² for regression): helped / hurt when the "
                 "95% bootstrap interval of the task's Δ excludes 0, otherwise no difference beyond noise. † marks a Δ "
                 "that lies outside its own interval (see the last section).</p>")
    for kind in ("classification", "regression"):
        main = [t for t in fig["tasks"] if t["kind"] == kind and not t["auxiliary"]]
        if main:
            parts.append(f"<h3>{esc(kind.capitalize())} tasks ({len(main)})</h3>" + task_table(main, kind))
    parts.append("<h3>By task kind and assay type</h3>" + breakdown_table(fig["breakdown"]))

    aux = [t for t in fig["tasks"] if t["auxiliary"]]
    parts.append("<h2>Auxiliary tasks</h2>")
    if aux:
        parts.append("<p class='note'>Trained on with a lower weight to help the others; not part of the headline "
                     "figures.</p>")
        for kind, block in fig["summary"]["auxiliary"].items():
            parts.append(f"<h3>Auxiliary {esc(kind)} tasks</h3>" + summary_table(block)
                         + task_table([t for t in aux if t["kind"] == kind], kind))
    else:
        parts.append("<p class='note'>This partner has no auxiliary tasks.</p>")

    parts.append("<h2>Applicability domain: does federation help more on unfamiliar chemistry?</h2>"
                 "<p class='note'>Each test compound is placed by its nearest-neighbour Tanimoto similarity (binarised "
                 "fingerprints) to your own training compounds. In each bin every task is re-evaluated on the test "
                 "compounds of that bin, for both models; the table gives the median over tasks of the change, with "
                 "a bootstrap interval. A task enters a bin only with at least "
                 f"{fig['domain'].get('min_values_per_task', 5)} labelled test compounds there (and both classes, "
                 "for classification)."
                 "</p>" + domain_table(fig["domain"]))
    parts.append("<div class='plots'>" + "".join(
        _figure(plots.get(f"domain_{kind}"), f"Median per-task change in "
                f"{stats.METRICS[stats.PRIMARY[kind]].label} by similarity bin ({kind}): the bar (black dot) is the "
                "median, the capped segment its 95% bootstrap interval, drawn from its own ends (it need not "
                "hold the dot).")
        for kind in fig["summary"]["headline"]) + "</div>")

    parts.append("<h2>Conformal efficiency: how often can you act on a single prediction?</h2>"
                 + conformal_section(fig.get("conformal")))

    parts.append("<h2>Over the rounds</h2><p class='note'>Validation-fold figures of the global model after each round "
                 "(mean over your non-auxiliary tasks), as logged by your own train tasks during the run, and the "
                 "final evaluation of the last round; the dashed line is the alone model at its chosen epochs. These "
                 "are the only figures here not recomputed from test predictions.</p>")
    curve_figs = "".join(_figure(plots.get(f"curve_{kind}_{m}"), f"Validation {stats.METRICS[m].label} per round "
                                 f"({kind}).") for kind in ("classification", "regression")
                         for m in stats.metrics_of(kind))
    parts.append(f"<div class='plots'>{curve_figs}</div>" if curve_figs else
                 "<p class='note'>No per-round validation figures were logged for this run.</p>")

    parts.append("<h2>The run</h2>" + facts_table(doc["run"]))
    if doc.get("privacy"):
        parts.append(privacy_table(doc["privacy"]))
    meth = fig["method"]
    parts.append("<h2>How these figures were computed</h2><p class='note'>"
                 "All figures above except the round curves are recomputed from the two models' saved test-fold "
                 "predictions (and, for conformal efficiency, their validation-fold predictions) and your prepared "
                 "labels (metrics: fedchem.metrics, scikit-learn's definitions). Intervals: "
                 f"{meth['bootstrap_replicates']} paired bootstrap resamples of the test compounds (seed "
                 f"{meth['seed']}), percentile {int(round(100 * meth['level']))}% intervals, not corrected for the "
                 "number of tasks; one training seed per model, so seed-to-seed variation is not included. "
                 "An interval is reported as the bootstrap gives it and is never stretched to hold its estimate: "
                 "a percentile interval of resampled medians (or of a resampled AUC) need not contain the figure "
                 "computed on all compounds, typically in a small bin or over few tasks, where some tasks drop "
                 "out of the resamples that leave them one class. Such a figure is flagged ('the estimate lies "
                 "outside it', †); the verdicts follow the intervals. "
                 "Regression RMSE is censor-aware; R² uses the uncensored values. This report was built from your "
                 "own private files and the run's public ledger only; it names no other partner's data. The same "
                 "figures are in report.json and the CSV files beside this page.</p>")
    body = "\n".join(parts)
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'>"
            f"<title>fedchem report — {esc(doc['partner'])}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main><script>{JS}</script></body></html>\n")
