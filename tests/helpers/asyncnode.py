"""A stand-in for a real Substra node's asynchronous task execution, over the real local backend.

No Substra node can run on these machines, so this is a stand-in, and says so: it wraps the operator's real
subprocess-mode client. Submitting returns at once, as on a real node; then each task reports, one poll at a time,
the statuses a real node reports (`substra.models.ComputeTaskStatus`, in the order a real backend moves through
them: waiting for a builder slot, building its image, waiting for its parent tasks, waiting for an executor slot,
executing, done), and really runs -- through the wrapped local client, real function, real outputs -- when it moves
from executing to done. A script makes a named task fail, be canceled or hang at a chosen status; a task whose
parent failed or was canceled is canceled, as a real node does.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

from substra.sdk.models import ComputeTaskStatus as S

ORDER = [S.waiting_for_builder_slot, S.building, S.waiting_for_parent_tasks, S.waiting_for_executor_slot,
         S.executing, S.done]


@dataclass
class Scripted:
    """What happens to the tasks whose tag matches `pattern`: "fail", "cancel" or "hang" once at `status`."""

    pattern: str
    action: str
    status: S


@dataclass
class _Task:
    spec: object
    plan: str
    status: S = S.waiting_for_builder_slot
    polls: list = field(default_factory=list)  # every status this task reported, in order


class AsyncNode:
    """The operator's client as a real node answers it; everything else goes to the real local client."""

    def __init__(self, inner, script: list[Scripted] | None = None):
        self._inner = inner
        self.script = list(script or [])
        self.tasks: dict[str, _Task] = {}
        self.plans: dict[str, object] = {}
        self.canceled: list[str] = []
        self.submit_calls: list[list[str]] = []  # task tags of each submitting call

    def __getattr__(self, name):
        return getattr(self._inner, name)

    # ----------------------------------------------------------------- submission returns at once
    def add_compute_plan(self, spec, **kwargs):
        from substra.sdk.schemas import ComputePlanSpec

        self.plans[spec.key] = spec
        self._inner.add_compute_plan(ComputePlanSpec(key=spec.key, name=spec.name, tasks=[]))
        self._queue(spec.key, spec.tasks)
        return spec.key

    def add_compute_plan_tasks(self, key, tasks, **kwargs):
        self._queue(key, tasks.tasks)

    def _queue(self, plan: str, specs) -> None:
        self.submit_calls.append([s.tag for s in specs])
        for s in specs:
            self.tasks[s.task_id] = _Task(s, plan)

    def cancel_compute_plan(self, key):
        self.canceled.append(key)
        for t in self.tasks.values():
            if t.status not in (S.done, S.failed, S.canceled):
                t.status = S.canceled

    # ----------------------------------------------------------------- one status step per poll
    def get_task(self, key):
        t = self.tasks.get(key)
        if t is None:
            return self._inner.get_task(key)
        if t.polls and t.status not in (S.done, S.failed, S.canceled):  # the first answer is the queued status
            self._advance(t)
        t.polls.append(t.status)
        return _Answer(key=key, status=t.status, worker=t.spec.worker)

    def _advance(self, t: _Task) -> None:
        rule = next((r for r in self.script if fnmatch.fnmatch(t.spec.tag, r.pattern)), None)
        if rule is not None and t.status == rule.status:
            if rule.action == "hang":
                return
            t.status = S.failed if rule.action == "fail" else S.canceled
            return
        if t.status == S.waiting_for_parent_tasks:
            parents = [self.tasks.get(i.parent_task_key) for i in t.spec.inputs if i.parent_task_key]
            parents = [p for p in parents if p is not None]
            if any(p.status in (S.failed, S.canceled) for p in parents):
                t.status = S.canceled
                return
            if any(p.status != S.done for p in parents):
                return
        if t.status == S.executing:
            t.status = self._execute(t)
            return
        t.status = ORDER[ORDER.index(t.status) + 1]

    def _execute(self, t: _Task) -> S:
        """Run the task for real through the local backend (it runs inside the call and raises when it fails)."""
        from substra.sdk.backends.local.compute.spawner.base import ExecutionError
        from substra.sdk.schemas import UpdateComputePlanTasksSpec

        key = t.plan
        try:
            self._inner.add_compute_plan_tasks(key=key, tasks=UpdateComputePlanTasksSpec(key=key, tasks=[t.spec]))
        except ExecutionError:
            return S.failed
        return S.done


@dataclass
class _Answer:
    """What `get_task` answers (the fields the driver reads of `substra.models.Task`)."""

    key: str
    status: S
    worker: str


def async_network(names: list[str], aggregator: str, script: list[Scripted] | None = None):
    """A local network whose operator answers like a real node (asynchronous, scripted failures)."""
    from fedchem.orchestrator.run.backend import local_network

    net = local_network(names, aggregator)
    node = AsyncNode(net.clients[aggregator], script)
    net.clients[aggregator] = node
    net.synchronous = False
    return net, node
