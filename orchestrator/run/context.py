"""What a run's set-up hands to its rounds and its final evaluation, and the few things all three do.

The run driver is three steps (fedchem.orchestrator.run.setup, .rounds, .evaluation) around one `ActiveRun`:
who takes part, the plan's context and submitter, the ledger, and what each partner's next task starts from.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fedchem.opener.errors import RunStopped
from fedchem.opener.fileio import move_into_place
from fedchem.orchestrator.config import ConsortiumConfig, PartnerConfig
from fedchem.orchestrator.ledger import Ledger
from fedchem.orchestrator.run import backend as sb
from fedchem.orchestrator.run.plan import PlanContext, TaskPlan
from fedchem.orchestrator.run.submit import Submitter


@dataclass
class ActiveRun:
    """A run between its set-up and its end: rounds `first_round..rounds` of plan `ctx.plan_id`."""

    consortium: ConsortiumConfig
    partners: dict[str, PartnerConfig]
    run_dir: Path
    ledger: Ledger
    net: sb.Network
    ctx: PlanContext
    submitter: Submitter
    say: Callable[[str], None]
    rounds: int
    first_round: int
    threshold: int
    secure: bool
    active: list[str] = field(default_factory=list)  # partners still taking part
    last_head: dict[str, int | None] = field(default_factory=dict)  # partner -> round of its newest head task
    free_outputs: bool = True  # local mode: remove outputs no later task reads after each round (run.transient)
    freed: set[tuple[str, str]] = field(default_factory=set)  # (task id, output) removed from Substra's local store
    to_free: dict[str, list[str]] = field(default_factory=dict)  # worker -> its stored files queued (run.transient)

    @property
    def agg(self) -> str:
        return self.net.aggregator

    @property
    def known(self) -> dict[str, TaskPlan]:
        return self.submitter.known

    def stop(self, message: str) -> RunStopped:
        return stopped(self.ledger, self.run_dir, self.say, message)


def trunk_path(run_dir: Path, round_: int) -> Path:
    """The global trunk after a round, as the aggregator keeps it (the final one is also aggregator/trunk.npz)."""
    return Path(run_dir) / "aggregator" / "trunks" / f"round_{round_:03d}.npz"


def download_as(net: sb.Network, reader: str, task: TaskPlan, identifier: str, dest: Path) -> Path:
    """Download one output through `reader`'s client into `dest`, atomically."""
    tmpdir = dest.parent / f".dl-{uuid.uuid4().hex[:8]}"
    try:
        got = sb.download(net, reader, task, identifier, tmpdir)
        move_into_place(got, dest)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    return dest


def stopped(ledger: Ledger, run_dir: Path, say, message: str) -> RunStopped:
    """Record a clean stop in the ledger and return the error to raise (the run is resumable: exit 3)."""
    ledger.status = "stopped"
    ledger.message = message
    ledger.save(run_dir)
    say(f"stopped: {message}")
    say(f"the run is resumable from round {ledger.completed_rounds + 1}: fedchem run --resume {run_dir}")
    return RunStopped(message, where=str(run_dir / "ledger.json"),
                      fix=f"bring the partners back and run `fedchem run --resume {run_dir}`")
