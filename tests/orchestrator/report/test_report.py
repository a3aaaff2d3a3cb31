"""`fedchem report`: every per-task figure matches an independent recomputation (scikit-learn, RDKit) from the saved
predictions and the prepared truths; verdicts and summaries follow the intervals; the report reads and names
nothing of other partners; it renders in real headless Chromium; bad inputs give clear errors and no output.

Inputs: real MoleculeACE partners, real training (train_local alone; the run folder from real fedchem.algo
training averaged in-process, see tests/reportsetup.py). The slow test in test_report_e2e.py uses a real Substra run.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn import metrics as skm

from fedchem import metrics
from fedchem.opener.errors import ConfigError, DataError
from fedchem.orchestrator.report import stats as S
from fedchem.orchestrator.cli.main import main as cli_main
from fedchem.orchestrator.report.write import write_report
from fedchem.orchestrator.report.compare import CompareSettings

from reportcheck import (ME, _chromium_args, _close, _f, _foreign_ids, _ids_of, _mentions, _read_csv, _recompute)
from reportsetup import shared_report_inputs

FAST = CompareSettings(replicates=300, seed=1, significance=0.34)  # ε 0.34: 2 validation compounds a class suffice


@pytest.fixture(scope="module")
def inputs() -> dict:
    return shared_report_inputs()


@pytest.fixture(scope="module")
def report(inputs, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report") / ME
    html = write_report(inputs["run_dir"], ME, alone_dir=inputs["alone"][ME], out_dir=out, settings=FAST)
    assert html == out / "report.html"
    return out


def test_per_task_numbers_match_sklearn_recomputation(inputs, report):
    expected = _recompute(inputs, ME)
    rows = _read_csv(report / "tasks.csv")
    assert len(rows) == len(expected) and len(rows) >= 20
    for r in rows:
        fed, alone = expected[r["task"], r["metric"]]
        assert _close(_f(r["federated"]), fed), (r["task"], r["metric"])
        assert _close(_f(r["alone"]), alone), (r["task"], r["metric"])
        assert _close(_f(r["delta"]), fed - alone)
        if np.isfinite(alone) and alone != 0:
            assert _close(_f(r["relative_delta"]), (fed - alone) / abs(alone))
        if r["metric"] in ("auc_pr", "auc_roc", "r2") and np.isfinite(alone) and alone < 1:
            assert _close(_f(r["improvement_to_perfect"]), (fed - alone) / (1 - alone))
        if r["metric"] == "rmse":
            assert r["improvement_to_perfect"] == ""
    # the numbers are not trivially equal: federation changed at least some tasks
    assert any(abs(_f(r["delta"])) > 1e-6 for r in rows)


def test_summary_medians_and_verdicts_follow_the_tasks(report):
    tasks = _read_csv(report / "tasks.csv")
    summary = _read_csv(report / "summary.csv")
    doc = json.loads((report / "report.json").read_text())
    assert {s["kind"] for s in summary if s["group"] == "headline"} == {"classification", "regression"}
    for s in summary:
        sel = [t for t in tasks if t["kind"] == s["kind"] and t["metric"] == s["metric"]
               and (t["auxiliary"] == "True") == (s["group"] == "auxiliary")]
        d = np.array([_f(t["delta"]) for t in sel])
        assert _close(_f(s["median_delta"]), float(np.median(d[np.isfinite(d)])))
        lo, hi = _f(s["ci_low"]), _f(s["ci_high"])
        assert lo <= hi
        primary = S.PRIMARY[s["kind"]]
        judged = [t for t in sel if t["metric"] == primary] or [t for t in tasks if t["kind"] == s["kind"]
                                                                 and t["metric"] == primary]
        counts = {v: sum(t["verdict"] == v for t in judged) for v in ("helped", "hurt", "no difference")}
        assert int(s["helped"]) == counts["helped"] and int(s["hurt"]) == counts["hurt"]
        assert int(s["no_difference"]) == counts["no difference"]
    for t in tasks:
        if t["metric"] != S.PRIMARY[t["kind"]]:
            continue
        lo, hi = _f(t["ci_low"]), _f(t["ci_high"])
        want = ("not evaluable" if not np.isfinite(lo) else "helped" if lo > 0 else "hurt" if hi < 0
                else "no difference")
        assert t["verdict"] == want
        if np.isfinite(lo):
            assert lo <= _f(t["delta"]) + 1e-12 or hi >= _f(t["delta"]) - 1e-12
    # the plain-language summary states the counts it is built on
    first = doc["summary"]
    block = doc["figures"]["summary"]["headline"]["classification"]
    assert any(f"helped on {block['verdicts']['helped']}, hurt on {block['verdicts']['hurt']}" in s for s in first)
    if doc["overall"] == "no difference":
        assert "did not make your median task better" in first[0]


def test_weighted_bootstrap_metrics_equal_sklearn_on_resampled_data():
    rng = np.random.default_rng(3)
    for _ in range(60):
        n = int(rng.integers(4, 50))
        y = rng.integers(0, 2, n)
        s = np.round(rng.random(n), 1)  # ties on purpose
        W = S.bootstrap_counts(n, 4, rng)
        roc, pr = metrics.weighted_auc_roc(y, s, W), metrics.weighted_auc_pr(y, s, W)
        yr, fr = rng.normal(size=n), rng.normal(size=n)
        c = rng.choice([-1, 0, 0, 0, 1], n)
        r2, rmse = metrics.weighted_r2(yr, fr, c, W), metrics.weighted_rmse(yr, fr, c, W)
        for k in range(4):
            yy, ss = np.repeat(y, W[k]), np.repeat(s, W[k])
            if yy.min() == yy.max():
                assert np.isnan(roc[k]) and np.isnan(pr[k])
            else:
                p, r, _ = skm.precision_recall_curve(yy, ss)
                assert abs(roc[k] - skm.roc_auc_score(yy, ss)) < 1e-12
                assert abs(pr[k] - skm.auc(r, p)) < 1e-12
            ex = np.repeat(c, W[k]) == 0
            y2, f2 = np.repeat(yr, W[k])[ex], np.repeat(fr, W[k])[ex]
            if ex.sum() >= 2 and np.ptp(y2) > 0:
                assert abs(r2[k] - skm.r2_score(y2, f2)) < 1e-9
                e = np.repeat(fr - yr, W[k])
                cc = np.repeat(c, W[k])
                e = np.where(cc < 0, np.maximum(e, 0), np.where(cc > 0, np.minimum(e, 0), e))
                assert abs(rmse[k] - np.sqrt(np.mean(e ** 2))) < 1e-12


def _rdkit_nearest(X_test: sp.csr_matrix, X_train: sp.csr_matrix) -> np.ndarray:
    from rdkit import DataStructs

    def bv(row):
        v = DataStructs.ExplicitBitVect(X_test.shape[1])
        v.SetBitsFromList([int(i) for i in row.indices])
        return v

    train = [bv(X_train[i]) for i in range(X_train.shape[0])]
    return np.array([max(DataStructs.BulkTanimotoSimilarity(bv(X_test[i]), train)) for i in range(X_test.shape[0])])


def test_applicability_domain_matches_rdkit_and_per_bin_recomputation(inputs, report):
    prepared = Path(inputs["prepared"][ME])
    X = sp.load_npz(prepared / "X.npz").tocsr()
    folds = np.load(prepared / "folds.npy")
    settings = json.loads((inputs["run_dir"] / "settings.json").read_text())["training"]
    rows = np.load(inputs["run_dir"] / "partners" / ME / "test_predictions.npz")["rows"]
    train = np.flatnonzero(~np.isin(folds, [settings["validation_fold"], settings["test_fold"]]))
    nn = _rdkit_nearest(X[rows], X[train])
    doc = json.loads((report / "report.json").read_text())
    dom = doc["figures"]["domain"]
    q = dom["similarity_quantiles"]
    assert np.allclose([q["min"], q["median"], q["max"]], np.percentile(nn, [0, 50, 100]), atol=1e-9)
    edges = [0.0] + dom["edges"] + [1.0 + 1e-9]
    counts = [int(((nn >= a) & (nn < b)).sum()) for a, b in zip(edges[:-1], edges[1:])]
    assert [b["n_compounds"] for b in dom["bins"]] == counts
    assert sum(counts) == rows.size
    table = _read_csv(report / "domain.csv")
    checked = 0
    for k, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        mask = (nn >= a) & (nn < b)
        per_task = _recompute(inputs, ME, rows_mask=mask)
        for kind, metric in (("classification", "auc_pr"), ("regression", "r2")):
            d = np.array([f - al for (task, m), (f, al) in per_task.items() if m == metric])
            d = d[np.isfinite(d)]
            row = next((r for r in table if int(r["bin"]) == k and r["kind"] == kind and r["metric"] == metric), None)
            if d.size:
                assert row is not None and int(row["n_tasks"]) == d.size
                assert _close(_f(row["median_delta"]), float(np.median(d)))
                checked += 1
    assert checked >= 2


def test_curves_come_from_this_partners_round_logs(inputs, report):
    curves = _read_csv(report / "curves.csv")
    logs = sorted((inputs["run_dir"] / "partners" / ME / "logs").glob("round_*.json"))
    rounds = sorted({int(r["round"]) for r in curves})
    assert rounds == list(range(1, len(logs) + 1))  # after rounds 1..R-1 from logs, R from the final evaluation
    alone_val = json.loads((inputs["alone"][ME] / "metrics.json").read_text())["validation"]
    for r in curves:
        assert _close(_f(r["alone_validation_reference"]), alone_val[r["kind"]][r["metric"]])
    second = json.loads(logs[1].read_text())["validation_of_incoming"]
    row = next(r for r in curves if int(r["round"]) == 1 and r["metric"] == "auc_roc")
    assert _close(_f(row["federated_validation"]), second["aggregate"]["classification"]["auc_roc"])


def test_report_names_nothing_of_other_partners(inputs, report):
    foreign_tasks, foreign_cpds, my_tasks = _foreign_ids(inputs)
    assert len(foreign_tasks) > 10 and len(foreign_cpds) > 100
    _, my_cpds = _ids_of(Path(inputs["prepared"][ME]))
    for path in sorted(report.iterdir()):
        text = path.read_text()
        assert not _mentions(text, foreign_tasks), path.name
        assert not _mentions(text, foreign_cpds), path.name
        assert not _mentions(text, my_cpds), path.name  # figures only: not even this partner's compound ids
    assert my_tasks <= _mentions((report / "report.html").read_text(), my_tasks)  # the check can see ids
    html = (report / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html)  # nothing fetched: opens offline
    assert "<link" not in html and "@import" not in html


def test_report_reads_only_its_own_folder_and_the_public_files(inputs, report, tmp_path):
    """A run folder holding only the ledger, the settings and this partner's folder gives the same figures."""
    run = tmp_path / "run"
    (run / "partners").mkdir(parents=True)
    for f in ("ledger.json", "settings.json"):
        shutil.copy(inputs["run_dir"] / f, run / f)
    shutil.copytree(inputs["run_dir"] / "partners" / ME, run / "partners" / ME)
    html = write_report(run, ME, alone_dir=inputs["alone"][ME], out_dir=tmp_path / "out", settings=FAST)
    a = json.loads((report / "report.json").read_text())
    b = json.loads(html.with_name("report.json").read_text())
    a.pop("generated"), b.pop("generated")
    assert a == b
    for name in ("tasks.csv", "summary.csv", "domain.csv", "curves.csv"):
        assert (report / name).read_text() == (tmp_path / "out" / name).read_text()


def test_report_renders_in_headless_chromium(inputs, report, tmp_path):
    from PIL import Image

    url = (report / "report.html").resolve().as_uri()
    shot = tmp_path / "shot.png"
    subprocess.run(_chromium_args(tmp_path / "p1") + [f"--screenshot={shot}", "--window-size=1280,2000", url],
                   check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(shot).convert("L"), dtype=np.float64)
    assert img.shape == (2000, 1280)
    assert img.std() > 20, "blank screenshot"
    assert (img < 128).mean() > 0.01  # text and plots drawn, not just a background
    dom = subprocess.run(_chromium_args(tmp_path / "p2") + ["--dump-dom", url], check=True, capture_output=True,
                         text=True, timeout=120).stdout
    assert "Did joining the consortium help?" in dom and "<svg" in dom
    foreign_tasks, foreign_cpds, my_tasks = _foreign_ids(inputs)
    assert _mentions(dom, my_tasks) == my_tasks
    assert not _mentions(dom, foreign_tasks) and not _mentions(dom, foreign_cpds)


def test_tables_sort_when_a_header_is_clicked(report, tmp_path):
    """The inline script sorts: click the 'Δ AUC-PR' header of the classification table in Chromium, read the DOM."""
    page = (report / "report.html").read_text()
    click = ("<script>var t=document.querySelectorAll('table.sortable')[0];var hs=t.querySelectorAll('th');"
             "for(var i=0;i<hs.length;i++){if(hs[i].textContent==='Δ AUC-PR'){hs[i].click();t.dataset.col=i;}}"
             "</script></body>")
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.replace("</body>", click, 1))
    dom = subprocess.run(_chromium_args(tmp_path / "p") + ["--dump-dom", clicked.as_uri()], check=True,
                         capture_output=True, text=True, timeout=120).stdout
    table = dom[dom.index("<table class=\"sortable\""):]
    table = table[:table.index("</table>")]
    col = int(re.search(r'data-col="(\d+)"', table).group(1))
    assert 'class="sorted-asc"' in table
    values = []
    for row in re.findall(r"<tr>(.*?)</tr>", table[table.index("<tbody>"):], flags=re.S):
        cells = re.findall(r'data-sort="([^"]*)"', row)
        values.append(float(cells[col]) if cells[col] not in ("", "None") else float("inf"))
    assert len(values) > 5 and values == sorted(values) and values != sorted(values, reverse=True)


def test_bad_inputs_give_clear_errors_and_no_output(inputs, tmp_path):
    out = tmp_path / "out"
    with pytest.raises(DataError, match="prepared dataset|different test compounds"):
        write_report(inputs["run_dir"], ME, alone_dir=inputs["alone"]["partner-2"], out_dir=out, settings=FAST)
    with pytest.raises(DataError, match="dropped out in round 3"):
        write_report(inputs["run_dir"], "partner-3", alone_dir=inputs["alone"]["partner-3"], out_dir=out)
    with pytest.raises(ConfigError, match="did not take part"):
        write_report(inputs["run_dir"], "partner-9", alone_dir=inputs["alone"][ME], out_dir=out)
    with pytest.raises(DataError, match="no test predictions"):
        write_report(inputs["run_dir"], ME, alone_dir=tmp_path / "nowhere", out_dir=out)
    assert not out.exists()


def test_cli(inputs, tmp_path, capsys):
    out = tmp_path / "cli"
    code = cli_main(["report", str(inputs["run_dir"]), "--partner", "partner-2", "--alone",
                     str(inputs["alone"]["partner-2"]), "--out", str(out), "--bootstrap", "200"])
    assert code == 0 and (out / "report.html").is_file() and str(out / "report.html") in capsys.readouterr().out
    assert cli_main(["report", str(inputs["run_dir"]), "--partner", "partner-3"]) == 2
    err = capsys.readouterr().err
    assert "dropped out" in err and "Traceback" not in err
    assert cli_main(["report", str(tmp_path), "--partner", ME]) == 2
    assert "no ledger.json" in capsys.readouterr().err


def test_auxiliary_tasks_are_kept_out_of_the_headline(inputs):
    from fedchem.orchestrator.report.compare import compare
    from fedchem.orchestrator.report.inputs import load_inputs

    inp = load_inputs(inputs["run_dir"], ME, inputs["alone"][ME])
    base = compare(inp, FAST)
    aux_names = {t["task"] for t in inp.data.tasks if t["kind"] == "classification"}
    aux_names = set(sorted(aux_names)[:4])
    for t in inp.data.tasks:
        if t["task"] in aux_names:
            t["auxiliary"] = "true"
    res = compare(inp, FAST)
    head = res["summary"]["headline"]["classification"]
    aux = res["summary"]["auxiliary"]["classification"]
    assert aux["n_tasks"] == 4 and head["n_tasks"] == base["summary"]["headline"]["classification"]["n_tasks"] - 4
    kept = [t["metrics"]["auc_pr"]["delta"] for t in res["tasks"]
            if t["kind"] == "classification" and not t["auxiliary"] and np.isfinite(t["metrics"]["auc_pr"]["delta"])]
    assert _close(head["metrics"]["auc_pr"]["median_delta"], float(np.median(kept)))
    assert {b["auxiliary"] for b in res["breakdown"] if b["kind"] == "classification"} == {True, False}
    # the per-bin figures are headline figures too: auxiliary tasks are not in them
    n_main = sum(1 for t in res["tasks"] if t["kind"] == "classification" and not t["auxiliary"])
    assert all(b["kinds"]["classification"]["auc_pr"]["n_tasks"] <= n_main for b in res["domain"]["bins"])
    from fedchem.orchestrator.report.write import build_document, make_plots
    from fedchem.orchestrator.report.html import render

    doc = build_document(inp, FAST)
    page = render(doc, make_plots(doc))
    aux_part = page[page.index("<h2>Auxiliary tasks</h2>"):page.index("<h2>Applicability domain")]
    assert "Auxiliary classification tasks" in aux_part and all(n in aux_part for n in aux_names)


def test_a_prepared_dataset_of_another_partner_or_another_secret_is_refused(inputs, tmp_path):
    """The report compares the prepared dataset with the run: made for this partner, with the run's secret."""
    from fedchem.opener.prepare import prepare_partner
    from fedchem.orchestrator.config import load_all

    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="made for partner 'partner-2', not 'partner-1'"):
        write_report(inputs["run_dir"], ME, alone_dir=inputs["alone"][ME], out_dir=out,
                     prepared_dir=inputs["prepared"]["partner-2"], settings=FAST)
    consortium, partners = load_all(inputs["consortium"])
    mine = partners[ME]
    other = tmp_path / "prepared-other-secret"  # the same raw data of this partner, another consortium secret
    prepare_partner(mine.data.t0, mine.data.t1, mine.data.t2, other, consortium.fingerprint, consortium.preparation,
                    b"another consortium's secret, 32 bytes", ME, workers=1)
    with pytest.raises(ConfigError, match="another consortium secret than the run's") as err:
        write_report(inputs["run_dir"], ME, alone_dir=inputs["alone"][ME], out_dir=out, prepared_dir=other,
                     settings=FAST)
    assert "fedchem prepare" in err.value.message()
    assert not out.exists()


def _efficiency_by_loops(cal_y, cal_p, y, p, eps):
    """Mondrian ICP written out plainly: per test compound and label, count calibration compounds of that label."""
    single = covered = 0
    for yi, pi in zip(y, p):
        labels = []
        for c in (0, 1):
            cal = [(1 - q) if c == 1 else q for q, t in zip(cal_p, cal_y) if t == c]
            own = (1 - pi) if c == 1 else pi
            if (sum(a >= own for a in cal) + 1) / (len(cal) + 1) > eps:
                labels.append(c)
        single += len(labels) == 1
        covered += yi in labels
    return single / len(y), covered / len(y)


def test_selection_last_round_and_conformal_figures(inputs, report):
    from fedchem.algo.predictions import load_predictions
    from fedchem.opener.dataset import load_prepared

    fig = json.loads((report / "report.json").read_text())["figures"]
    pdir = inputs["run_dir"] / "partners" / ME
    fm = json.loads((pdir / "metrics.json").read_text())
    am = json.loads((inputs["alone"][ME] / "metrics.json").read_text())
    assert fig["selection"]["federated"] == fm["selected"] and fig["selection"]["alone"] == am["selected"]
    assert set(fm["selected"]) == set(am["selected"]) == {"classification", "regression"}
    assert fig["last_round"]["round"] == fm["after_round"]
    assert set(fig["last_round"]["summary"]) == set(fig["summary"]["headline"])
    conf = fig["conformal"]
    assert conf["significance"] == FAST.significance
    data = load_prepared(inputs["prepared"][ME])
    fed_val = load_predictions(pdir / "validation_predictions.npz")
    fed_test = load_predictions(pdir / "test_predictions.npz")
    Yc = sp.csr_matrix(data.Y_class)
    checked = 0
    for t in conf["tasks"]:
        if t["kind"] != "classification":
            continue
        if t["federated"]["efficiency"] is None:
            assert "fewer than 2" in t["federated"]["reason"]
            continue
        j = t["column"]
        cal = [(int(Yc[r, j] > 0), fed_val.class_scores[i, j]) for i, r in enumerate(fed_val.rows) if Yc[r, j] != 0]
        tst = [(int(Yc[r, j] > 0), fed_test.class_scores[i, j]) for i, r in enumerate(fed_test.rows) if Yc[r, j] != 0]
        eff, val = _efficiency_by_loops([c[0] for c in cal], [c[1] for c in cal], [c[0] for c in tst],
                                        [c[1] for c in tst], conf["significance"])
        assert _close(t["federated"]["efficiency"], eff) and _close(t["federated"]["validity"], val), t["task"]
        checked += 1
    assert checked >= 2
    assert len(_read_csv(report / "conformal.csv")) == 2 * len(conf["tasks"])
    html = (report / "report.html").read_text()
    assert "Conformal efficiency" in html and "Which models are compared" in html and "The last round" in html
