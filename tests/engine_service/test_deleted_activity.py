"""A Task whose activity was deleted (DeleteActivity) ends its execution at once instead of at its timeout,
whether the activity was gone before the Task began or was deleted while its task waited in the queue.

Sources:
- DeleteActivity (https://docs.aws.amazon.com/step-functions/latest/apireference/API_DeleteActivity.html):
  the activity is gone; GetActivityTask on it then fails with ActivityDoesNotExist, so no worker can ever
  take a task scheduled on it.
- Error handling, States.Runtime (https://docs.aws.amazon.com/step-functions/latest/dg/concepts-error-handling.html):
  an execution that cannot go on fails with States.Runtime, which States.ALL does not catch.
"""

from __future__ import annotations

import time

from .conftest import create_machine, history, wait_done


def test_a_task_on_a_deleted_activity_fails_the_execution_at_once(sfn, unique):
    activity = sfn.create_activity(name=f"gone-{unique}")["activityArn"]
    task = {"Type": "Task", "Resource": activity, "TimeoutSeconds": 600, "End": True}
    machine = create_machine(sfn, f"gone-{unique}", {"Work": task})
    sfn.delete_activity(activityArn=activity)
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    desc = wait_done(sfn, execution, timeout=20)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "States.Runtime"
    assert desc["cause"] == (
        "An error occurred while executing the state 'Work' (entered at the event id #2). "
        f"The activity {activity} does not exist."
    )
    types = [event["type"] for event in history(sfn, execution)]
    assert "ActivityScheduled" not in types and types[-1] == "ExecutionFailed"


def test_states_all_does_not_catch_it(sfn, unique):
    activity = sfn.create_activity(name=f"gone-catch-{unique}")["activityArn"]
    task = {
        "Type": "Task",
        "Resource": activity,
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handled"}],
        "End": True,
    }
    machine = create_machine(sfn, f"gone-catch-{unique}", {"Work": task, "Handled": {"Type": "Succeed"}})
    sfn.delete_activity(activityArn=activity)
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    desc = wait_done(sfn, execution, timeout=20)
    assert (desc["status"], desc["error"]) == ("FAILED", "States.Runtime")


def test_an_activity_that_exists_is_scheduled(sfn, unique):
    activity = sfn.create_activity(name=f"here-{unique}")["activityArn"]
    machine = create_machine(
        sfn, f"here-{unique}", {"Work": {"Type": "Task", "Resource": activity, "End": True}}
    )
    execution = sfn.start_execution(stateMachineArn=machine, input='{"n": 1}')["executionArn"]
    task = sfn.get_activity_task(activityArn=activity)
    sfn.send_task_success(taskToken=task["taskToken"], output=task["input"])
    assert wait_done(sfn, execution)["status"] == "SUCCEEDED"
    sfn.delete_activity(activityArn=activity)


def test_deleting_the_activity_fails_the_task_still_queued_on_it(sfn, unique):
    activity = sfn.create_activity(name=f"queued-{unique}")["activityArn"]
    task = {"Type": "Task", "Resource": activity, "TimeoutSeconds": 600, "End": True}
    machine = create_machine(sfn, f"queued-{unique}", {"Work": task})
    execution = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
    wait_for_event(sfn, execution, "ActivityScheduled")
    sfn.delete_activity(activityArn=activity)
    desc = wait_done(sfn, execution, timeout=20)
    assert (desc["status"], desc["error"]) == ("FAILED", "States.Runtime")
    assert desc["cause"] == f"The activity {activity} does not exist."
    types = [event["type"] for event in history(sfn, execution)]
    assert types[-3:] == ["ActivityScheduled", "ActivityFailed", "ExecutionFailed"]


def test_a_task_a_worker_holds_survives_the_deletion(sfn, unique):
    activity = sfn.create_activity(name=f"held-{unique}")["activityArn"]
    machine = create_machine(
        sfn, f"held-{unique}", {"Work": {"Type": "Task", "Resource": activity, "End": True}}
    )
    execution = sfn.start_execution(stateMachineArn=machine, input='{"n": 2}')["executionArn"]
    task = sfn.get_activity_task(activityArn=activity)
    sfn.delete_activity(activityArn=activity)
    sfn.send_task_success(taskToken=task["taskToken"], output=task["input"])
    assert wait_done(sfn, execution)["status"] == "SUCCEEDED"


def wait_for_event(sfn, execution, event_type, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(event["type"] == event_type for event in history(sfn, execution)):
            return
        time.sleep(0.02)
    raise AssertionError(f"no {event_type} in {execution}")
