"""One partner's report: does joining the consortium make my models better, by how much, on which tasks?

`write_report` reads only that partner's private files (its run folder, its alone baseline, its prepared data)
and the run's public ledger and settings, recomputes every figure from the saved test predictions, and writes
report.html (self-contained, opens offline) with report.json, tasks.csv, summary.csv, domain.csv, curves.csv and
conformal.csv beside it, in one folder written atomically. The demo and `fedchem report` call it.

`write_reports` writes several partners' reports in turn (the demo's last step): one partner's failure never
stops the others, and is turned into one FedchemError naming that partner (what / where / what to do). An
unexpected exception (a bug in the report, not a problem with the partner's files) is kept with its traceback in
a file in that partner's report folder, and named in the error, so no traceback reaches the terminal.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import math
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fedchem.opener.errors import ConfigError, FedchemError, os_errors
from fedchem.opener.fileio import atomic_folder, atomic_write_text, lock_down
from fedchem.opener.output_guard import check_output_folder, is_output_of
from fedchem.orchestrator.report import plots
from fedchem.orchestrator.report import stats
from fedchem.orchestrator.report.compare import CompareSettings, compare, selection_facts
from fedchem.orchestrator.report.conformal import conformal_figures
from fedchem.orchestrator.report.curves import curves as read_curves
from fedchem.orchestrator.report.html import render
from fedchem.orchestrator.budget import dp_from_logs, partner_budget_from_logs
from fedchem.orchestrator.ledger import Ledger, partner_ledger
from fedchem.orchestrator.report.inputs import PREDICTIONS, ReportInputs, load_inputs, resolve_prepared_dir
from fedchem.orchestrator.report.summary import overall, summary_sentences

FORMAT = "fedchem-report/1"
FILES = ["report.json", "tasks.csv", "summary.csv", "domain.csv", "curves.csv", "conformal.csv", "report.html"]


def default_alone_dir(run_dir: Path, partner: str, prepared_dir: Path | None = None) -> Path:
    """Where a partner's alone baseline is looked for when not given: RUN_DIR/partners/NAME/alone, then the demo's
    layout RUN_DIR/../alone/NAME, then `fedchem train-local`'s default output PREPARED_DIR-alone."""
    candidates = [Path(run_dir) / "partners" / partner / "alone", Path(run_dir).parent / "alone" / partner]
    if prepared_dir is not None:
        prepared = Path(prepared_dir).absolute()
        candidates.append(prepared.with_name(prepared.name + "-alone"))
    for c in candidates:
        if (c / PREDICTIONS).is_file():
            return c
    raise ConfigError(f"no alone baseline found for partner '{partner}'",
                      where=" or ".join(str(c) for c in candidates),
                      fix="train it with `fedchem train-local PREPARED_DIR --out DIR` and pass --alone DIR")


def run_facts(inp: ReportInputs) -> dict[str, str]:
    """The run's public facts, from the ledger and settings (counts only: no other partner is named)."""
    led, s = inp.ledger, inp.settings
    drops = sorted(led.dropped.values())
    fp, model, tr = s.get("fingerprint", {}), s.get("model", {}), s.get("training", {})
    facts = {
        "run name": led.run_name,
        "status": led.status,
        "partners in the consortium": str(len(led.partners)),
        "rounds completed / planned": f"{led.completed_rounds} / {led.rounds_planned}",
        "dropouts": ("none" if not drops else
                     f"{len(drops)} partner(s) dropped out (in round {', '.join(map(str, drops))}); the rounds "
                     "completed with the others"),
        "secure aggregation": "on (the aggregator saw only masked trunk updates)" if led.secure else
                              "OFF (test-only switch: updates went to the aggregator unmasked)",
    }
    facts["differential privacy"] = _dp_fact(inp)
    if fp:
        facts["fingerprints"] = (f"ECFP radius {fp.get('radius')}, {fp.get('kind')}, {fp.get('size')} columns, "
                                 f"scrambled: {'yes' if fp.get('scramble') else 'no'}")
    if model:
        facts["model"] = (f"hidden layers {model.get('hidden_sizes')}, {model.get('activation', 'relu')}, dropout "
                          f"{model.get('dropout')}, input {model.get('input_transform')}")
    if tr:
        facts["training"] = (f"{tr.get('epochs_per_round')} epoch(s) per round, batch {tr.get('batch_size')}, "
                             f"learning rate {tr.get('learning_rate')}; validation fold {tr.get('validation_fold')}, "
                             f"test fold {tr.get('test_fold')}")
    facts["your compounds"] = (f"{inp.data.n_compounds} ({len(inp.training_rows)} in training folds, "
                               f"{inp.rows.size} in the test fold)")
    return facts


def privacy_budget(inp: ReportInputs, colluding: int = 0):
    """This partner's DP budget over the run's completed rounds, from what its own train tasks logged (None when
    they applied no DP); `colluding` partners subtract their own noise."""
    return partner_budget_from_logs(inp.partner, inp.round_logs, inp.ledger, colluding)


def _dp_fact(inp: ReportInputs) -> str:
    b = privacy_budget(inp)
    if b is None:
        return ("off: the summed trunk update is exact, so an input row only your batches touched in a round shows "
                "your update there (see the README's threat model)")
    dp = dp_from_logs(inp.round_logs)[0]
    worst = max((r.epsilon_round for r in b.rounds if r.in_sum), default=0.0)
    text = (f"on: epsilon {b.epsilon:.3g} at delta {b.delta:g} for your training data over the "
            f"{sum(r.in_sum for r in b.rounds)} round(s) your update was in (one round at most {worst:.3g}); "
            f"clip_norm {dp.clip_norm:g}, noise_multiplier {dp.noise_multiplier:g}; against the aggregator and every "
            "other organisation")
    if len(inp.ledger.partners) > 2:
        col = privacy_budget(inp, colluding=1)
        text += (f"; if one partner colluded with the aggregator: epsilon {col.epsilon:.3g}"
                 if math.isfinite(col.epsilon)
                 else "; a partner colluding with the aggregator in a round with the threshold's number of survivors "
                      "removes the guarantee")
    return text


def _json_ready(value):
    """NaN/inf become None, numpy scalars Python numbers (the report never imports torch, so not algo's helper)."""
    if isinstance(value, dict):
        return {k: _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    return value


def build_document(inp: ReportInputs, cfg: CompareSettings = CompareSettings(), tuning: dict | None = None) -> dict:
    """Every figure of the report, JSON-ready (NaN as None); `tuning` (the demo's equal-budget grid) is recorded."""
    raw = compare(inp, cfg)
    raw["tuning"] = tuning
    raw["selection"] = selection_facts(inp)
    if inp.federated_last is not None:  # the last round instead of the chosen one, against the same alone model
        last = compare(dataclasses.replace(inp, federated=inp.federated_last), cfg)
        raw["last_round"] = {"round": raw["selection"]["last_round"], "summary": last["summary"]["headline"]}
    if inp.federated_finetuned is not None:  # the third model: federated, then fine-tuned alone
        tuned = compare(dataclasses.replace(inp, federated=inp.federated_finetuned), cfg)
        info = (inp.federated_metrics or {}).get("finetuned", {})
        raw["finetuned"] = {"epochs": info.get("epochs"), "selected": info.get("selected", {}),
                            "summary": tuned["summary"]["headline"]}
    raw["conformal"] = conformal_figures(inp, cfg.significance)
    figures = _json_ready(raw)
    doc = {
        "format": FORMAT,
        "partner": inp.partner,
        "generated": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "run": run_facts(inp),
        "figures": figures,
        "curves": _json_ready(read_curves(inp.round_logs, inp.federated_metrics, inp.alone_metrics)),
    }
    budget = privacy_budget(inp)
    doc["privacy"] = _json_ready(budget.as_dict()) if budget is not None else None
    doc["overall"] = overall(figures)
    doc["summary"] = summary_sentences(figures)
    return doc


def make_plots(doc: dict) -> dict[str, str | None]:
    """Every plot of the report as inline SVG, by name."""
    fig = doc["figures"]
    out: dict[str, str | None] = {}
    for kind in fig["summary"]["headline"]:
        main = [t for t in fig["tasks"] if t["kind"] == kind and not t["auxiliary"]]
        m = stats.PRIMARY[kind]
        out[f"hist_{kind}"] = plots.delta_histogram(main, m)
        out[f"scatter_{kind}"] = plots.scatter(main, m)
        out[f"forest_{kind}"] = plots.forest(main, m)
        out[f"domain_{kind}"] = plots.domain_bars(fig["domain"], kind, m)
    for kind, series in doc["curves"]["series"].items():
        for m in series:
            out[f"curve_{kind}_{m}"] = plots.curve(doc["curves"], kind, m)
    return out


def _csv_text(header: list[str], rows: list[dict]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in header})
    return buf.getvalue()


def csv_tables(doc: dict) -> dict[str, str]:
    """The same figures as the HTML, as CSV texts by file name."""
    fig = doc["figures"]
    task_rows = []
    for t in fig["tasks"]:
        for m, x in t["metrics"].items():
            task_rows.append({**{k: t.get(k) for k in ("task", "kind", "assay_type", "auxiliary", "n", "n_pos",
                                                          "n_neg", "n_censored", "verdict")}, "metric": m, **x})
    summary_rows = []
    for group, blocks in fig["summary"].items():
        for kind, b in blocks.items():
            for m, s in b["metrics"].items():
                summary_rows.append({"group": group, "kind": kind, "metric": m, **s,
                                     **{k.replace(" ", "_"): v for k, v in b["verdicts"].items()}})
    domain_rows = []
    for b in fig["domain"]["bins"]:
        for kind, ms in b["kinds"].items():
            for m, s in ms.items():
                domain_rows.append({"bin": b["bin"], "label": b["label"], "n_compounds": b["n_compounds"],
                                    "kind": kind, "metric": m, **s})
    conformal_rows = []
    for t in (fig.get("conformal") or {}).get("tasks", []):
        for model in ("federated", "alone"):
            x = t[model]
            conformal_rows.append({"task": t["task"], "kind": t["kind"], "auxiliary": t["auxiliary"], "model": model,
                                   **{k: x.get(k) for k in ("efficiency", "width", "validity", "valid", "n",
                                                            "n_calibration", "reason")}})
    curve_rows = []
    cv = doc["curves"]
    for kind, series in cv["series"].items():
        for m, values in series.items():
            for r, v in zip(cv["rounds"], values):
                curve_rows.append({"round": r, "kind": kind, "metric": m, "federated_validation": v,
                                   "alone_validation_reference": cv["alone"].get(kind, {}).get(m)})
    return {
        "tasks.csv": _csv_text(["task", "kind", "assay_type", "auxiliary", "n", "n_pos", "n_neg", "n_censored",
                                "metric", "alone", "federated", "delta", "ci_low", "ci_high", "relative_delta",
                                "improvement_to_perfect", "verdict"], task_rows),
        "summary.csv": _csv_text(["group", "kind", "metric", "n_tasks", "mean_alone", "mean_federated",
                                  "median_delta", "ci_low", "ci_high", "helped", "hurt", "no_difference",
                                  "not_evaluable"], summary_rows),
        "domain.csv": _csv_text(["bin", "label", "n_compounds", "kind", "metric", "n_tasks", "median_delta",
                                 "ci_low", "ci_high", "mean_delta"], domain_rows),
        "curves.csv": _csv_text(["round", "kind", "metric", "federated_validation", "alone_validation_reference"],
                                curve_rows),
        "conformal.csv": _csv_text(["task", "kind", "auxiliary", "model", "efficiency", "width", "validity", "valid",
                                    "n", "n_calibration", "reason"], conformal_rows),
    }


def is_report(folder: Path) -> bool:
    """True if `folder` is a previous `fedchem report` output (its report.json says so), or what a report that
    failed on an internal error left: only its error log."""
    if is_output_of(folder, "report.json", FORMAT):
        return True
    return folder.is_dir() and [p.name for p in folder.iterdir()] == [ERROR_LOG]


def check_report_out(out_dir: Path, force: bool = False, protected=()) -> None:
    """A previous report folder is replaced; anything else only with --force, never a folder holding the run,
    the baseline, the prepared data or the configs (opener.output_guard)."""
    check_output_folder(out_dir, command="fedchem report", is_previous=is_report, force=force, protected=protected,
                        flag="--out")


def write_report(run_dir, name: str, alone_dir=None, out_dir=None, prepared_dir=None,
                 settings: CompareSettings | None = None, force: bool = False, tuning: dict | None = None) -> Path:
    """Write partner `name`'s report of the run in `run_dir` and return the path of report.html.

    alone_dir: its train-local output (default: see `default_alone_dir`); out_dir: where the files go (default:
    RUN_DIR/partners/NAME/report, inside the partner's private folder); prepared_dir: its prepared dataset
    (default: from the consortium config recorded in the ledger); tuning: how both models' settings were chosen
    (`orchestrator.demo.grid.choose_for_partner`), shown in the report. The folder is written whole, atomically: an
    existing one is replaced only if it is a previous report, or with `force`."""
    run_dir = Path(run_dir)
    ledger = partner_ledger(run_dir, name)  # a clear error about the partner before any about its files
    if not alone_dir:
        try:  # the prepared folder tells where train-local's default output is
            prepared = Path(prepared_dir) if prepared_dir else resolve_prepared_dir(Ledger.load(run_dir), name,
                                                                                    run_dir)
        except FedchemError:
            prepared = None
    alone_dir = Path(alone_dir) if alone_dir else default_alone_dir(run_dir, name, prepared)
    out_dir = (Path(out_dir) if out_dir else run_dir / "partners" / name / "report").absolute()
    protected = (run_dir / "ledger.json", run_dir / "settings.json", run_dir / "partners" / name / PREDICTIONS,
                 alone_dir, prepared_dir, ledger.consortium_path or None)
    check_report_out(out_dir, force, protected)
    inp = load_inputs(run_dir, name, alone_dir, prepared_dir)
    protected += (inp.data_dir,)
    doc = build_document(inp, settings or CompareSettings(), tuning=tuning)
    page = render(doc, make_plots(doc))
    files = {"report.json": json.dumps(doc, indent=2) + "\n", **csv_tables(doc), "report.html": page}
    with os_errors(out_dir), atomic_folder(out_dir) as tmp:
        for fname, text in files.items():
            (tmp / fname).write_text(text, encoding="utf-8")
        lock_down(tmp)  # a partner's report: owner-only
        check_report_out(out_dir, force, protected)  # again: the folder may have changed meanwhile
    return out_dir / "report.html"


ERROR_LOG = "report-error.txt"


def _default_out(run_dir: Path, partner: str) -> Path:
    return Path(run_dir) / "partners" / partner / "report"


def unexpected_failure(partner: str, exc: BaseException, out_dir: Path) -> FedchemError:
    """A FedchemError for an exception that is not one (a bug in the report code): its traceback goes to
    OUT_DIR/report-error.txt (the partner's private report folder), the message says where."""
    out_dir = Path(out_dir)
    log = out_dir / ERROR_LOG
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(log, "".join(traceback.format_exception(exc)))
        kept = f"; the details are in {log}"
    except OSError:
        kept = ""
    return FedchemError(f"the report of partner '{partner}' failed on an internal error "
                        f"({type(exc).__name__}: {exc})",
                        where=str(out_dir),
                        fix="this is a fault in fedchem's report, not in your data: please report it with that "
                            f"file{kept}")


@dataclass(frozen=True)
class ReportJob:
    """One partner's report to write, with the same optional folders as `write_report`."""

    partner: str
    alone_dir: Path | None = None
    out_dir: Path | None = None
    prepared_dir: Path | None = None
    force: bool = False
    run_dir: Path | None = None      # this partner's run, when partners chose different runs (the demo's grid)
    tuning: dict | None = None       # how the compared models' settings were chosen (demo.grid), shown in the report


def write_reports(run_dir, jobs: list[ReportJob], settings: CompareSettings | None = None
                  ) -> tuple[dict[str, Path], dict[str, FedchemError]]:
    """Each job's report in turn: ({partner: report.html}, {partner: FedchemError}) for those written and those
    that failed. A failure in one partner's report never stops the others'."""
    written: dict[str, Path] = {}
    failed: dict[str, FedchemError] = {}
    for job in jobs:
        try:
            written[job.partner] = write_report(job.run_dir or run_dir, job.partner, alone_dir=job.alone_dir,
                                                out_dir=job.out_dir, prepared_dir=job.prepared_dir,
                                                settings=settings, force=job.force, tuning=job.tuning)
        except FedchemError as exc:
            failed[job.partner] = exc
        except Exception as exc:  # a bug, not the partner's files: kept to a file, the others still written
            failed[job.partner] = unexpected_failure(job.partner, exc,
                                                     job.out_dir or _default_out(Path(job.run_dir or run_dir),
                                                                                 job.partner))
    return written, failed


def reports_failed(failed: dict[str, FedchemError], n_jobs: int,
                   again: str = "`fedchem report RUN_DIR --partner NAME`") -> FedchemError:
    """One error naming every partner whose report failed, with each one's own what / where / what to do, and
    how to write it again (`again`) once that is done."""
    names = ", ".join(f"'{n}'" for n in failed)
    ok = n_jobs - len(failed)
    what = (f"the report of partner {names} could not be written" if len(failed) == 1 else
            f"the reports of partners {names} could not be written")
    named = (lambda n, text: text) if len(failed) == 1 else (lambda n, text: f"{n}: {text}")  # noqa: E731
    detail = "; ".join(named(n, e.what) for n, e in failed.items())
    return FedchemError(f"{what} ({ok} of {n_jobs} written): {detail}",
                        where="; ".join(named(n, e.where) for n, e in failed.items() if e.where),
                        fix="; ".join(named(n, e.fix) for n, e in failed.items() if e.fix)
                            + f"; then write it again with {again}")
