"""The privacy checker: every task spec is checked against DESIGN.md section 7 before it is submitted.

Substra's local backend enforces no permission at all, and a real backend only checks that a reader is authorized,
not that the authorization is wise; so this is where a plan that would leak is stopped, with the task and output
named. Rules, from what each function's output holds (fedchem.algo.functions.specs.Content):
  1. private outputs (heads, metrics, predictions, secrets, logs) are readable by their owner only;
  2. masked updates and released shares by their owner and the aggregator only; nothing else leaves a partner
     towards the aggregator;
  3. the aggregator's tasks output the trunk alone; every output reaches consortium members only;
  4. nothing is public, except, when the consortium opts in, one summary figure per partner (a Substra
     performance, computed from the partner's own metrics by a function that outputs that figure alone);
  5. a task runs where its data is (its dataset belongs to its worker), reads only outputs its worker may read, and
     takes each input from an output of the same identifier (a head cannot be fed in as a trunk);
  6. structure of a round: one train, one confirmation and one release per partner per round, one aggregate per
     round, and the aggregate reads every survivor's masked update of its own round exactly once (a replayed round
     or a second release request is refused here first; each partner's own node refuses them again, since this
     checker runs on the operator's side and is not a security boundary).
"""

from __future__ import annotations

from fedchem.algo.functions.specs import FUNCTIONS, Content
from fedchem.opener.errors import PrivacyError
from fedchem.orchestrator.run.plan import PlanContext, TaskPlan


def _refuse(task: TaskPlan, what: str, output: str | None = None, fix: str = "") -> PrivacyError:
    where = f"task '{task.name}' ({task.task_id})" + (f", output '{output}'" if output else "")
    return PrivacyError(f"plan refused: {what}", where=where,
                        fix=fix or "this plan would leak private data; it was not submitted. Build plans with "
                                   "fedchem.orchestrator.run.plan, which sets safe permissions")


_ONCE_PER_ROUND = {"train": "train", "confirm_survivors": "confirmation", "release_shares": "release",
                   "aggregate": "aggregate"}


def _check_structure(tasks: list[TaskPlan], registry: dict[str, TaskPlan]) -> None:
    """Rule 6 over the new tasks, against everything submitted or about to be."""
    seen: dict[tuple, str] = {}
    for t in registry.values():
        if t.function in _ONCE_PER_ROUND:
            worker = None if t.function == "aggregate" else t.worker
            seen.setdefault((t.function, worker, t.round), t.task_id)
    for task in tasks:
        kind = _ONCE_PER_ROUND.get(task.function)
        if kind is None:
            continue
        if task.round is None:
            raise _refuse(task, f"a {kind} task names no round")
        worker = None if task.function == "aggregate" else task.worker
        first = seen[(task.function, worker, task.round)]
        if first != task.task_id:
            who = "" if worker is None else f" of organisation {task.worker}"
            raise _refuse(task, f"a second {kind}{who} in round {task.round} (the first is "
                                f"'{registry[first].name}'): one {kind} per partner per round",
                          fix="a round is never replayed or re-released within a plan; resume in a new plan")
    for task in tasks:
        if task.function == "aggregate":
            trains = {t.task_id for t in registry.values() if t.function == "train" and t.round == task.round}
            read = [ref.parent_task for ref in task.inputs if ref.identifier == "masked_update"]
            for parent in read:
                if parent not in trains:
                    name = registry[parent].name if parent in registry else parent
                    raise _refuse(task, f"reads a masked update from '{name}', which is not a train task of round "
                                        f"{task.round}")
            if len(set(read)) != len(read):
                raise _refuse(task, "reads one masked update twice")
            missing = sorted(registry[t].name for t in trains - set(read))
            if missing:
                raise _refuse(task, f"does not read every survivor's masked update (missing: {', '.join(missing)})",
                              fix="the aggregate of a round sums the updates of every partner that trained in it")


def check_tasks(ctx: PlanContext, tasks: list[TaskPlan], known: dict[str, TaskPlan] | None = None) -> None:
    """Raise PrivacyError on the first task that breaks a rule; `known` holds tasks already submitted."""
    registry = dict(known or {})
    registry.update({t.task_id: t for t in tasks})
    dataset_owner = {}
    for owner, keys in ctx.datasets.items():
        org = ctx.aggregator_org if owner == "aggregator" else ctx.partner_orgs[owner]
        dataset_owner[keys.opener] = org
        for k in keys.samples:
            dataset_owner[k] = org
    partner_orgs = set(ctx.partner_orgs.values())

    for task in tasks:
        fdef = FUNCTIONS.get(task.function)
        if fdef is None:
            raise _refuse(task, f"unknown function '{task.function}'")
        # where it runs
        if fdef.role == "aggregator" and task.worker != ctx.aggregator_org:
            raise _refuse(task, f"aggregator function '{task.function}' placed on organisation {task.worker}")
        if fdef.role == "partner" and task.worker not in partner_orgs:
            raise _refuse(task, f"partner function '{task.function}' placed on non-partner {task.worker}")
        # inputs: declared ones only, own data only, readable parents only, identifiers matching
        declared_inputs = {i.identifier for i in fdef.inputs}
        for ref in task.inputs:
            if ref.identifier not in declared_inputs:
                raise _refuse(task, f"input '{ref.identifier}' is not an input of function '{task.function}' "
                                    f"(it takes {', '.join(sorted(declared_inputs))})")
            if ref.asset_key is not None:
                owner = dataset_owner.get(ref.asset_key)
                if owner is None:
                    raise _refuse(task, f"input '{ref.identifier}' names an unknown dataset asset")
                if owner != task.worker:
                    raise _refuse(task, f"runs on organisation {task.worker} but reads data of {owner}",
                                  fix="a task must run on the organisation that owns its dataset")
                continue
            parent = registry.get(ref.parent_task)
            if parent is None:
                raise _refuse(task, f"input '{ref.identifier}' comes from an unknown task {ref.parent_task}")
            if ref.parent_output not in dict(parent.outputs):
                raise _refuse(task, f"input '{ref.identifier}' names output '{ref.parent_output}' that task "
                                    f"'{parent.name}' does not have")
            if ref.parent_output != ref.identifier:
                raise _refuse(task, f"input '{ref.identifier}' is fed from output '{ref.parent_output}' of "
                                    f"'{parent.name}'")
            if task.worker not in parent.authorized(ref.parent_output):
                raise _refuse(task, f"reads '{ref.parent_output}' of '{parent.name}', which its organisation "
                                    f"{task.worker} may not read")
        # outputs: exactly the declared ones, each readable by no more than its content allows
        declared = {o.identifier for o in fdef.outputs}
        given = {ident for ident, _ in task.outputs}
        if given != declared:
            extra = sorted(given - declared)
            raise _refuse(task, f"outputs {sorted(given)} differ from the function's declared {sorted(declared)}"
                          + (f" (extra: {', '.join(extra)})" if extra else ""), extra[0] if extra else None)
        for ident, readers in task.outputs:
            content = fdef.output(ident).content
            if content is Content.SUMMARY:
                if not ctx.publish_summary:
                    raise _refuse(task, "a public summary figure, but the consortium did not opt in to publishing "
                                        "one (federation.publish_summary)", ident)
                if tuple(readers) != ("public",):
                    raise _refuse(task, "a Substra performance must be public", ident)
                continue
            if "public" in readers:
                raise _refuse(task, "output is public", ident)
            allowed = set(ctx.readers(content, task.worker))
            leak = sorted(set(readers) - allowed)
            if leak:
                raise _refuse(task, f"{content.value} output readable by {', '.join(leak)} "
                                    f"(allowed: {', '.join(sorted(allowed))})", ident)
    _check_structure(tasks, registry)
