"""A partner's node for function-level tests: a prepared-folder stand-in naming the partner, and its agreement."""

from __future__ import annotations

import json
from pathlib import Path

from fedchem.algo.config import ModelConfig, SecAggConfig, TrainingConfig
from fedchem.algo.guard.agreement import Agreement, save_agreement
from fedchem.opener.config import FingerprintConfig, PreparationConfig
from fedchem.opener.substra_opener import TaskData


def agreement_for(partners: list[str], **changes) -> Agreement:
    fields = dict(consortium="test", partners=tuple(partners), aggregator="aggregator",
                  fingerprint=FingerprintConfig(), preparation=PreparationConfig(), model=ModelConfig(),
                  training=TrainingConfig(), secure_aggregation=SecAggConfig(), rounds=3, evaluate_every=1,
                  publish_summary=False)
    fields.update(changes)
    return Agreement(**fields)


def partner_node(root: Path, me: str, partners: list[str], **changes) -> tuple[TaskData, Agreement]:
    """TaskData as the partner's opener returns it: its prepared folder (manifest only) and its node folder."""
    prepared = root / "prepared"
    prepared.mkdir(parents=True)
    (prepared / "manifest.json").write_text(json.dumps({"partner": me}))
    agreement = agreement_for(partners, **changes)
    save_agreement(root / "node", agreement)
    return TaskData(prepared_dir=prepared, node_dir=root / "node"), agreement
