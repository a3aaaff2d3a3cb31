"""Compute-plan building: a pure function from the run's context to task specs (nothing is submitted here).

Task ids are UUIDs derived from the plan id and the task's role (`train/pharma-a/3`), so the same run always
builds the same plan and a task's key tells what it is. The privacy checker reads these specs before submission.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fedchem.algo.functions.specs import FUNCTIONS, Content


@dataclass(frozen=True)
class Ref:
    """A task input: another task's output, or a dataset asset (opener / data samples) by key."""

    identifier: str
    parent_task: str | None = None
    parent_output: str | None = None
    asset_key: str | None = None


@dataclass(frozen=True)
class TaskPlan:
    """One task of a plan, in our own terms; `to_substra` turns it into Substra's spec."""

    task_id: str
    name: str                      # readable role, e.g. "train/pharma-a/3"
    function: str                  # key of FUNCTIONS
    worker: str                    # organisation id that runs it
    inputs: tuple[Ref, ...]
    outputs: tuple[tuple[str, tuple[str, ...]], ...]  # (identifier, authorized organisation ids)
    round: int | None = None

    def authorized(self, identifier: str) -> tuple[str, ...]:
        return dict(self.outputs)[identifier]


@dataclass(frozen=True)
class DatasetKeys:
    opener: str
    samples: tuple[str, ...]


@dataclass
class PlanContext:
    """Everything the builder needs: who is who, which assets exist, which settings hold."""

    plan_id: str
    partner_orgs: dict[str, str]          # partner name -> organisation id
    aggregator_org: str
    datasets: dict[str, DatasetKeys]      # partner name or "aggregator" -> its dataset's keys
    secure: bool = True
    publish_summary: bool = False         # the consortium opted in to one public figure per partner

    def task_id(self, name: str) -> str:
        return str(uuid.uuid5(uuid.UUID(self.plan_id), name))

    @property
    def consortium_orgs(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.partner_orgs.values()) | {self.aggregator_org}))

    def readers(self, content: Content, owner_org: str) -> tuple[str, ...]:
        """Who the plan lets read an output of this content (what the privacy checker allows, no more)."""
        if content is Content.PRIVATE:
            return (owner_org,)
        if content in (Content.MASKED_UPDATE, Content.RELEASED_SHARES):
            return tuple(sorted({owner_org, self.aggregator_org}))
        if content is Content.SEALED_SHARES:
            return tuple(sorted(set(self.partner_orgs.values())))
        if content is Content.SUMMARY:
            return ("public",) if self.publish_summary else ()  # Substra performances must be public
        return self.consortium_orgs  # trunk, public keys, receipts


def _data_refs(ctx: PlanContext, owner: str) -> tuple[Ref, ...]:
    ds = ctx.datasets[owner]
    return (Ref("opener", asset_key=ds.opener),) + tuple(Ref("datasamples", asset_key=k) for k in ds.samples)


def _task(ctx: PlanContext, name: str, function: str, worker: str, inputs, round_=None) -> TaskPlan:
    fdef = FUNCTIONS[function]
    outputs = tuple((o.identifier, ctx.readers(o.content, worker)) for o in fdef.outputs)
    return TaskPlan(ctx.task_id(name), name, function, worker, tuple(inputs), outputs, round_)


def setup_tasks(ctx: PlanContext, partners: list[str]) -> list[TaskPlan]:
    """Key setup (keygen, then sealed shares) for the partners taking part, and the plan's starting trunk."""
    tasks = [_task(ctx, "init_trunk", "init_trunk", ctx.aggregator_org, _data_refs(ctx, "aggregator"))]
    if not ctx.secure:
        return tasks
    for p in partners:
        inputs = list(_data_refs(ctx, p)) + [Ref("trunk", ctx.task_id("init_trunk"), "trunk")]  # plan context
        tasks.append(_task(ctx, f"keygen/{p}", "keygen", ctx.partner_orgs[p], inputs))
    for p in partners:
        own = ctx.task_id(f"keygen/{p}")
        inputs = list(_data_refs(ctx, p)) + [Ref("trunk", ctx.task_id("init_trunk"), "trunk"),
                                             Ref("secret_keys", own, "secret_keys")]
        inputs += [Ref("public_keys", ctx.task_id(f"keygen/{q}"), "public_keys") for q in partners]
        tasks.append(_task(ctx, f"deal_shares/{p}", "deal_shares", ctx.partner_orgs[p], inputs))
    return tasks


def trunk_ref(ctx: PlanContext, round_: int, first_round: int) -> Ref:
    """The trunk a round starts from: the plan's starting trunk, or the previous round's aggregate."""
    if round_ == first_round:
        return Ref("trunk", ctx.task_id("init_trunk"), "trunk")
    return Ref("trunk", ctx.task_id(f"aggregate/{round_ - 1}"), "trunk")


def train_task(ctx: PlanContext, partner: str, round_: int, first_round: int, roster: list[str],
               previous_head_round: int | None) -> TaskPlan:
    """One partner's local training in one round; `roster` are the partners masking together this round."""
    inputs = list(_data_refs(ctx, partner)) + [trunk_ref(ctx, round_, first_round)]
    if previous_head_round is not None:  # the partner's own private state goes on from its previous round
        prev = ctx.task_id(f"train/{partner}/{previous_head_round}")
        inputs += [Ref("head", prev, "head"), Ref("optimizer", prev, "optimizer"), Ref("selection", prev, "selection")]
    if ctx.secure:
        inputs.append(Ref("secret_keys", ctx.task_id(f"keygen/{partner}"), "secret_keys"))
        inputs += [Ref("public_keys", ctx.task_id(f"keygen/{q}"), "public_keys") for q in roster]
    return _task(ctx, f"train/{partner}/{round_}", "train", ctx.partner_orgs[partner], inputs, round_)


def confirm_tasks(ctx: PlanContext, round_: int, roster: list[str], survivors: list[str]) -> list[TaskPlan]:
    """On each survivor: sign the round's survivor set, from the survivors' signed receipts (consistency step)."""
    tasks = []
    for q in survivors:
        inputs = list(_data_refs(ctx, q))
        inputs += [Ref("public_keys", ctx.task_id(f"keygen/{p}"), "public_keys") for p in roster]
        inputs += [Ref("receipt", ctx.task_id(f"train/{p}/{round_}"), "receipt") for p in survivors]
        tasks.append(_task(ctx, f"confirm/{q}/{round_}", "confirm_survivors", ctx.partner_orgs[q], inputs, round_))
    return tasks


def _release_wave(ctx: PlanContext, round_: int, roster: list[str], releasers: list[str],
                  evidence: list[Ref]) -> list[TaskPlan]:
    """One release task on each of `releasers`, each reading the same `evidence` (confirmations or receipts)."""
    tasks = []
    for q in releasers:
        inputs = list(_data_refs(ctx, q)) + [Ref("secret_keys", ctx.task_id(f"keygen/{q}"), "secret_keys")]
        inputs += [Ref("public_keys", ctx.task_id(f"keygen/{p}"), "public_keys") for p in roster]
        inputs += [Ref("sealed_shares", ctx.task_id(f"deal_shares/{p}"), "sealed_shares") for p in roster]
        tasks.append(_task(ctx, f"release/{q}/{round_}", "release_shares", ctx.partner_orgs[q], inputs + evidence,
                           round_))
    return tasks


def release_tasks(ctx: PlanContext, round_: int, roster: list[str], survivors: list[str],
                  confirmers: list[str] | None = None, releasers: list[str] | None = None) -> list[TaskPlan]:
    """On each of `releasers` (default: every confirming survivor): release the shares that let the aggregator
    remove masks, for the survivor set the confirmations of all `confirmers` sign."""
    confirmers = survivors if confirmers is None else confirmers
    confirmations = [Ref("confirmation", ctx.task_id(f"confirm/{p}/{round_}"), "confirmation") for p in confirmers]
    return _release_wave(ctx, round_, roster, confirmers if releasers is None else releasers, confirmations)


def unanimous_release_tasks(ctx: PlanContext, round_: int, roster: list[str],
                            releasers: list[str] | None = None) -> list[TaskPlan]:
    """When every partner of the round's roster masked (nobody dropped out): each of `releasers` (default: the
    whole roster) releases its self-mask shares straight from the signed receipts of the whole roster, without the
    confirmation wave. Each checks that it holds a receipt from every partner it masked with and commits to that set
    as its one survivor set of the round (README, threat model: why this is as safe as t confirmations)."""
    return _release_wave(ctx, round_, roster, roster if releasers is None else releasers,
                         [Ref("receipt", ctx.task_id(f"train/{p}/{round_}"), "receipt") for p in roster])


def release_order(candidates: list[str], round_: int) -> list[str]:
    """The order in which a round asks partners to release: the candidates rotated by the round, so that when only
    the threshold's number is asked (local mode, where tasks run one after another) the work moves round to round."""
    if not candidates:
        return []
    k = (round_ - 1) % len(candidates)
    return candidates[k:] + candidates[:k]


def aggregate_task(ctx: PlanContext, round_: int, first_round: int, roster: list[str], survivors: list[str],
                   releasers: list[str]) -> TaskPlan:
    """The aggregator's sum of the survivors' masked updates into the next trunk."""
    inputs = [trunk_ref(ctx, round_, first_round)]
    if ctx.secure:
        inputs += [Ref("public_keys", ctx.task_id(f"keygen/{p}"), "public_keys") for p in roster]
    inputs += [Ref("masked_update", ctx.task_id(f"train/{p}/{round_}"), "masked_update") for p in survivors]
    if ctx.secure:
        inputs += [Ref("released_shares", ctx.task_id(f"release/{q}/{round_}"), "released_shares")
                   for q in releasers]
    return _task(ctx, f"aggregate/{round_}", "aggregate", ctx.aggregator_org, inputs, round_)


def evaluate_task(ctx: PlanContext, partner: str, final_round: int, first_round: int,
                  head_round: int | None) -> TaskPlan:
    """Final evaluation of global trunk + own head and its selection state (None: those in its checkpoint) on the
    partner's folds; the partner picks its best rounds itself, so the plan does not name them."""
    inputs = list(_data_refs(ctx, partner)) + [trunk_ref(ctx, final_round + 1, first_round)]
    if head_round is not None:
        prev = ctx.task_id(f"train/{partner}/{head_round}")
        inputs += [Ref("head", prev, "head"), Ref("optimizer", prev, "optimizer"), Ref("selection", prev, "selection")]
    return _task(ctx, f"evaluate/{partner}/{final_round}", "evaluate", ctx.partner_orgs[partner], inputs,
                 final_round)


def summary_task(ctx: PlanContext, partner: str, final_round: int) -> TaskPlan:
    """Publish one figure of the partner's final evaluation (only when the consortium opted in)."""
    inputs = list(_data_refs(ctx, partner)) + [Ref("metrics", ctx.task_id(f"evaluate/{partner}/{final_round}"),
                                                   "metrics")]
    return _task(ctx, f"summary/{partner}/{final_round}", "publish_summary", ctx.partner_orgs[partner], inputs,
                 final_round)


def full_plan(ctx: PlanContext, partners: list[str], first_round: int, last_round: int,
              heads_from_checkpoint: bool = False) -> list[TaskPlan]:
    """The whole plan when nobody drops out: setup, every round, final evaluation (checked before any submit)."""
    tasks = setup_tasks(ctx, partners)
    for r in range(first_round, last_round + 1):
        for p in partners:
            prev = r - 1 if r > first_round else None
            tasks.append(train_task(ctx, p, r, first_round, partners, prev))
        if ctx.secure:
            tasks += unanimous_release_tasks(ctx, r, partners)
        tasks.append(aggregate_task(ctx, r, first_round, partners, partners, partners))
    for p in partners:
        tasks.append(evaluate_task(ctx, p, last_round, first_round, last_round))
        if ctx.publish_summary:
            tasks.append(summary_task(ctx, p, last_round))
    return tasks
