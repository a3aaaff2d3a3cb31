"""`fedchem train-local` end to end on a small prepared folder, and its refusals of bad input (exit 2)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from algo_synthetic import synthetic_dataset, write_synthetic
from fedchem.algo.predictions import load_predictions
from fedchem.algo.train_local import OUTPUT_FILES
from fedchem.algo.params import load_params
from fedchem.opener.dataset import load_prepared, save_prepared
from fedchem.orchestrator.cli.main import main

FAST = ["--epochs", "3", "--hidden", "16", "--batch-size", "64", "--quiet"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("prep") / "partner")


def test_train_local_writes_every_output_and_returns_0(prepared, tmp_path, capsys):
    out = tmp_path / "alone"
    assert main(["train-local", str(prepared), "--out", str(out), "--seed", "3", "--lr-steps", "2", *FAST]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    ds = load_prepared(prepared)
    m = json.loads((out / "metrics.json").read_text())
    assert m["settings"]["model"]["hidden_sizes"] == [16] and m["settings"]["training"]["seed"] == 3
    assert 1 <= m["best_epoch"] <= m["epochs_run"] <= 3
    assert 0 <= m["test"]["classification"]["auc_roc"] <= 1 and m["test"]["regression"]["rmse"] > 0
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[2]["lr"] == pytest.approx(history[0]["lr"] * 0.3)  # --lr-steps 2, default gamma 0.3
    preds = load_predictions(out / "test_predictions.npz")
    np.testing.assert_array_equal(preds.rows, np.flatnonzero(ds.folds == 1))
    assert preds.class_scores.shape == (preds.rows.size, ds.Y_class.shape[1])
    assert preds.compound_ids.tolist() == [ds.compound_ids[i] for i in preds.rows]
    trunk = load_params(out / "trunk.npz")[0]
    assert trunk["input.weight"].shape == (ds.n_features, 16)
    csv_lines = (out / "metrics_per_task.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 2 * len(ds.tasks)
    assert "test" in capsys.readouterr().out


def test_the_console_script_skips_teardown_only_after_success(prepared, tmp_path):
    """The installed `fedchem` script ends train-local without Python's teardown (os._exit after flushing): the
    summary still reaches a pipe whole and every output is there; a failing command keeps its exit code."""
    exe = Path(sys.executable).with_name("fedchem")
    out = tmp_path / "alone"
    done = subprocess.run([str(exe), "train-local", str(prepared), "--out", str(out), "--seed", "3", *FAST],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUT_FILES)
    assert done.stdout.rstrip().endswith(f"output     {out}")  # the last line, flushed before the exit
    failed = subprocess.run([str(exe), "train-local", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"),
                             *FAST], capture_output=True, text=True, timeout=600)
    assert failed.returncode == 2 and failed.stderr.startswith("error:") and "Traceback" not in failed.stderr


def _expect_error(argv, capsys, *needles):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "Traceback" not in err
    for n in needles:
        assert n in err


def test_not_a_prepared_folder(tmp_path, capsys):
    _expect_error(["train-local", str(tmp_path), "--out", str(tmp_path / "o"), *FAST], capsys, "not a prepared")
    assert not (tmp_path / "o").exists()


def test_folds_out_of_range_or_equal(prepared, tmp_path, capsys):
    _expect_error(["train-local", str(prepared), "--out", str(tmp_path / "o"), "--test-fold", "9", *FAST], capsys,
                  "test fold 9", "folds present")
    _expect_error(["train-local", str(prepared), "--out", str(tmp_path / "o"), "--validation-fold", "1",
                   "--test-fold", "1", *FAST], capsys, "both 1")
    assert not (tmp_path / "o").exists()


def test_no_label_in_the_training_folds(tmp_path, capsys):
    ds = synthetic_dataset(n=60)
    train = ~np.isin(ds.folds, [0, 1])
    for name in ("Y_class", "Y_regr", "Y_censor"):
        Y = getattr(ds, name).tolil()
        Y[np.flatnonzero(train)] = 0
        Y = Y.tocsr()
        Y.eliminate_zeros()
        setattr(ds, name, Y)
    save_prepared(ds, tmp_path / "p")
    _expect_error(["train-local", str(tmp_path / "p"), "--out", str(tmp_path / "o"), *FAST], capsys,
                  "no task has a label")


def test_existing_output_and_bad_flag_values(prepared, tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    _expect_error(["train-local", str(prepared), "--out", str(out), *FAST], capsys, "already exists", "--overwrite")
    assert (out / "keep.txt").read_text() == "x"
    _expect_error(["train-local", str(prepared), "--out", str(tmp_path / "o2"), "--dropout", "1.5", *FAST], capsys,
                  "dropout")
