"""Equal budgets (issue 16): both sides search the same grid and pick by the same rule on validation only, and the
report records what each chose. The last test runs a real two-point grid on Substra's subprocess backend."""

from __future__ import annotations

import json
import math

import pytest
import yaml

from fedchem.orchestrator.config import load_all
from fedchem.orchestrator.demo import grid

from fedsetup import build_small_consortium


def _metrics(kind: str, validation: float, test: float = 0.5, n_tasks: int = 3) -> dict:
    """A metrics.json as both sides write it: the selection's chosen validation figure, and a test figure."""
    return {"selection": {"chosen": {kind: {"index": 3, "value": validation}}},
            "validation": {"aggregate": {kind: {"n_tasks": n_tasks}}},
            "test": {"aggregate": {kind: {"auc_pr": test, "rmse": test}}}}


def test_the_grid_is_every_combination_with_distinct_labels():
    pts = grid.points()
    n = math.prod(len(v[1]) for v in grid.GRID.values())
    assert len(pts) == n == len({p.label for p in pts}) == 4
    doc = grid.apply({"model": {"dropout": 0.2, "hidden_sizes": [8]}, "training": {"learning_rate": 0.001}}, pts[-1])
    assert doc["model"] == {"dropout": 0.5, "hidden_sizes": [8]} and doc["training"] == {"learning_rate": 0.003}


def test_both_sides_choose_by_the_selection_rule_per_kind():
    cls = {"a": _metrics("classification", 0.30), "b": _metrics("classification", 0.42),
           "c": _metrics("classification", 0.42), "d": _metrics("classification", float("nan"))}
    regr = {"a": _metrics("regression", 0.9), "b": _metrics("regression", 0.7), "c": _metrics("regression", 0.8)}
    grid_ = {"p": ("training", ("a", "b", "c", "d"))}
    cls, regr = ({f"p-{k}": v for k, v in d.items()} for d in (cls, regr))
    t = grid.choose_for_partner(cls, cls, grid_)
    # highest AUC-PR, the earlier point on a tie, NaN never wins, and the same rule gives the same pick on each side
    assert t["kind"] == "classification" and t["metric"] == "auc_pr"
    assert t["alone"]["point"] == t["federated"]["point"] == "p-b"
    assert t["alone"]["settings"] == {"p": "b"} and t["alone"]["figures"]["p-d"] is None
    assert grid.choose_for_partner(regr, regr, grid_)["federated"]["point"] == "p-b"  # lowest RMSE
    assert grid.choose({"x": float("nan")}, "classification") is None


def test_the_test_fold_never_influences_the_choice():
    """Only the validation figure the selection kept is read: test figures that favour another point change nothing."""
    alone = {"a": _metrics("classification", 0.40, test=0.1), "b": _metrics("classification", 0.35, test=0.9)}
    swapped = {"a": _metrics("classification", 0.40, test=0.9), "b": _metrics("classification", 0.35, test=0.1)}
    assert (grid.choose_for_partner(alone, alone)["alone"]["point"]
            == grid.choose_for_partner(swapped, swapped)["alone"]["point"] == "a")
    assert grid.choose_for_partner(alone, swapped)["federated"]["point"] == "a"


def test_a_point_is_chosen_on_the_kind_with_more_headline_tasks():
    m = {"selection": {"chosen": {"classification": {"value": 0.3}, "regression": {"value": 1.0}}},
         "validation": {"aggregate": {"classification": {"n_tasks": 2}, "regression": {"n_tasks": 5}}}}
    assert grid.selection_kind(m) == "regression"
    m["validation"]["aggregate"]["classification"]["n_tasks"] = 5
    assert grid.selection_kind(m) == "classification"


@pytest.fixture(scope="module")
def consortium_path(tmp_path_factory):
    return build_small_consortium(tmp_path_factory.mktemp("grid"))


def test_a_point_consortium_keeps_partners_secret_and_folds(consortium_path, tmp_path):
    point = grid.points()[-1]
    path = grid.point_consortium(consortium_path, tmp_path / "point", point)
    consortium, partners = load_all(path)
    base, base_partners = load_all(consortium_path)
    assert consortium.training.learning_rate == 0.003 and consortium.model.dropout == 0.5
    assert consortium.secret.file == base.secret.file
    assert {n: p.prepared_dir for n, p in partners.items()} == {n: p.prepared_dir for n, p in base_partners.items()}
    assert consortium.training.test_fold == base.training.test_fold
    assert yaml.safe_load(path.read_text())["name"].endswith(point.label)


def test_a_two_point_grid_runs_both_sides_and_the_reports_record_the_choice(consortium_path, tmp_path, monkeypatch):
    """Real train-local and real secure federated runs at two learning rates; each partner's report compares the
    points its own validation figures chose, and says so."""
    from fedchem.orchestrator.demo.pipeline import _grid
    from fedchem.orchestrator.report.write import write_reports

    monkeypatch.setattr(grid, "GRID", {"learning_rate": ("training", (0.001, 0.01))})
    out = tmp_path / "demo"
    lines = []
    run_dir, jobs = _grid(consortium_path, out, step=lambda title: 0.0, say=lines.append)
    labels = [p.label for p in grid.points()]
    for label in labels:
        assert (out / "grid" / label / "run" / "ledger.json").is_file()
    reports, failed = write_reports(run_dir, jobs)
    assert not failed and len(reports) == 3
    for job in jobs:
        doc = json.loads((reports[job.partner].parent / "report.json").read_text())
        tuning = doc["figures"]["tuning"]
        for side, metrics_of in (("alone", lambda lb: out / "grid" / lb / "alone" / job.partner / "metrics.json"),
                                 ("federated", lambda lb: out / "grid" / lb / "run" / "partners" / job.partner
                                  / "metrics.json")):
            figs = {lb: grid.chosen_figure(json.loads(metrics_of(lb).read_text()), tuning["kind"]) for lb in labels}
            assert tuning[side]["point"] == grid.choose(figs, tuning["kind"])  # recomputed from the files
        assert job.run_dir == out / "grid" / tuning["federated"]["point"] / "run"
        assert job.alone_dir == out / "grid" / tuning["alone"]["point"] / "alone" / job.partner
        assert any("same budget" in s for s in doc["summary"])
        assert "Equal budgets" in reports[job.partner].read_text()
