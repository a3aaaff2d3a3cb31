"""The Substra opener of every fedchem dataset: it tells a task which of its data-sample folders is which.

A partner's dataset holds its prepared folder (has `manifest.json`) and, after a resume, its private checkpoint
(has `checkpoint.json`); the aggregator's dataset holds the starting trunk of a plan (has `trunk.npz`).
Nothing is loaded here: tasks load what they need, so a light task never pays for a heavy read.
This file is registered as the dataset's opener; Substra imports it by path inside each task. A partner's opener
also names the partner's node folder (its signed agreement and private protocol state, outside any data sample):
the partner registers the opener itself, so a plan cannot point its tasks at another folder.
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
    node_dir: Path | None = None  # the partner's own agreement and protocol state (partner datasets only)


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
    node_dir: str | None = None

    def get_data(self, folders):
        data = classify_folders(folders)
        data.node_dir = Path(self.node_dir) if self.node_dir else None
        return data

    def fake_data(self, n_samples=None):
        return TaskData()


def partner_opener(node_dir: str) -> type:
    """The opener class of one partner's dataset, bound to its node folder (the registered opener file calls this,
    so its module holds exactly one Opener subclass)."""
    return type("FedchemOpener", (FedchemOpener,), {"node_dir": str(node_dir)})


def partner_opener_source(node_dir) -> str:
    """The opener file a partner registers: the shared opener bound to its own node folder."""
    return ('"""fedchem partner dataset opener (the code lives in fedchem.opener.substra_opener)."""\n'
            "from fedchem.opener.substra_opener import partner_opener\n\n"
            f"FedchemOpener = partner_opener({str(Path(node_dir).resolve())!r})\n")
