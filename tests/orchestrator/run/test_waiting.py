"""Waiting on task statuses (fedchem.orchestrator.run.waiting) at the SDK boundary, with the SDK's own status and
error types. The client here is a stand-in for a real node's API (none can run on these machines): it answers
`get_task` with scripted statuses; the clock is virtual, so timeouts are exact and the test does not sleep."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from substra.sdk import exceptions as sdk_errors
from substra.sdk.models import ComputeTaskStatus as S

from fedchem.opener.errors import EXIT_STOPPED, FedchemError
from fedchem.orchestrator.run.waiting import TaskTimedOut, WaitPolicy, wait_for

REAL_ORDER = [S.waiting_for_builder_slot, S.building, S.waiting_for_parent_tasks, S.waiting_for_executor_slot,
              S.executing, S.done]


class ScriptedAPI:
    """Answers get_task(key) with the next item of that key's script (a status, or an SDK error to raise); the
    last item repeats."""

    def __init__(self, scripts: dict[str, list]):
        self.scripts = {k: list(v) for k, v in scripts.items()}
        self.calls: list[str] = []

    def get_task(self, key):
        self.calls.append(key)
        script = self.scripts[key]
        item = script.pop(0) if len(script) > 1 else script[0]
        if isinstance(item, Exception):
            raise item
        return SimpleNamespace(key=key, status=item)


class Clock:
    def __init__(self):
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_waits_through_every_status_a_real_node_reports_in_order():
    api, clock = ScriptedAPI({"a": REAL_ORDER, "b": REAL_ORDER[:2] + [S.failed], "c": [S.waiting_for_builder_slot,
                                                                                     S.canceled]}), Clock()
    seen: list[tuple[str, str]] = []
    out = wait_for(api, ["a", "b", "c"], WaitPolicy(timeout=100, poll_interval=2), on_change=lambda k, s:
                   seen.append((k, s)), clock=clock, sleep=clock.sleep)
    assert out == {"a": "done", "b": "failed", "c": "canceled"}
    assert [s for k, s in seen if k == "a"] == [s.value for s in REAL_ORDER]  # every status, once, in order
    assert clock.sleeps and set(clock.sleeps) == {2}  # the configured poll interval


@pytest.mark.parametrize("at", REAL_ORDER[:-1])
@pytest.mark.parametrize("end", [S.failed, S.canceled])
def test_a_task_failing_or_canceled_after_any_status_is_reported_so(at, end):
    """A real node may fail a task (or cancel it, when a parent failed or the plan was canceled) at any step."""
    upto = REAL_ORDER[:REAL_ORDER.index(at) + 1]
    api, clock = ScriptedAPI({"t": upto + [end], "ok": REAL_ORDER}), Clock()
    out = wait_for(api, ["t", "ok"], WaitPolicy(timeout=100, poll_interval=1), clock=clock, sleep=clock.sleep)
    assert out == {"t": "failed" if end is S.failed else "canceled", "ok": "done"}


def test_already_finished_tasks_return_without_sleeping():
    """Substra's local backend runs a task inside the submitting call: its tasks are done when first asked."""
    api, clock = ScriptedAPI({"a": [S.done], "b": [S.done]}), Clock()
    assert wait_for(api, ["a", "b"], WaitPolicy(), clock=clock, sleep=clock.sleep) == {"a": "done", "b": "done"}
    assert clock.sleeps == []


def test_a_timeout_is_a_clean_resumable_stop_naming_the_late_task():
    api, clock = ScriptedAPI({"a": [S.done], "b": [S.waiting_for_builder_slot]}), Clock()
    with pytest.raises(TaskTimedOut) as err:
        wait_for(api, ["a", "b"], WaitPolicy(timeout=30, poll_interval=4), names={"b": "train/pharma-b/2"},
                 clock=clock, sleep=clock.sleep)
    assert err.value.exit_code == EXIT_STOPPED == 3
    msg = err.value.message()
    assert "train/pharma-b/2 (STATUS_WAITING_FOR_BUILDER_SLOT)" in msg and "30 s" in msg and "--resume" in msg
    assert "train/pharma-a" not in msg
    assert clock.now == pytest.approx(30)  # it waited exactly the timeout, not a poll more


def test_transient_api_errors_are_retried_until_the_task_finishes():
    api, clock = ScriptedAPI({"a": [sdk_errors.ConnectionError("down", None), sdk_errors.GatewayUnavailable("bad gateway", 502),
                                    S.executing, S.done]}), Clock()
    assert wait_for(api, ["a"], WaitPolicy(timeout=60, poll_interval=1), clock=clock, sleep=clock.sleep) == \
        {"a": "done"}
    assert api.calls.count("a") == 4


def test_transient_errors_until_the_timeout_say_what_the_api_answered():
    api, clock = ScriptedAPI({"a": [sdk_errors.ConnectionError("down", None)]}), Clock()
    with pytest.raises(TaskTimedOut, match="last API error was ConnectionError"):
        wait_for(api, ["a"], WaitPolicy(timeout=10, poll_interval=3), clock=clock, sleep=clock.sleep)


def test_a_refused_token_is_a_clear_error_at_once():
    api, clock = ScriptedAPI({"a": [sdk_errors.AuthenticationError("unauthorized", 401)]}), Clock()
    with pytest.raises(FedchemError) as err:
        wait_for(api, ["a"], WaitPolicy(timeout=600, poll_interval=5), clock=clock, sleep=clock.sleep)
    assert not isinstance(err.value, TaskTimedOut) and "token" in err.value.message()
    assert clock.sleeps == []
