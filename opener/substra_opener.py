"""The Substra opener of every fedchem dataset: it tells a task which of its data-sample folders is which.

A partner's dataset holds its prepared folder (has `manifest.json`) and, after a resume, its private checkpoint
(has `checkpoint.json`); the aggregator's dataset holds the starting trunk of a plan (has `trunk.npz`).
Nothing is loaded here: tasks load what they need, so a light task never pays for a heavy read.
This file is registered as the dataset's opener; Substra imports it by path inside each task.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import substratools as tools


@dataclass
class TaskData:
    """The folders a task was given, by role (None when absent)."""

    prepared_dir: Path | None = None
    checkpoint_dir: Path | None = None
    trunk_dir: Path | None = None


def classify_folders(folders: list[str]) -> TaskData:
    """Sort data-sample folders by the marker file each role has."""
    data = TaskData()
    for f in map(Path, folders):
        if (f / "manifest.json").is_file():
            data.prepared_dir = f
        elif (f / "checkpoint.json").is_file():
            data.checkpoint_dir = f
        elif (f / "trunk.npz").is_file():
            data.trunk_dir = f
    return data


class FedchemOpener(tools.Opener):
    def get_data(self, folders):
        return classify_folders(folders)

    def fake_data(self, n_samples=None):
        return TaskData()
