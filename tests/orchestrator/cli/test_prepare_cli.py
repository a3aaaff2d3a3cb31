"""`fedchem prepare` end to end through the CLI: configs, secret, cross-checks, clean errors, summary output."""

from __future__ import annotations

import yaml
from prepare_data import herg_partner

from fedchem.opener.dataset import load_prepared
from fedchem.orchestrator.cli.main import main

SECRET = "cli-test-consortium-secret-0123456789abcdef"


def write_configs(tmp_path, public_data_dir, partner_fp=None, secret=True, name="pharma-a", listed=("pharma-a", "b")):
    raw = herg_partner(tmp_path / "raw", public_data_dir, n=400)
    if secret:
        (tmp_path / "secret.txt").write_text(SECRET + "\n")
    consortium = {
        "name": "test", "secret": {"file": "secret.txt"},
        "fingerprint": {"kind": "folded", "radius": 2, "size": 2048, "scramble": True},
        "preparation": {"min_actives_total": 5, "min_inactives_total": 5, "min_regression_values": 20},
        "partners": [{"name": n, "config": f"{n}.yaml"} for n in listed],
    }
    partner = {"name": name, "data": {"t0": "raw/T0.csv", "t1": "raw/T1.csv", "t2": "raw/T2.csv"},
               "prepared_dir": "prepared/a"}
    if partner_fp is not None:
        partner["fingerprint"] = partner_fp
    (tmp_path / "consortium.yaml").write_text(yaml.safe_dump(consortium))
    (tmp_path / "partner.yaml").write_text(yaml.safe_dump(partner))
    return ["prepare", "--consortium", str(tmp_path / "consortium.yaml"), "--partner", str(tmp_path / "partner.yaml")]


def test_prepare_command_writes_the_partner_folder_and_a_summary(tmp_path, public_data_dir, capsys):
    argv = write_configs(tmp_path, public_data_dir)
    assert main(argv) == 0
    out = capsys.readouterr().out
    ds = load_prepared(tmp_path / "prepared" / "a")
    assert ds.n_features == 2048 and ds.manifest["partner"] == "pharma-a"
    assert f"compounds      {ds.n_compounds:,}" in out and "prep_report.md" in out
    for smi_fragment in ("c1cc", "CHEMBL"):
        assert smi_fragment not in out
    # --out overrides prepared_dir
    assert main(argv + ["--out", str(tmp_path / "elsewhere"), "--workers", "1"]) == 0
    assert (tmp_path / "elsewhere" / "manifest.json").is_file()


def test_partner_fingerprint_disagreeing_with_the_consortium_is_refused(tmp_path, public_data_dir, capsys):
    argv = write_configs(tmp_path, public_data_dir, partner_fp={"kind": "counts", "radius": 3, "size": 2048})
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "different fingerprint settings" in err and "kind, radius" in err and "partner.yaml" in err
    assert "Traceback" not in err
    assert not (tmp_path / "prepared").exists()


def test_partner_not_in_the_consortium_is_refused(tmp_path, public_data_dir, capsys):
    argv = write_configs(tmp_path, public_data_dir, name="pharma-z")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "'pharma-z' is not listed" in err and "Traceback" not in err
    assert not (tmp_path / "prepared").exists()


def test_missing_secret_and_bad_input_give_clean_errors(tmp_path, public_data_dir, capsys):
    argv = write_configs(tmp_path, public_data_dir, secret=False)
    assert main(argv) == 2
    assert "consortium secret file does not exist" in capsys.readouterr().err
    (tmp_path / "secret.txt").write_text(SECRET)
    t1 = (tmp_path / "raw" / "T1.csv").read_text().splitlines()
    t1[3] = t1[3].replace(",nM", ",furlongs")
    (tmp_path / "raw" / "T1.csv").write_text("\n".join(t1) + "\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "unknown unit 'furlongs'" in err and "T1.csv, line 4" in err and "Traceback" not in err
    assert not (tmp_path / "prepared").exists()
