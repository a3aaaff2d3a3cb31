"""One federated round: every active partner trains, the survivors confirm the survivor set and release their
shares (when nobody dropped out, straight from the whole roster's signed receipts, one wave fewer; in local mode
only the threshold's number of them, the rest only if one fails), the aggregator sums the masked updates; then each
partner's head is listed for it to pull and the trunk saved, and (local mode) the outputs no later task reads are
removed from Substra's store (fedchem.orchestrator.run.transient).

A partner whose train task fails (or is canceled) drops out from this round on and the round completes through the
secure-aggregation recovery; too few survivors, confirmations or releases for the threshold, or a failed
aggregation, is a clean, resumable stop (RunStopped, exit 3) that unmasks nothing.
"""

from __future__ import annotations

import functools
import time

from fedchem.orchestrator.ledger import RoundRecord
from fedchem.orchestrator.run import plan as planner
from fedchem.orchestrator.run import pull as puller
from fedchem.orchestrator.run import transient
from fedchem.orchestrator.run.context import ActiveRun, download_as, trunk_path
from fedchem.orchestrator.run.plan import TaskPlan


def _partner(task: TaskPlan) -> str:
    return task.name.split("/")[1]


def _each_partner(run: ActiveRun, tasks: list[TaskPlan], step: str) -> list[str]:
    """Submit one task per partner and wait; the partners whose task succeeded (a failed one is said)."""
    result = run.submitter.step(tasks)
    for task in result.failed:
        run.say(f"  {_partner(task)}: failed to {step}")
    done = {_partner(t) for t in result.done}
    return [_partner(t) for t in tasks if _partner(t) in done]


def run_round(run: ActiveRun, r: int) -> None:
    """Round `r` from submission to the saved trunk and ledger; raises RunStopped when it cannot complete."""
    ctx, say, threshold, active = run.ctx, run.say, run.threshold, run.active
    times: dict[str, float] = {}
    say(f"round {r}/{run.rounds}")
    t = time.perf_counter()
    tasks = [planner.train_task(ctx, name, r, run.first_round, active, run.last_head[name]) for name in active]
    if run.net.synchronous:  # one at a time (each runs inside its call): say how long each took
        result_done: set[str] = set()
        for task in tasks:
            ts = time.perf_counter()
            if run.submitter.step([task]).ok:
                result_done.add(_partner(task))
                say(f"  {_partner(task)}: trained ({time.perf_counter() - ts:.1f} s)")
            else:
                say(f"  {_partner(task)}: FAILED during training: dropped from this round on")
    else:
        result = run.submitter.step(tasks)
        result_done = {_partner(t) for t in result.done}
        for task in result.failed:
            say(f"  {_partner(task)}: FAILED during training: dropped from this round on")
        say(f"  {len(result_done)} partners trained ({time.perf_counter() - t:.1f} s)")
    survivors = [n for n in active if n in result_done]
    dropped = [n for n in active if n not in result_done]
    times["train"] = time.perf_counter() - t
    if run.secure and len(survivors) < threshold:
        raise run.stop(f"round {r}: only {len(survivors)} of {len(active)} partners submitted, below the threshold "
                       f"of {threshold}: nothing was unmasked")
    if not survivors:
        raise run.stop(f"round {r}: no partner submitted")
    releasers = list(survivors)
    t = time.perf_counter()
    if run.secure:
        if dropped:  # consistency step: each survivor signs the survivor set; then releases for that set
            confirmers = _each_partner(run, planner.confirm_tasks(ctx, r, active, survivors),
                                       "confirm the survivor set")
            if len(confirmers) < threshold:
                raise run.stop(f"round {r}: only {len(confirmers)} partners confirmed the survivor set, below the "
                               f"threshold of {threshold}: nothing was unmasked")
            candidates = confirmers
            wave = functools.partial(planner.release_tasks, ctx, r, active, survivors, confirmers)
        else:  # nobody dropped: releases from the whole roster's receipts, with no confirmation wave
            candidates = active
            wave = functools.partial(planner.unanimous_release_tasks, ctx, r, active)
        # t releases unmask the sum. Where tasks run one after another (local mode) only t partners are asked, and
        # the others only if one of them fails; on real nodes a wave's tasks run side by side, so all are asked
        if run.net.synchronous:
            order = planner.release_order(candidates, r)
            first = order[:threshold]
        else:
            order = first = candidates
        releasers = _each_partner(run, wave(first), "release its shares")
        if len(releasers) < threshold and len(first) < len(order):
            releasers += _each_partner(run, wave(order[len(first):]), "release its shares")
        if len(releasers) < threshold:
            raise run.stop(f"round {r}: only {len(releasers)} partners released shares, below the threshold of "
                           f"{threshold}: nothing was unmasked")
    times["release"] = time.perf_counter() - t
    t = time.perf_counter()
    if not run.submitter.step([planner.aggregate_task(ctx, r, run.first_round, active, survivors, releasers)]).ok:
        raise run.stop(f"round {r}: the aggregation failed")
    times["aggregate"] = time.perf_counter() - t
    say(f"  aggregated {len(survivors)} masked updates" + (f" ({len(dropped)} dropped out, recovered)"
                                                             if dropped else ""))
    _record_round(run, r, survivors, dropped, times)


def _record_round(run: ActiveRun, r: int, survivors: list[str], dropped: list[str], times: dict[str, float]) -> None:
    """Each survivor's head (its checkpoint) and log listed in the ledger, pulled by the partner itself (locally:
    here, through its own client); the trunk saved; then the ledger (the round is complete once it is written)."""
    ledger, net, run_dir = run.ledger, run.net, run.run_dir
    t = time.perf_counter()
    for name in survivors:
        run.last_head[name] = r
        puller.add_items(ledger, name, puller.round_items(run.ctx.task_id(f"train/{name}/{r}"), r))
        if net.local:
            puller.pull_partner(run_dir, name, net.clients[name], net.orgs[name], ledger)
    agg_task = run.known[run.ctx.task_id(f"aggregate/{r}")]
    download_as(net, run.agg, agg_task, "trunk", trunk_path(run_dir, r))
    times["download"] = time.perf_counter() - t
    for name in dropped:
        ledger.dropped[name] = r
    run.active = survivors
    ledger.rounds.append(RoundRecord(round=r, plan_id=run.ctx.plan_id, survivors=survivors, dropped=dropped,
                                     seconds={k: round(v, 3) for k, v in times.items()}))
    ledger.completed_rounds = r
    ledger.save(run_dir)
    if run.free_outputs:  # local mode: what no later task reads leaves Substra's store
        transient.queue_after_round(run, r, run.freed)
    old = trunk_path(run_dir, r - 2)
    if r - 2 >= 1 and old.exists():
        old.unlink()
