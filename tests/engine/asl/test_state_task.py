"""Task state: activities, callbacks, timeouts, heartbeats, and resources that do not run locally."""

from __future__ import annotations

import json

from statemachines.engine.asl.interpreter import Interpreter
from tests.engine.asl.interpreter_driver import ACTIVITY, EXECUTION, START_MS, Driver, FakeIds


def task(extra: dict | None = None, **top: object) -> dict:
    state = {"Type": "Task", "Resource": ACTIVITY, **(extra or {}), "End": True}
    return {"StartAt": "Build", "States": {"Build": state}, **top}


def test_activity_task_is_scheduled_with_its_effective_input() -> None:
    run = Driver(
        task({"Parameters": {"step": "lint", "sha.$": "$.sha"}, "HeartbeatSeconds": 60}), {"sha": "abc"}
    )
    (effect,) = [e for e in run.effects if e["type"] == "ScheduleActivity"]
    assert effect["activity_arn"] == ACTIVITY
    assert run.task_input(effect["token"]) == {"step": "lint", "sha": "abc"}
    assert (effect["heartbeat_seconds"], effect["timeout_seconds"]) == (60, None)
    assert run.types()[-1] == "ActivityScheduled"
    assert run.details("ActivityScheduled")[0]["heartbeatInSeconds"] == 60


def test_activity_success_output_goes_through_result_path() -> None:
    run = Driver(task({"ResultPath": "$.build"}), {"sha": "abc"})
    (token,) = run.tokens()
    run.send({"type": "ActivityStarted", "token": token, "worker_name": "w1"})
    run.succeed(token, {"ok": True})
    assert run.status == "SUCCEEDED"
    assert run.output == {"sha": "abc", "build": {"ok": True}}
    assert run.types()[-5:] == [
        "ActivityScheduled",
        "ActivityStarted",
        "ActivitySucceeded",
        "TaskStateExited",
        "ExecutionSucceeded",
    ]
    assert run.details("ActivityStarted") == [{"workerName": "w1"}]


def test_a_task_is_started_once_and_its_retry_starts_again() -> None:
    run = Driver(task({"Retry": [{"ErrorEquals": ["Flaky"], "IntervalSeconds": 1}]}), {})
    (token,) = run.tokens()
    run.send({"type": "ActivityStarted", "token": token, "worker_name": "w1"})
    run.send({"type": "ActivityStarted", "token": token, "worker_name": "w2"})
    assert run.details("ActivityStarted") == [{"workerName": "w1"}]
    run.fail(token, "Flaky", "first try")
    run.fire_next_timer()
    retry = run.tokens()[-1]
    assert retry != token
    run.send({"type": "ActivityStarted", "token": retry, "worker_name": "w2"})
    assert run.details("ActivityStarted") == [{"workerName": "w1"}, {"workerName": "w2"}]


def test_activity_failure_fails_the_execution_with_the_workers_error() -> None:
    run = Driver(task(), {})
    run.fail(run.tokens()[0], "BuildFailed", "exit 1")
    assert (run.status, run.state["error"], run.state["cause"]) == ("FAILED", "BuildFailed", "exit 1")
    assert run.details("ActivityFailed") == [{"error": "BuildFailed", "cause": "exit 1"}]


def test_timeout_fires_states_timeout_and_cancels_the_token() -> None:
    run = Driver(task({"TimeoutSeconds": 5}), {})
    (token,) = run.tokens()
    assert list(run.timers.values()) == [START_MS + 5_000]
    run.fire_next_timer()
    assert (run.status, run.state["error"], run.state["cause"]) == ("FAILED", "States.Timeout", None)
    assert token in run.cancelled
    assert "ActivityTimedOut" in run.types()


def test_timeout_seconds_path() -> None:
    run = Driver(task({"TimeoutSecondsPath": "$.t"}), {"t": 9})
    assert list(run.timers.values()) == [START_MS + 9_000]


def test_heartbeat_timer_starts_when_a_worker_takes_the_task_and_heartbeats_push_it_back() -> None:
    run = Driver(task({"HeartbeatSeconds": 10}), {})
    (token,) = run.tokens()
    assert not run.timers  # not started yet: no worker holds it
    run.send({"type": "ActivityStarted", "token": token, "worker_name": "w"}, after_ms=1_000)
    assert list(run.timers.values()) == [START_MS + 11_000]
    run.send({"type": "TaskHeartbeat", "token": token}, after_ms=5_000)
    assert list(run.timers.values()) == [START_MS + 16_000]
    run.fire_next_timer()
    assert run.state["error"] == "States.HeartbeatTimeout"


def test_callback_token_is_visible_in_parameters() -> None:
    resource = "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
    definition = task({"Parameters": {"token.$": "$$.Task.Token"}})
    definition["States"]["Build"]["Resource"] = resource
    run = Driver(definition, {})
    (token,) = run.tokens("AwaitCallback")
    scheduled = run.details("TaskScheduled")[0]
    assert scheduled["resourceType"] == "sqs"
    assert scheduled["resource"] == "sendMessage.waitForTaskToken"
    assert json.loads(scheduled["parameters"]) == {"token": token}
    run.succeed(token, {"approved": True})
    assert run.output == {"approved": True}
    assert run.types()[-3] == "TaskSucceeded"


def test_other_resources_fail_with_states_task_failed() -> None:
    definition = task()
    definition["States"]["Build"]["Resource"] = "arn:aws:lambda:us-east-1:123456789012:function:f"
    run = Driver(definition, {})
    assert run.status == "FAILED"
    assert run.state["error"] == "States.TaskFailed"
    assert "arn:aws:lambda:us-east-1:123456789012:function:f" in run.state["cause"]


def test_events_for_unknown_tokens_are_ignored() -> None:
    run = Driver(task(), {})
    out = run.succeed("not-a-token", {})
    assert (out.events, out.effects) == ([], [])
    assert run.status == "RUNNING"


def test_a_second_completion_of_the_same_token_is_ignored() -> None:
    run = Driver(task(), {})
    token = run.tokens()[0]
    run.succeed(token, 1)
    out = run.succeed(token, 2)
    assert out.events == [] and run.output == 1


def test_output_that_is_not_json_fails_with_states_runtime() -> None:
    run = Driver(task(), {})
    run.send({"type": "TaskSucceeded", "token": run.tokens()[0], "output": "{not json"})
    assert run.state["error"] == "States.Runtime"


def test_context_object_retry_count_and_task_token_in_a_task() -> None:
    resource = "arn:aws:states:::sns:publish.waitForTaskToken"
    params = {"n.$": "$$.State.RetryCount", "name.$": "$$.State.Name", "t.$": "$$.Task.Token"}
    definition = task({"Parameters": params, "Retry": [{"ErrorEquals": ["Again"], "IntervalSeconds": 1}]})
    definition["States"]["Build"]["Resource"] = resource
    run = Driver(definition, {})
    first = run.tokens("AwaitCallback")[0]
    assert '"n":0' in run.details("TaskScheduled")[0]["parameters"]
    run.fail(first, "Again")
    run.fire_next_timer()
    second = run.details("TaskScheduled")[1]["parameters"]
    assert '"n":1' in second and '"name":"Build"' in second and first not in second


def test_a_deleted_activity_fails_before_scheduling() -> None:
    run = Driver(task(), {})
    assert run.tokens()  # without the predicate every activity exists
    out = Interpreter(task(), activity_exists=lambda arn: False).start(EXECUTION, "{}", START_MS, FakeIds())
    assert out.state["error"] == "States.Runtime"
    assert out.state["cause"] == (
        f"An error occurred while executing the state 'Build' (entered at the event id #2). "
        f"The activity {ACTIVITY} does not exist."
    )
    assert [e["type"] for e in out.events] == ["ExecutionStarted", "TaskStateEntered", "ExecutionFailed"]


def test_an_activity_input_over_256_kib_fails_with_data_limit_exceeded() -> None:
    run = Driver(task({"Parameters": {"a.$": "$.blob", "b.$": "$.blob"}}), {"blob": "x" * 150_000})
    assert run.state["error"] == "States.DataLimitExceeded"
    assert not run.tokens()
