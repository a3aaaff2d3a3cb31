"""Waiting on submitted tasks: poll each one's Substra status until it is done, failed or canceled, within a timeout.

A real Substra node runs tasks asynchronously (waiting for a builder slot, building the function's image, waiting
for parent tasks and an executor slot, executing, then done or failed): the submitting call returns at once, so the
driver waits here. Substra's local backend runs a task inside the submitting call, so its tasks are already done
when this is first asked. Transient API errors (the SDK's public `RequestException` family: a dropped connection, a
gateway timeout) are retried until the timeout; a refused login is a clear error at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from fedchem.opener.errors import FedchemError, RunStopped

DONE, FAILED, CANCELED = "STATUS_DONE", "STATUS_FAILED", "STATUS_CANCELED"
FINAL = {DONE: "done", FAILED: "failed", CANCELED: "canceled"}


@dataclass(frozen=True)
class WaitPolicy:
    """How long a task may take from submission to done (image build included), and how often to ask."""

    timeout: float = 3600.0
    poll_interval: float = 5.0


class TaskTimedOut(RunStopped):
    """A submitted task did not finish within the timeout: the run stops cleanly and can be resumed (exit 3)."""


def status_of(task) -> str:
    """A Substra task's status as its string value (`models.ComputeTaskStatus` is a str enum)."""
    status = getattr(task, "status", None)
    return getattr(status, "value", status) or "STATUS_UNKNOWN"


def wait_for(client, keys: Iterable[str], policy: WaitPolicy, *, names: dict[str, str] | None = None,
             on_change: Callable[[str, str], None] | None = None, clock: Callable[[], float] = time.monotonic,
             sleep: Callable[[float], None] = time.sleep) -> dict[str, str]:
    """Poll `client.get_task` for every key until each is done, failed or canceled; returns key -> "done" |
    "failed" | "canceled". Raises TaskTimedOut naming the tasks still pending when the timeout passes.
    `on_change(key, status)` is told every status a task moves to (for progress lines)."""
    from substra.sdk.exceptions import AuthenticationError, AuthorizationError, RequestException

    names = names or {}
    pending = list(dict.fromkeys(keys))
    seen: dict[str, str] = {}
    outcome: dict[str, str] = {}
    deadline = clock() + policy.timeout
    last_error = ""
    while True:
        for key in list(pending):
            try:
                status = status_of(client.get_task(key))
            except (AuthenticationError, AuthorizationError) as exc:
                raise FedchemError(f"the Substra backend refused the operator's token ({type(exc).__name__})",
                                   where=f"task '{names.get(key, key)}'",
                                   fix="renew the aggregator organisation's API token and run `fedchem run "
                                       "--resume RUN_DIR`") from None
            except RequestException as exc:  # transient: retried until the deadline
                last_error = type(exc).__name__
                continue
            if seen.get(key) != status:
                seen[key] = status
                if on_change is not None:
                    on_change(key, status)
            if status in FINAL:
                outcome[key] = FINAL[status]
                pending.remove(key)
        if not pending:
            return outcome
        if clock() >= deadline:
            late = ", ".join(f"{names.get(k, k)} ({seen.get(k, 'no answer')})" for k in pending)
            raise TaskTimedOut(f"tasks did not finish within {policy.timeout:g} s: {late}"
                               + (f"; the last API error was {last_error}" if last_error else ""),
                               where="federation.task_timeout",
                               fix="check the nodes (`fedchem node status`), raise federation.task_timeout if "
                                   "image builds are slow, then `fedchem run --resume RUN_DIR`")
        sleep(min(policy.poll_interval, max(0.0, deadline - clock())))
