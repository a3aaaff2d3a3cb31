"""Small helpers shared by the Substra task functions: who am I, which round, which settings, atomic writes."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from fedchem.algo.config import ModelConfig, SecAggConfig, TrainingConfig
from fedchem.opener.errors import DataError

FAIL_ENV = "FEDCHEM_TEST_FAIL"
# A partner's aggregation weight is its number of training compounds in units of WEIGHT_UNIT, so that it lies in
# (0, SecAggConfig.max_weight = 1] for any partner up to ten million training compounds.
WEIGHT_UNIT = 1e7  # test hook: "partner:round[:stage],..." makes that partner's task fail there


def partner_name(prepared_dir: Path) -> str:
    """The partner a prepared dataset belongs to (recorded by `fedchem prepare` in its manifest)."""
    manifest = json.loads((Path(prepared_dir) / "manifest.json").read_text())
    name = manifest.get("partner")
    if not name:
        raise DataError("the prepared dataset does not name its partner", where=str(prepared_dir),
                        fix="re-run `fedchem prepare` for this partner")
    return name


def settings_of(meta: dict) -> tuple[ModelConfig, TrainingConfig, SecAggConfig]:
    s = meta["settings"]
    return ModelConfig(**s["model"]), TrainingConfig(**s["training"]), SecAggConfig(**s["secure_aggregation"])


def derived_seed(*parts: object) -> int:
    """A reproducible 63-bit seed for shuffling/dropout (not secret material)."""
    return int.from_bytes(hashlib.sha256("/".join(map(str, parts)).encode()).digest()[:8], "big") >> 1


def maybe_fail(partner: str, round_: int, stage: str) -> None:
    """Test hook standing for a partner's node going down mid-round (set only by tests)."""
    for item in filter(None, os.environ.get(FAIL_ENV, "").split(",")):
        bits = item.split(":")
        if bits[0] == partner and int(bits[1]) == round_ and (len(bits) < 3 or bits[2] == stage):
            raise SystemExit(f"[test hook {FAIL_ENV}] {partner} fails in round {round_} at {stage}")

