"""The federated run: set-up (checks, ledger, key setup), R rounds of train -> (confirm, after a dropout) -> release
-> aggregate, a final evaluation -- each its own module (setup, rounds, evaluation), composed here.

Every step is submitted, then waited on (fedchem.orchestrator.run.submit): Substra's local backend runs a task inside
the submitting call, a real node later, so the same path serves both. A partner whose train task fails or is
canceled drops out and the round completes with the survivors through the secure-aggregation recovery; a task that
does not finish within `federation.task_timeout` stops the run cleanly (exit 3). After every completed round the
trunk is saved and the ledger lists what each partner may pull (its head, its log: task keys only); each partner
pulls its own through its own client (fedchem.orchestrator.run.pull: here in local mode, `fedchem pull` on its own
machine in remote mode), so `--resume` continues from its private checkpoint with a fresh key setup and reaches the
same trunk.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from fedchem.algo.functions import warmstart
from fedchem.opener.errors import FedchemError, RunStopped, interrupted_by
from fedchem.orchestrator.config import ConsortiumConfig, PartnerConfig
from fedchem.orchestrator.ledger import Ledger
from fedchem.orchestrator.run import backend as sb
from fedchem.orchestrator.run import plan as planner
from fedchem.orchestrator.run import transient
from fedchem.orchestrator.run import workdir
from fedchem.orchestrator.run.context import stopped
from fedchem.orchestrator.run.evaluation import final_evaluation
from fedchem.orchestrator.run.rounds import run_round
from fedchem.orchestrator.run.setup import key_setup, open_run, start_plan
from fedchem.orchestrator.run.waiting import TaskTimedOut


@dataclass
class RunResult:
    run_dir: Path
    ledger: Ledger
    network: sb.Network | None = None
    tasks: dict[str, planner.TaskPlan] = field(default_factory=dict)
    warm_tasks: int = 0  # tasks a warm server ran (local mode, algo.functions.warmstart); the others started cold


def run_federation(consortium: ConsortiumConfig, partners: dict[str, PartnerConfig], run_dir: Path, *,
                   rounds: int | None = None, resume: bool = False, secure: bool | None = None,
                   network: sb.Network | None = None, console: Callable[[str], None] | None = None,
                   keep_network: bool = False, keep_outputs: bool = False,
                   consortium_path: Path | None = None) -> RunResult:
    """Run (or resume) a federated training; returns the ledger and, for tests, the Substra network and tasks.

    `secure=False` is a test-only switch (no CLI flag or config key reaches it): partners refuse its plain plan
    unless each opted in on its own node (fedchem.algo.guard.rules.PLAIN_OPT_IN).

    The run holds its folder (workdir.run_session): owner-only files, and Substra's work folder with the secret-key
    bundles removed on every exit path (`keep_network`: kept, for tests). In local mode each round's outputs that no
    later task reads leave Substra's store, each just before its organisation's next task (run.transient;
    `keep_outputs`: every one stays until the end, for tests that read them all). A run that ends by an error leaves
    a ledger that says so."""
    say = console or logging.getLogger(__name__).info  # progress lines (no data, no values); the CLI prints them
    run_dir = Path(run_dir).resolve()
    with workdir.run_session(run_dir, keep=keep_network, say=say):
        try:
            opened = open_run(consortium, partners, run_dir, rounds=rounds, resume=resume, secure=secure,
                              local=network is None or network.local, say=say, consortium_path=consortium_path)
            result = RunResult(run_dir, opened.ledger)
            if opened.done:
                return result
            plan_id = str(uuid.uuid4())
            work = run_dir / "substra-work" / plan_id[:8]
            local = network is None or network.local
            with sb.working_directory(work), (warmstart.serving() if local else contextlib.nullcontext()) as warm:
                run = start_plan(consortium, partners, run_dir, opened, network, plan_id, work, say)
                run.free_outputs = not keep_outputs
                if run.free_outputs:  # a round's unread outputs go just before their owner's next task
                    run.submitter.before_submit = functools.partial(transient.free_before, run)
                result.network, result.tasks = run.net, run.known
                if warm is not None:  # a cold task costs more than waiting out the server's imports
                    warm.wait_ready(timeout=30)
                try:
                    key_setup(run)
                    for r in range(run.first_round, run.rounds + 1):
                        run_round(run, r)
                    final_evaluation(run)
                    transient.free_queued(run)
                except TaskTimedOut as exc:
                    raise stopped(run.ledger, run_dir, say, exc.what) from None
                finally:
                    result.warm_tasks = len(warm.served()) if warm is not None else 0
            return result
        except BaseException as exc:
            _record_failure(run_dir, exc)
            raise


def _record_failure(run_dir: Path, exc: BaseException) -> None:
    """A run that did not end cleanly leaves a ledger saying how (a clean stop was recorded already)."""
    try:
        ledger = Ledger.load(run_dir)
    except FedchemError:
        return  # nothing was started
    if ledger.status != "running":
        return
    interrupt = interrupted_by(exc)  # Ctrl-C or SIGTERM, also when it broke a cleanup into another error
    if interrupt is not None:
        ledger.status = "stopped"
        ledger.message = f"interrupted ({type(interrupt).__name__} {interrupt})".replace(" )", ")")
    elif isinstance(exc, RunStopped):  # e.g. the backend could not be reached: resumable
        ledger.status, ledger.message = "stopped", exc.what
    else:
        ledger.status = "failed"
        ledger.message = exc.message().splitlines()[0] if isinstance(exc, FedchemError) else type(exc).__name__
    ledger.save(run_dir)
