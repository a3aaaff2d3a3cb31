"""`fedchem run` refuses inconsistent or incomplete configs with a clear message before anything is submitted."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from fedchem.orchestrator.cli.main import main

from fedsetup import build_small_consortium


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    return build_small_consortium(tmp_path_factory.mktemp("cfg")).parent


@pytest.fixture
def build(base, tmp_path) -> Path:
    dest = tmp_path / "raw"
    shutil.copytree(base, dest)
    return dest


def edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def run_cli(build: Path, capsys, tmp_path) -> tuple[int, str]:
    code = main(["run", str(build / "consortium.yaml"), "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert not (tmp_path / "run" / "ledger.json").exists(), "nothing may start before the configs are consistent"
    return code, err


def test_partner_with_other_fingerprint_settings(build, capsys, tmp_path):
    edit(build / "partner-2" / "partner.yaml", lambda d: d.update(fingerprint={"kind": "counts", "size": 2048}))
    code, err = run_cli(build, capsys, tmp_path)
    assert code == 2 and "partner-2" in err and "fingerprint" in err and "kind" in err


def test_missing_partner_config(build, capsys, tmp_path):
    (build / "partner-3" / "partner.yaml").unlink()
    code, err = run_cli(build, capsys, tmp_path)
    assert code == 2 and "partner-3" in err and "does not exist" in err


def test_duplicate_partner_and_duplicate_organisation(build, capsys, tmp_path):
    edit(build / "consortium.yaml", lambda d: d["partners"].append(dict(d["partners"][0])))
    code, err = run_cli(build, capsys, tmp_path)
    assert code == 2 and "unique" in err and "partner-1" in err
    shutil.copy(build / "consortium.yaml", build / "c.bak")
    edit(build / "consortium.yaml", lambda d: d["partners"].pop())
    for name in ("partner-1", "partner-2"):
        edit(build / name / "partner.yaml", lambda d: d.update(organization="SameOrgMSP"))
    code, err = run_cli(build, capsys, tmp_path)
    assert code == 2 and "SameOrgMSP" in err and "claimed by both" in err


def test_missing_keys(build, capsys, tmp_path):
    edit(build / "partner-1" / "partner.yaml", lambda d: d.pop("prepared_dir"))
    code, err = run_cli(build, capsys, tmp_path)
    assert code == 2 and "partner-1" in err and "prepared_dir" in err
    edit(build / "partner-1" / "partner.yaml", lambda d: d.update(prepared_dir="../prepared/partner-1"))
    edit(build / "consortium.yaml", lambda d: d.pop("secret"))
    code, err = run_cli(build, capsys, tmp_path)
    assert code == 2 and "secret" in err


def test_partner_prepared_with_other_settings_or_not_prepared(build, capsys, tmp_path):
    edit(build / "consortium.yaml", lambda d: d["fingerprint"].update(size=4096))
    code, err = run_cli(build, capsys, tmp_path)
    assert code == 2 and "prepared with other fingerprint settings" in err and "fedchem prepare" in err
    edit(build / "consortium.yaml", lambda d: d["fingerprint"].update(size=2048))
    shutil.rmtree(build / "prepared" / "partner-2")
    code, err = run_cli(build, capsys, tmp_path)
    assert code == 2 and "partner-2" in err and "fedchem prepare" in err


def test_partner_with_no_trainable_task(build, capsys, tmp_path):
    # every compound of partner-3 in the validation or test fold: nothing left to train on
    edit(build / "consortium.yaml", lambda d: d["training"].update(validation_fold=0, test_fold=1))
    import numpy as np

    from fedchem.opener.dataset import load_prepared, save_prepared

    pdir = build / "prepared" / "partner-3"
    ds = load_prepared(pdir)
    ds.folds = np.where(np.arange(ds.n_compounds) % 2 == 0, 0, 1)
    save_prepared(ds, pdir, extra_manifest={k: v for k, v in ds.manifest.items() if k != "files"})
    code, err = run_cli(build, capsys, tmp_path)
    assert code == 2 and "partner-3" in err and "no label in its training folds" in err


def test_partner_prepared_with_another_secret_or_for_another_partner(build, capsys, tmp_path):
    """Each partner's prepared manifest is compared with the consortium: its keyed secret fingerprints (column
    scrambling, fold key) and the partner it was made for."""
    (build / "other.secret").write_text("a different consortium secret, long enough\n")
    edit(build / "consortium.yaml", lambda d: d.update(secret={"file": "other.secret"}))
    code, err = run_cli(build, capsys, tmp_path)
    assert code == 2 and "partner-1" in err and "another consortium secret" in err and "fedchem prepare" in err
    edit(build / "consortium.yaml", lambda d: d.update(secret={"file": "consortium.secret"}))
    shutil.copytree(build / "prepared" / "partner-1", build / "prepared" / "copy-of-1")  # partner-1's data, copied
    edit(build / "partner-2" / "partner.yaml", lambda d: d.update(prepared_dir="../prepared/copy-of-1"))
    code, err = run_cli(build, capsys, tmp_path)
    assert code == 2 and "made for partner 'partner-1', not 'partner-2'" in err
    assert not (tmp_path / "run").exists()
