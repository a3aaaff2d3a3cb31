"""The run ledger: the orchestrator's own record of a run, since Substra's local backend forgets everything.

One JSON file in the run folder, rewritten atomically (temp + rename) after every step that matters, so a run
killed at any point (SIGINT or SIGKILL) resumes from its last completed round. It holds no data, no metrics of a
partner and no secret: settings, rounds, timings, who dropped out, the consortium secret's keyed fingerprints
(opener.secret_check), and per partner what it may pull of its own (task keys and output names: orchestrator.run.pull).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fedchem.opener.errors import ConfigError, DataError, os_errors
from fedchem.opener.fileio import PRIVATE_FILE_MODE, write_json

LEDGER = "ledger.json"


@dataclass
class RoundRecord:
    round: int
    plan_id: str
    survivors: list[str]
    dropped: list[str]
    seconds: dict[str, float]           # wall time by phase: train, release, aggregate, download, substra
    clipped: int | None = None          # coordinates clipped by secure-aggregation encoding (from partners' logs)


@dataclass
class Ledger:
    run_name: str
    settings_hash: str
    partners: list[str]
    aggregator: str
    rounds_planned: int
    secure: bool
    consortium_path: str = ""           # the consortium config the run was started with (for --resume)
    status: str = "created"             # created | running | stopped | failed | completed
    completed_rounds: int = 0
    rounds: list[RoundRecord] = field(default_factory=list)
    dropped: dict[str, int] = field(default_factory=dict)  # partner -> round it dropped out in
    plans: list[dict] = field(default_factory=list)        # one per run segment: plan id, first round, start time
    message: str = ""
    evaluated: bool = False
    wheel_sha256: str = ""              # fedchem's wheel in the function archives (run.backend.Network.wheel)
    secret_fingerprints: dict = field(default_factory=dict)  # the consortium secret's keyed fingerprints
    outputs: dict[str, list[dict]] = field(default_factory=dict)  # partner -> what it pulls (orchestrator.run.pull)
    updated: float = 0.0

    def save(self, run_dir: Path) -> None:
        self.updated = time.time()
        path = Path(run_dir) / LEDGER
        with os_errors(path):
            write_json(path, asdict(self), PRIVATE_FILE_MODE)  # the operator's record: owner-only

    @classmethod
    def load(cls, run_dir: Path) -> "Ledger":
        path = Path(run_dir) / LEDGER
        if not path.is_file():
            raise ConfigError("this folder holds no fedchem run (no ledger.json)", where=str(run_dir),
                              fix="give the run folder that `fedchem run` created")
        fix = ("the ledger was damaged or does not come from `fedchem run`: give the run folder `fedchem run` created, "
               "or start a new run in a new folder")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError):
            raise ConfigError("the run's ledger.json is not valid JSON", where=str(path), fix=fix) from None
        try:
            if not isinstance(data, dict):
                raise TypeError("not a mapping")
            data["rounds"] = [RoundRecord(**r) for r in data.get("rounds", [])]
            ledger = cls(**data)
            ledger.check()
        except (TypeError, ValueError, AttributeError) as exc:
            raise ConfigError(f"the run's ledger.json is not a fedchem ledger ({exc})", where=str(path),
                              fix=fix) from None
        return ledger

    def check(self) -> None:
        """The fields a resume and a report rely on have the right types (ValueError if not)."""
        typed = {"run_name": str, "settings_hash": str, "aggregator": str, "rounds_planned": int, "secure": bool,
                 "status": str, "completed_rounds": int, "partners": list, "dropped": dict, "plans": list}
        for key, kind in typed.items():
            if not isinstance(getattr(self, key), kind):
                raise ValueError(f"key '{key}' must be a {kind.__name__}")
        if self.status not in ("created", "running", "stopped", "failed", "completed"):
            raise ValueError(f"unknown status {self.status!r}")
        if not all(isinstance(p, str) for p in self.partners):
            raise ValueError("key 'partners' must list names")
        if not 0 <= self.completed_rounds <= self.rounds_planned:
            raise ValueError("key 'completed_rounds' must lie between 0 and 'rounds_planned'")


def settings_hash(settings: dict) -> str:
    """A fingerprint of everything that must not change between a run and its resume."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def partner_ledger(run_dir: Path, partner: str) -> Ledger:
    """The run's ledger, once it is checked that `partner` took part to the end and the run was evaluated (what its
    report and predictions need)."""
    ledger = Ledger.load(run_dir)
    if partner not in ledger.partners:
        raise ConfigError(f"partner '{partner}' did not take part in this run", where=str(run_dir / "ledger.json"),
                          fix="give the name of a partner of this run (`fedchem status RUN_DIR` lists them)")
    if partner in ledger.dropped:
        raise DataError(f"partner '{partner}' dropped out in round {ledger.dropped[partner]}, so the run holds no "
                        "final evaluation for it", where=str(run_dir / "ledger.json"),
                        fix="rejoin it in a new run (a dropped partner is left out of later rounds)")
    if not ledger.evaluated:
        raise DataError(f"the run has not reached its final evaluation (status: {ledger.status})",
                        where=str(run_dir / "ledger.json"), fix=f"finish it first: fedchem run --resume {run_dir}")
    return ledger
