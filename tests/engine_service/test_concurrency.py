"""Many waiting long polls must not starve the other API calls, and each task goes to one poller."""

from __future__ import annotations

import http.client
import json
import threading
import time

from .conftest import create_machine, wait_done

POLLERS = 200


def raw_poll(port: int, activity: str, results: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps({"activityArn": activity})
    headers = {
        "X-Amz-Target": "AWSStepFunctions.GetActivityTask",
        "Content-Type": "application/x-amz-json-1.0",
    }
    connection.request("POST", "/", body, headers)
    answer = json.loads(connection.getresponse().read())
    connection.close()
    results.append(answer.get("taskToken", ""))


def test_two_hundred_long_polls_do_not_starve_other_calls(sfn, engine, unique):
    activity = sfn.create_activity(name=f"busy-{unique}")["activityArn"]
    arn = create_machine(sfn, f"busy-{unique}", {"T": {"Type": "Task", "Resource": activity, "End": True}})
    tokens: list[str] = []
    pollers = [
        threading.Thread(target=raw_poll, args=(engine.port, activity, tokens)) for _ in range(POLLERS)
    ]
    for poller in pollers:
        poller.start()
    time.sleep(0.5)  # let them all block
    latencies = []
    for _ in range(20):
        began = time.monotonic()
        sfn.list_state_machines(maxResults=5)
        latencies.append(time.monotonic() - began)
    executions = [sfn.start_execution(stateMachineArn=arn)["executionArn"] for _ in range(5)]
    for poller in pollers:
        poller.join(10)
    handed = [t for t in tokens if t]
    assert len(tokens) == POLLERS and len(handed) == 5 and len(set(handed)) == 5
    assert max(latencies) < 0.5, latencies
    for token in handed:
        sfn.send_task_success(taskToken=token, output="{}")
    assert all(wait_done(sfn, ex)["status"] == "SUCCEEDED" for ex in executions)
