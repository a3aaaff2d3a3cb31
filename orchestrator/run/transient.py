"""Local mode: a round's task outputs that no later task reads are removed from Substra's store once the round is
recorded, as a real backend removes outputs marked transient (Substra's local backend ignores that mark). Each file
goes just before the next task of the organisation that wrote it: that task writes about as much again.

Why. Substra's local backend keeps every output of every task until the run ends: a train task alone leaves its
masked update and its optimizer state, each twice the trunk's size, so a 10-partner demo round added about
1.3 GB, and 12 rounds 16 GB. On these machines that growing store also slowed every round (the kernel's write-back
of it competes with the next tasks' writes: README, *Figures*).

What stays is derived from the plan's own builders: every input of the tasks that can still follow (each active
partner's next train task and its final evaluation), and every output of the set-up tasks (keys and sealed shares,
read by every round). The partners have pulled what they keep (checkpoint, log) before this runs, and the trunk of
the round is in the run folder. Files go, Substra's records of them stay: nothing reads a removed output again.
"""

from __future__ import annotations

import os

from fedchem.orchestrator.run import plan as planner
from fedchem.orchestrator.run.context import ActiveRun
from fedchem.orchestrator.run.plan import TaskPlan

Output = tuple[str, str]  # (task id, output identifier)


def still_read(run: ActiveRun, r: int) -> set[Output]:
    """The outputs a task after round `r` can read: inputs of each active partner's next train task and of its
    final evaluation (the plan's own builders, so this cannot drift from what is submitted)."""
    ctx = run.ctx
    following: list[TaskPlan] = []
    for name in run.active:
        following.append(planner.train_task(ctx, name, r + 1, run.first_round, run.active, run.last_head[name]))
        following.append(planner.evaluate_task(ctx, name, r, run.first_round, run.last_head[name]))
    return {(ref.parent_task, ref.parent_output) for task in following for ref in task.inputs if ref.parent_task}


def unread_outputs(known: dict[str, TaskPlan], keep: set[Output], gone: set[Output]) -> list[Output]:
    """Outputs of submitted round tasks that are neither in `keep` nor removed already (set-up tasks, which have
    no round, keep theirs)."""
    return [(tid, ident) for tid, task in known.items() if task.round is not None
            for ident, _ in task.outputs if (tid, ident) not in keep and (tid, ident) not in gone]


def queue_after_round(run: ActiveRun, r: int, gone: set[Output]) -> list[Output]:
    """Queue for removal from Substra's local store the outputs no task after round `r` reads (`free_before` removes
    them); returns what was queued and adds it to `gone`. Nothing happens on a real backend (each node manages its
    own storage)."""
    if not run.net.local:
        return []
    from substra.sdk.exceptions import TaskAssetNotFoundError

    client = run.net.operator  # one in-process Substra: its records of every organisation's outputs
    queued = []
    for tid, ident in unread_outputs(run.known, still_read(run, r), gone):
        gone.add((tid, ident))
        try:
            path = client.get_task_output_asset(tid, ident).asset.address.storage_address
        except TaskAssetNotFoundError:  # a task that failed left no such output
            continue
        run.to_free.setdefault(run.known[tid].worker, []).append(str(path))
        queued.append((tid, ident))
    return queued


def free_before(run: ActiveRun, tasks: list[TaskPlan]) -> int:
    """Remove the queued outputs of the organisations that run `tasks`, just before they run (the submitter's
    hook): returns how many files went. Each organisation's next task writes about what it frees (a train task,
    its masked update and optimizer state), and memory freed moments before it is written again is reused, where
    memory freed a round earlier has gone back to the host and is slow to fault in (README, *Figures*)."""
    return sum(_unlink(run.to_free.pop(worker, [])) for worker in {t.worker for t in tasks})


def free_queued(run: ActiveRun) -> int:
    """Remove every queued output (the run's end: no task follows); returns how many files went."""
    return sum(_unlink(run.to_free.pop(worker)) for worker in list(run.to_free))


def _unlink(paths: list[str]) -> int:
    n = 0
    for path in paths:
        try:
            os.unlink(path)
        except OSError:  # gone already, or only space is lost: the run's end removes the whole store
            continue
        n += 1
    return n
