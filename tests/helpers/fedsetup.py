"""A small real consortium for end-to-end tests: 3 MoleculeACE partners (PyPI wheel, real ChEMBL data), prepared.

Built once per test session (data build + preparation take seconds at this size) and shared read-only.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from fedchem.orchestrator.demo.consortium import prepare_consortium
from fedchem.orchestrator.config import load_all
from fedchem.orchestrator.demo.public_data import build_moleculeace

SMALL = {
    "fingerprint": {"kind": "folded", "radius": 2, "size": 2048, "scramble": True},
    "model": {"hidden_sizes": [64], "dropout": 0.1, "input_transform": "binarize"},
    "training": {"epochs": 3, "epochs_per_round": 1.0, "batch_size": 64, "learning_rate": 0.002,
                 "validation_fold": 0, "test_fold": 1, "seed": 7},
    "federation": {"rounds": 2, "evaluate_every": 1, "aggregator": "aggregator", "publish_summary": True},
}


def build_small_consortium(root: Path, max_per_target: int = 40, overrides: dict | None = None) -> Path:
    """Raw partner folders, a consortium file with small settings, and each partner prepared; returns its path."""
    raw = root / "raw"
    build_moleculeace(raw, n_partners=3, max_per_target=max_per_target)
    cpath = raw / "consortium.yaml"
    data = yaml.safe_load(cpath.read_text())
    for key, value in {**SMALL, **(overrides or {})}.items():
        data[key] = value
    data["name"] = "e2e"
    cpath.write_text(yaml.safe_dump(data, sort_keys=False))
    prepare_consortium(cpath, workers=1)
    load_all(cpath)
    return cpath
