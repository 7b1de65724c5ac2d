"""Number fields evaluated at run time, through the API: the execution fails with AWS's error and cause and
its history has the EvaluationFailed event located at the field; a negative MaxConcurrencyPath fails the
execution instead of leaving it RUNNING with no iteration started.

Sources:
- Wait state (https://docs.aws.amazon.com/step-functions/latest/dg/state-wait.html): a JSONata Seconds
  "must evaluate to an integer" from 0 to 99999999.
- EvaluationFailedEventDetails (https://docs.aws.amazon.com/step-functions/latest/apireference/API_EvaluationFailedEventDetails.html):
  the event names the state, the error, the cause and the field's location.
- Map state (https://docs.aws.amazon.com/step-functions/latest/dg/state-map-inline.html): MaxConcurrency
  is an upper bound on concurrent iterations, 0 meaning no limit; a negative bound runs nothing.
"""

from __future__ import annotations

import json

from .conftest import create_machine, history, wait_done


def test_a_jsonata_wait_seconds_that_is_a_string_fails_with_its_evaluation_event(sfn, unique):
    wait = {"Type": "Wait", "QueryLanguage": "JSONata", "Seconds": "{% $states.input.wait %}", "End": True}
    machine = create_machine(sfn, f"wait-seconds-{unique}", {"Hold": wait})
    execution = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"wait": "soon"}))[
        "executionArn"
    ]
    desc = wait_done(sfn, execution, timeout=20)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "States.QueryEvaluationError"
    assert desc["cause"] == (
        "An error occurred while executing the state 'Hold' (entered at the event id #2). The JSONata "
        "expression '$states.input.wait' specified for the field 'Seconds' returned an unexpected result "
        "type. Expected 'integer', but was 'string' for value: \"soon\""
    )
    events = history(sfn, execution)
    types = [event["type"] for event in events]
    assert types[-2:] == ["EvaluationFailed", "ExecutionFailed"]
    details = events[-2]["evaluationFailedEventDetails"]
    assert details["location"] == "Seconds" and details["state"] == "Hold"


def test_a_negative_max_concurrency_path_fails_the_execution(sfn, unique):
    inner = {"StartAt": "Echo", "States": {"Echo": {"Type": "Pass", "End": True}}}
    fan = {
        "Type": "Map",
        "ItemsPath": "$.items",
        "MaxConcurrencyPath": "$.limit",
        "ItemProcessor": inner,
        "End": True,
    }
    machine = create_machine(sfn, f"negative-limit-{unique}", {"Fan": fan})
    payload = json.dumps({"items": [1, 2], "limit": -1})
    execution = sfn.start_execution(stateMachineArn=machine, input=payload)["executionArn"]
    desc = wait_done(sfn, execution, timeout=20)
    assert desc["status"] == "FAILED"
    assert desc["error"] == "States.Runtime"
    assert desc["cause"].endswith("Expected non-negative integer for MaxConcurrency, got '-1' instead.")
