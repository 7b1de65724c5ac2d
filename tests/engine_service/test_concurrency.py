"""Many waiting long polls must not starve the other API calls, and each task goes to one poller."""

from __future__ import annotations

import http.client
import json
import threading
import time

from .conftest import EngineProcess, create_machine, make_client, wait_done

POLLERS = 200


def raw_poll(port: int, activity: str, results: list[str]) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=90)
    body = json.dumps({"activityArn": activity})
    headers = {
        "X-Amz-Target": "AWSStepFunctions.GetActivityTask",
        "Content-Type": "application/x-amz-json-1.0",
    }
    try:
        connection.request("POST", "/", body, headers)
        answer = json.loads(connection.getresponse().read())
    except (OSError, http.client.HTTPException, ValueError):
        return  # the engine stopped under a poll that was still waiting
    finally:
        connection.close()
    results.append(answer.get("taskToken", ""))


def blocked_polls(redis_proc) -> int:
    client = redis_proc.client()
    try:
        return sum("b" in c["flags"] and c["cmd"] == "blmove" for c in client.client_list())
    finally:
        client.close()


def wait_until(predicate, what: str, timeout: float = 60) -> None:
    """A hang detector: the event comes in milliseconds, the deadline is for slow machines."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_two_hundred_long_polls_do_not_starve_other_calls(redis_proc, tmp_path, unique):
    # polls that last a minute: every other call must be answered while all 200 still wait
    engine = EngineProcess(redis_proc.url, tmp_path / "engine.log", ENGINE_POLL_SECONDS="60")
    engine.start()
    try:
        sfn = make_client(engine.endpoint)
        activity = sfn.create_activity(name=f"busy-{unique}")["activityArn"]
        arn = create_machine(
            sfn, f"busy-{unique}", {"T": {"Type": "Task", "Resource": activity, "End": True}}
        )
        tokens: list[str] = []
        pollers = [
            threading.Thread(target=raw_poll, args=(engine.port, activity, tokens), daemon=True)
            for _ in range(POLLERS)
        ]
        for poller in pollers:
            poller.start()
        wait_until(lambda: blocked_polls(redis_proc) >= POLLERS, "200 polls waiting in Redis")
        for _ in range(20):
            sfn.list_state_machines(maxResults=5)
        assert tokens == [] and blocked_polls(redis_proc) >= POLLERS  # answered while they all wait
        executions = [sfn.start_execution(stateMachineArn=arn)["executionArn"] for _ in range(5)]
        wait_until(lambda: len(tokens) >= 5, "5 polls handed a task")
        assert len(set(tokens)) == 5 and all(tokens)
        for token in list(tokens):
            sfn.send_task_success(taskToken=token, output="{}")
        assert all(wait_done(sfn, ex, timeout=60)["status"] == "SUCCEEDED" for ex in executions)
        assert len(tokens) == 5  # no other poll was answered: each task went to one poller
    finally:
        engine.stop()  # SIGTERM ends the polls still waiting
