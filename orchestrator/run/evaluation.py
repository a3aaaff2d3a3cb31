"""The final evaluation: each remaining partner evaluates the last trunk with its own head on its own folds.

Its metrics and test predictions are private outputs: listed in the ledger for the partner to pull (locally: pulled
here through its own client). With the consortium's opt-in, one public summary figure per partner follows.
"""

from __future__ import annotations

import shutil

from fedchem.orchestrator.run import backend as sb
from fedchem.orchestrator.run import plan as planner
from fedchem.orchestrator.run import pull as puller
from fedchem.orchestrator.run.context import ActiveRun, trunk_path
from fedchem.orchestrator.run.pull import latest_checkpoint, partner_dir


def final_evaluation(run: ActiveRun) -> None:
    """Evaluate, list (and locally pull) every partner's results, then mark the run completed."""
    ctx, net, ledger, rounds, say = run.ctx, run.net, run.ledger, run.rounds, run.say
    say("final evaluation")
    last_trunk = (run.known[ctx.task_id(f"aggregate/{rounds}")] if rounds >= run.first_round
                  else run.known[ctx.task_id("init_trunk")])
    tasks = {name: planner.evaluate_task(ctx, name, rounds, run.first_round, run.last_head[name])
             for name in run.active}
    result = run.submitter.step(list(tasks.values()))
    if not result.ok:
        failed = ", ".join(t.name for t in result.failed)
        raise sb.TaskFailed(f"a task failed while running [{failed}]", where="final evaluation",
                            fix="see the task's output above and its private log; `fedchem run --resume RUN_DIR` "
                                "evaluates again")
    for name, task in tasks.items():
        head_key = ctx.task_id(f"train/{name}/{run.last_head[name]}") if run.last_head[name] is not None else None
        ck = latest_checkpoint(run.run_dir, name, rounds) if head_key is None and net.local else None
        head_round = run.last_head[name] if head_key else (int(ck.name.split("_")[1]) if ck else None)
        puller.add_items(ledger, name, puller.final_items(task.task_id, last_trunk.task_id, rounds, head_key,
                                                          head_round))
        if net.local:  # the partner's final model (trunk.npz + head.npz), metrics and test predictions
            puller.pull_partner(run.run_dir, name, net.clients[name], net.orgs[name], ledger)
        say(f"  {name}: evaluated; private results in {partner_dir(run.run_dir, name)}" if net.local else
            f"  {name}: evaluated; it pulls its private results itself: fedchem pull {run.run_dir} --partner-config "
            f"<{name}'s partner.yaml>")
    if ctx.publish_summary:  # opt-in: one public figure per partner for the web UI
        summaries = run.submitter.step([planner.summary_task(ctx, name, rounds) for name in tasks])
        for task in summaries.failed:
            say(f"  {task.name.split('/')[1]}: its public summary failed (its private results are not affected)")
    shutil.copyfile(trunk_path(run.run_dir, rounds), run.run_dir / "aggregator" / "trunk.npz")
    ledger.evaluated = True
    ledger.status = "completed"
    ledger.save(run.run_dir)
    say(f"run completed: {rounds} rounds; each partner's results are in {run.run_dir / 'partners'}/<name>/")
