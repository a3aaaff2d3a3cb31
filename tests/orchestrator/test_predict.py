"""`fedchem predict`: same features as training, scores equal to the run's own evaluation, MC-dropout spread, bad
SMILES reported per row without stopping the others, clear errors. Real data and real models (tests/reportsetup.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from fedchem.orchestrator.cli.main import main as cli_main
from fedchem.orchestrator.config import load_consortium
from fedchem.orchestrator.predict import featurise_smiles, selection_note

from reportsetup import shared_report_inputs

ME = "partner-1"
BAD = [("bad-syntax", "C1CC(", "SMILES syntax error"), ("bad-valence", "C(C)(C)(C)(C)C", "AtomValenceException"),
       ("bad-empty", "", "empty SMILES")]


@pytest.fixture(scope="module")
def inputs() -> dict:
    return shared_report_inputs()


def _raw_smiles(inputs: dict, partner: str) -> dict[str, str]:
    with open(Path(inputs["consortium"]).parent / partner / "T2.csv", newline="") as fh:
        return {r["input_compound_id"]: r["smiles"] for r in csv.DictReader(fh)}


def _single_id_rows(prepared: Path) -> list[tuple[int, str]]:
    """(row, id) of the prepared compounds that came from exactly one input compound."""
    with open(prepared / "compounds.csv", newline="") as fh:
        return [(int(r["row"]), r["input_compound_id"]) for r in csv.DictReader(fh)
                if ";" not in r["input_compound_id"]]


def test_training_compounds_get_the_same_features_as_in_preparation(inputs):
    prepared = Path(inputs["prepared"][ME])
    X = sp.load_npz(prepared / "X.npz").tocsr()
    smiles = _raw_smiles(inputs, ME)
    picked = _single_id_rows(prepared)[::7][:40]
    consortium = load_consortium(inputs["consortium"])
    assert consortium.fingerprint.scramble  # the keyed permutation is part of what must match
    feats = featurise_smiles([smiles[i] for _, i in picked], consortium.fingerprint,
                             consortium.preparation.standardize, consortium.secret.read("secret"))
    assert list(feats.usable) == list(range(len(picked))) and not any(feats.errors)
    for k, (row, _) in enumerate(picked):
        a, b = feats.X[k], X[row]
        assert np.array_equal(a.indices, b.indices) and np.array_equal(a.data, b.data), row
    # without the consortium's secret the columns differ: the scrambling really is applied
    other = featurise_smiles([smiles[picked[0][1]]], consortium.fingerprint, consortium.preparation.standardize,
                             b"another consortium's secret!!")
    assert not np.array_equal(other.X[0].indices, X[picked[0][0]].indices)


def _write_input(path: Path, rows: list[tuple[str, str]]) -> None:
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["compound", "structure"])
        w.writerows(rows)


def _predict(inputs, tmp_path, rows, *extra, partner=ME) -> tuple[int, Path]:
    src = tmp_path / "in.csv"
    _write_input(src, rows)
    out = tmp_path / "out.csv"
    code = cli_main(["predict", "--consortium", str(inputs["consortium"]), "--partner",
                     str(Path(inputs["consortium"]).parent / partner / "partner.yaml"), "--run",
                     str(inputs["run_dir"]), "--smiles", str(src), "--smiles-column", "structure", "--id-column",
                     "compound", "--out", str(out), "--workers", "1", *extra])
    return code, out


def test_scores_valid_smiles_like_the_runs_evaluation_and_reports_bad_ones_per_row(inputs, tmp_path, capsys):
    # predict scores with the run's final model: the last round's test predictions (test_predictions.npz holds the
    # round each kind's selection chose, which is the last one only when no earlier round validated better)
    pdir = inputs["run_dir"] / "partners" / ME
    pred = np.load(pdir / "last_test_predictions.npz" if (pdir / "last_test_predictions.npz").is_file()
                   else pdir / "test_predictions.npz")
    test_rows = {int(r): k for k, r in enumerate(pred["rows"])}
    smiles = _raw_smiles(inputs, ME)
    prepared = Path(inputs["prepared"][ME])
    picked = [(row, cid) for row, cid in _single_id_rows(prepared) if row in test_rows][:12]
    rows = [(cid, smiles[cid]) for _, cid in picked[:6]] + [(b[0], b[1]) for b in BAD] + \
           [(cid, smiles[cid]) for _, cid in picked[6:]]
    code, out = _predict(inputs, tmp_path, rows, "--mc-samples", "0")
    assert code == 0
    printed = capsys.readouterr().out
    assert f"scored {len(picked)} of {len(rows)}" in printed and "3 row(s) could not be scored" in printed
    metrics = json.loads((pdir / "metrics.json").read_text())
    chose_earlier = any(r != metrics["after_round"] for r in metrics["selected"].values())
    assert ("note: these are the final model's scores" in printed) == chose_earlier
    with open(out, newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert [r["compound"] for r in lines] == [r[0] for r in rows]
    tasks = [str(t) for t in pred["class_tasks"]] + [str(t) for t in pred["regr_tasks"]]
    for line in lines:
        bad = next((b for b in BAD if b[0] == line["compound"]), None)
        if bad:
            assert line["status"] == f"not scored: {bad[2]}" or bad[2] in line["status"]
            assert bad[1] == "" or bad[1] not in line["status"]  # the reason, never the SMILES
            assert all(line[t] == "" for t in tasks)
            continue
        assert line["status"] == "ok"
        row = next(r for r, cid in picked if cid == line["compound"])
        k = test_rows[row]
        want = np.concatenate([pred["class_scores"][k], pred["regr_preds"][k]])
        got = np.array([float(line[t]) for t in tasks])
        assert np.allclose(got, want, rtol=1e-5, atol=1e-6)  # the run's own test predictions, same model
        assert all(line[f"{t} std"] == "" for t in tasks)  # no MC passes asked for


def test_mc_dropout_gives_a_spread(inputs, tmp_path):
    smiles = _raw_smiles(inputs, ME)
    ids = list(smiles)[:5]
    code, out = _predict(inputs, tmp_path, [(i, smiles[i]) for i in ids], "--mc-samples", "12", "--layout", "long")
    assert code == 0
    with open(out, newline="") as fh:
        lines = list(csv.DictReader(fh))
    assert {r["compound"] for r in lines} == set(ids)
    std = np.array([float(r["std"]) for r in lines])
    probs = np.array([float(r["prediction"]) for r in lines if r["kind"] == "classification"])
    assert (std >= 0).all() and (std > 0).mean() > 0.9  # dropout 0.1: passes differ
    assert ((probs >= 0) & (probs <= 1)).all()


def test_bad_requests_fail_cleanly_without_output(inputs, tmp_path, capsys):
    smiles = _raw_smiles(inputs, ME)
    one = [(cid, smiles[cid]) for cid in list(smiles)[:2]]
    src = tmp_path / "in.csv"
    _write_input(src, one)
    out = tmp_path / "out.csv"
    base = ["predict", "--consortium", str(inputs["consortium"]), "--run", str(inputs["run_dir"]), "--out", str(out)]
    me = str(Path(inputs["consortium"]).parent / ME / "partner.yaml")
    assert cli_main(base + ["--partner", me, "--smiles", str(src)]) == 2  # default column "smiles" is absent
    assert "no column 'smiles'" in capsys.readouterr().err
    dropped = str(Path(inputs["consortium"]).parent / "partner-3" / "partner.yaml")
    assert cli_main(base + ["--partner", dropped, "--smiles", str(src), "--smiles-column", "structure"]) == 2
    err = capsys.readouterr().err
    assert "dropped out" in err and "Traceback" not in err
    assert cli_main(base + ["--partner", me, "--smiles", str(tmp_path / "missing.csv")]) == 2
    assert not out.exists()
    for _, s in one:
        assert s not in err


def test_the_wrong_consortium_secret_or_another_partners_data_is_refused(inputs, tmp_path, capsys):
    """A consortium config whose secret is not the run's would scramble the columns differently and print silently
    wrong probabilities: refused. So is a partner config pointing at another partner's prepared folder."""
    import yaml

    smiles = _raw_smiles(inputs, ME)
    src = tmp_path / "in.csv"
    _write_input(src, [(cid, smiles[cid]) for cid in list(smiles)[:2]])
    out = tmp_path / "out.csv"
    consortium = Path(inputs["consortium"])
    other = tmp_path / "consortium.yaml"  # the same consortium config, with another secret
    data = yaml.safe_load(consortium.read_text())
    (tmp_path / "other.secret").write_text("another consortium's secret, 32+ bytes long\n")
    data["secret"] = {"file": str(tmp_path / "other.secret")}
    data["partners"] = [{**p, "config": str(consortium.parent / p["config"])} for p in data["partners"]]
    other.write_text(yaml.safe_dump(data))
    me = consortium.parent / ME / "partner.yaml"
    run = ["--run", str(inputs["run_dir"]), "--smiles", str(src), "--smiles-column", "structure", "--out", str(out)]
    assert cli_main(["predict", "--consortium", str(other), "--partner", str(me), *run]) == 2
    err = capsys.readouterr().err
    assert "not the one the run was trained with" in err and "ledger.json" in err and "Traceback" not in err
    swapped = tmp_path / "partner.yaml"  # partner-1's config pointing at partner-2's prepared folder
    pdata = yaml.safe_load(me.read_text())
    pdata["prepared_dir"] = str(inputs["prepared"]["partner-2"])
    pdata.pop("data", None)
    swapped.write_text(yaml.safe_dump(pdata))
    assert cli_main(["predict", "--consortium", str(consortium), "--partner", str(swapped), *run]) == 2
    err = capsys.readouterr().err
    assert "made for partner 'partner-2', not 'partner-1'" in err and "Traceback" not in err
    assert not out.exists()
    # the right secret and the partner's own folder still score (the refusals above are about the mismatch)
    assert cli_main(["predict", "--consortium", str(consortium), "--partner", str(me), *run, "--mc-samples", "0"]) == 0
    assert out.is_file() and oct(out.stat().st_mode & 0o777) == "0o600"


def test_a_selection_of_an_earlier_round_is_named(tmp_path):
    """predict scores with the final model: when the run's figures come from an earlier round, it says which."""
    pdir = tmp_path / "partners" / ME
    pdir.mkdir(parents=True)
    assert selection_note(tmp_path, ME) == ""  # no metrics.json: nothing to be consistent with
    (pdir / "metrics.json").write_text(json.dumps({"after_round": 12, "selected": {"classification": 12,
                                                                                   "regression": 12}}))
    assert selection_note(tmp_path, ME) == ""
    (pdir / "metrics.json").write_text(json.dumps({"after_round": 12, "selected": {"classification": 7,
                                                                                   "regression": 12}}))
    note = selection_note(tmp_path, ME)
    assert "after round 12" in note and "classification: round 7" in note and "regression" not in note
