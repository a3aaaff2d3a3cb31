"""A partner's signed agreement: written by `fedchem agree` into its node folder, checked by `fedchem run`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fedchem.opener.errors import ConfigError
from fedchem.orchestrator.agreement import agreement_of, check_agreement, sign_agreement
from fedchem.orchestrator.config import load_all

CONSORTIUM = Path(__file__).resolve().parents[2] / "partner_configs" / "consortium.yaml"


def test_sign_then_check_and_a_changed_config_is_caught(tmp_path):
    consortium, partners = load_all(CONSORTIUM)
    p = next(iter(partners.values())).model_copy(update={"node_dir": tmp_path / "node"})
    with pytest.raises(ConfigError, match="holds no signed agreement"):
        check_agreement(consortium, p)
    path = sign_agreement(consortium, p)
    assert path.stat().st_mode & 0o077 == 0 and (tmp_path / "node").stat().st_mode & 0o777 == 0o700
    assert check_agreement(consortium, p) == agreement_of(consortium).fingerprint_hex
    more_rounds = consortium.model_copy(update={"federation": consortium.federation.model_copy(
        update={"rounds": consortium.federation.rounds + 1})})
    with pytest.raises(ConfigError, match="signed another agreement"):
        check_agreement(more_rounds, p)


def test_agree_command(tmp_path):
    consortium, partners = load_all(CONSORTIUM)
    ref = consortium.partners[0]
    cfg = tmp_path / "partner.yaml"  # the partner's own config, its node folder moved into tmp
    cfg.write_text("\n".join(l for l in ref.config.read_text().splitlines() if not l.startswith(("node_dir:",
                                                                                               "prepared_dir:")))
                   + f"\nnode_dir: {tmp_path / 'node'}\n")
    done = subprocess.run([sys.executable, "-m", "fedchem.orchestrator.cli.main", "agree", "--consortium",
                           str(CONSORTIUM), "--partner", str(cfg)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert agreement_of(consortium).fingerprint_hex in done.stdout
    assert (tmp_path / "node" / "agreement.json").is_file()
