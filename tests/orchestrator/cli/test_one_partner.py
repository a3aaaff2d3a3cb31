"""One partner alone: a consortium file that lists only itself can `prepare` and `train-local` (the baseline needs
no second company); `fedchem run` still refuses it, before anything is written."""

from __future__ import annotations

import yaml
from prepare_data import herg_partner

from fedchem.opener.dataset import load_prepared
from fedchem.orchestrator.cli.main import main


def test_one_partner_prepares_and_trains_alone_but_cannot_run(tmp_path, public_data_dir, capsys, monkeypatch):
    herg_partner(tmp_path / "raw", public_data_dir, n=400)
    (tmp_path / "secret.txt").write_text("one-partner-consortium-secret-0123456789\n")
    consortium = {"name": "solo", "secret": {"file": "secret.txt"},
                  "fingerprint": {"kind": "folded", "radius": 2, "size": 1024, "scramble": True},
                  "preparation": {"min_actives_total": 5, "min_inactives_total": 5, "min_regression_values": 20},
                  "model": {"hidden_sizes": [32]}, "training": {"epochs": 2, "batch_size": 64},
                  "partners": [{"name": "pharma-solo", "config": "partner.yaml"}]}
    partner = {"name": "pharma-solo", "data": {"t0": "raw/T0.csv", "t1": "raw/T1.csv", "t2": "raw/T2.csv"},
               "prepared_dir": "prepared/solo"}
    (tmp_path / "consortium.yaml").write_text(yaml.safe_dump(consortium))
    (tmp_path / "partner.yaml").write_text(yaml.safe_dump(partner))
    c = str(tmp_path / "consortium.yaml")
    assert main(["prepare", "--consortium", c, "--partner", str(tmp_path / "partner.yaml")]) == 0
    assert load_prepared(tmp_path / "prepared" / "solo").manifest["partner"] == "pharma-solo"
    monkeypatch.setenv("FEDCHEM_THREADS", "1")
    assert main(["train-local", str(tmp_path / "prepared" / "solo"), "--consortium", c, "-q"]) == 0
    assert (tmp_path / "prepared" / "solo-alone" / "metrics.json").is_file()  # the default --out
    capsys.readouterr()
    assert main(["run", c, "--run-dir", str(tmp_path / "runs" / "x")]) == 2
    err = capsys.readouterr().err
    assert "a federated run needs at least two partners; the consortium lists 1" in err and "train-local" in err
    assert not (tmp_path / "runs").exists()
