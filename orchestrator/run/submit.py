"""One step of a plan: check its tasks, submit them, wait until each is done, failed or canceled.

The same path for both backends. Substra's local backend runs a task inside the submitting call and raises there,
and later tasks of a failed batch are never registered: so a synchronous network gets one task per call. A real
node returns at once: the whole step is submitted in one call (its partners' tasks run side by side on their own
nodes) and then waited on (fedchem.orchestrator.run.waiting). A failed or canceled task is that task missing from
the step; the caller decides what that means (a partner dropping out, a failed key setup, a stopped round).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from fedchem.orchestrator.run import backend as sb
from fedchem.orchestrator.run.plan import PlanContext, TaskPlan
from fedchem.orchestrator.run.privacy import check_tasks
from fedchem.orchestrator.run.waiting import TaskTimedOut, WaitPolicy, wait_for

log = logging.getLogger(__name__)

READABLE = {"STATUS_WAITING_FOR_BUILDER_SLOT": "waiting for a builder slot", "STATUS_BUILDING": "building its image",
            "STATUS_WAITING_FOR_PARENT_TASKS": "waiting for its parent tasks",
            "STATUS_WAITING_FOR_EXECUTOR_SLOT": "waiting for an executor slot", "STATUS_EXECUTING": "running",
            "STATUS_DONE": "done", "STATUS_FAILED": "FAILED", "STATUS_CANCELED": "CANCELED"}


@dataclass
class StepResult:
    """The tasks of a step that finished (done) and those that did not (failed, canceled or refused at once)."""

    done: list[TaskPlan] = field(default_factory=list)
    failed: list[TaskPlan] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed


@dataclass
class Submitter:
    """Submits the steps of one compute plan (the first step creates it) and waits on them."""

    net: sb.Network
    ctx: PlanContext
    plan_name: str
    policy: WaitPolicy
    say: Callable[[str], None]
    known: dict[str, TaskPlan] = field(default_factory=dict)  # every task submitted so far, by id
    created: bool = False
    before_submit: Callable[[list[TaskPlan]], object] | None = None  # called with each batch before it is submitted

    def step(self, tasks: list[TaskPlan]) -> StepResult:
        """Check, submit and wait; TaskTimedOut (a resumable stop) when a task does not finish in time."""
        check_tasks(self.ctx, tasks, self.known)
        result = StepResult()
        submitted: list[TaskPlan] = []
        for batch in ([[t] for t in tasks] if self.net.synchronous else [tasks]):
            if self.before_submit is not None:
                self.before_submit(batch)
            try:
                self._submit(batch)
            except sb.TaskFailed:
                result.failed += batch
                continue
            submitted += batch
            self.known.update({t.task_id: t for t in batch})
        if submitted:
            by_id = {t.task_id: t for t in submitted}
            try:
                outcome = wait_for(self.net.operator, list(by_id), self.policy,
                                   names={k: t.name for k, t in by_id.items()}, on_change=self._progress(by_id))
            except TaskTimedOut:
                if sb.cancel_plan(self.net, self.ctx.plan_id):
                    self.say(f"  plan {self.ctx.plan_id[:8]} canceled on the backend (its tasks would run on)")
                raise
            for key, task in by_id.items():
                if outcome[key] == "done":
                    result.done.append(task)
                else:  # no output: nothing may take it as an input (the checker then sees it as not submitted)
                    result.failed.append(task)
                    del self.known[key]
        return result

    def _submit(self, batch: list[TaskPlan]) -> None:
        if not self.created:
            try:
                sb.create_plan(self.net, self.ctx.plan_id, self.plan_name, batch)
            finally:  # a task failing inside the call still leaves the plan registered
                self.created = True
        else:
            sb.add_tasks(self.net, self.ctx.plan_id, batch)

    def _progress(self, by_id: dict[str, TaskPlan]) -> Callable[[str, str], None]:
        """Status changes as progress lines on an asynchronous backend (the local one only logs them)."""
        def tell(key: str, status: str) -> None:
            line = f"    {by_id[key].name}: {READABLE.get(status, status)}"
            if self.net.synchronous:
                log.debug(line)
            else:
                self.say(line)
        return tell
