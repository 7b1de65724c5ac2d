"""Fixtures of the worker tests: the real engine, workers as processes, a build pipeline, execution waits."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from statemachines.blob_store import DirectoryStore
from statemachines.log_archive import use_blob_store
from tests.harness.processes import ManagedProcess, python_module, start_engine
from tests.workers.task_inputs import execution_input

ROLE_ARN = "arn:aws:iam::123456789012:role/stepline"
SECRET_VALUE = "s3cr3t-deploy-key"


@pytest.fixture
def engine_poll_seconds() -> str:
    """How long the engine holds a GetActivityTask; a test may parametrize it to override."""
    return "5"


@pytest.fixture
def engine_url(redis_url: str, processes: Callable[..., ManagedProcess], engine_poll_seconds: str) -> str:
    """The local engine over the test Redis, with short long polls so tests never wait on one."""
    return start_engine(processes, redis_url, ENGINE_POLL_SECONDS=engine_poll_seconds, LOG_LEVEL="INFO")


@pytest.fixture
def sfn(engine_url: str) -> Any:
    return boto3.client(
        "stepfunctions",
        endpoint_url=engine_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(inject_host_prefix=False, retries={"max_attempts": 1}, read_timeout=70),
    )


@pytest.fixture
def worker_env(redis_url: str, engine_url: str, tmp_path: Path) -> dict[str, str]:
    """Settings of a test worker: short heartbeats, file:// clones, a secrets file."""
    secrets = tmp_path / "worker-secrets"
    secrets.write_text(f"# trusted runs only\nDEPLOY_KEY={SECRET_VALUE}\n")
    use_blob_store(DirectoryStore(tmp_path / "blobs"))  # where this test's readers find finished logs
    return {
        "STEPLINE_BLOB_DIR": str(tmp_path / "blobs"),
        "REDIS_URL": redis_url,
        "SFN_ENDPOINT_URL": engine_url,
        "WORKER_DIR": str(tmp_path / "worker"),
        "WORKER_SLOTS": "2",
        "HEARTBEAT_SECONDS": "0.3",
        "WORKER_POLL_READ_TIMEOUT_SECONDS": "15",
        "WORKER_SECRETS_FILE": str(secrets),
        "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true",
        "STEP_LOG_MAX_BYTES": str(256 * 1024),
        "LOG_LEVEL": "INFO",
    }


@pytest.fixture
def start_worker(
    processes: Callable[..., ManagedProcess], worker_env: dict[str, str]
) -> Callable[..., ManagedProcess]:
    """Start `python -m workers` (name, extra settings); it serves the pools once it logs that it polls."""
    count = iter(range(100))

    def start(name: str | None = None, **env: str) -> ManagedProcess:
        worker = processes(name or f"worker{next(count)}", python_module("workers"), {**worker_env, **env})
        deadline = time.monotonic() + 20
        while "slots on pools" not in worker.log():
            worker.check_alive()
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker did not start:\n{worker.log()}")
            time.sleep(0.05)
        return worker

    return start


def build_step(commands: list[str], step: str = "test", heartbeat: int = 5, **params: Any) -> dict[str, Any]:
    """A pipeline with one build step, as PIPELINES.md shows it, with test-sized heartbeat and timeouts.

    Workers beat every 0.3 s: 5 s of HeartbeatSeconds leaves room for a loaded CI machine.
    """
    return {
        "StartAt": "Step",
        "States": {
            "Step": {
                "Type": "Task",
                "Resource": "ACTIVITY",
                "Parameters": {"step": step, "commands": commands, "run.$": "$$.Execution.Input", **params},
                "HeartbeatSeconds": heartbeat,
                "TimeoutSeconds": 120,
                "Retry": [
                    {"ErrorEquals": ["States.HeartbeatTimeout"], "MaxAttempts": 3, "IntervalSeconds": 1}
                ],
                "ResultPath": "$.steps.result",
                "End": True,
            }
        },
    }


@pytest.fixture
def run_pipeline(sfn: Any) -> Callable[..., str]:
    """Deploy `definition` on the build pool's activity and start it with `run` fields; the execution ARN."""
    counter = iter(range(1000))

    def start(definition: dict[str, Any], activity_name: str = "stepline-build", **run: Any) -> str:
        activity = sfn.create_activity(name=activity_name)["activityArn"]
        text = json.dumps(definition).replace('"ACTIVITY"', json.dumps(activity))
        machine = sfn.create_state_machine(name=f"p{next(counter)}", definition=text, roleArn=ROLE_ARN)
        execution = sfn.start_execution(
            stateMachineArn=machine["stateMachineArn"], input=json.dumps(execution_input(**run))
        )
        return execution["executionArn"]

    return start


def wait_execution(sfn: Any, arn: str, timeout: float = 30) -> dict[str, Any]:
    """DescribeExecution once it is no longer RUNNING."""
    deadline = time.monotonic() + timeout
    while True:
        found = sfn.describe_execution(executionArn=arn)
        if found["status"] != "RUNNING":
            return dict(found)
        if time.monotonic() > deadline:
            raise TimeoutError(f"{arn} still running after {timeout}s")
        time.sleep(0.1)


def history(sfn: Any, arn: str) -> list[dict[str, Any]]:
    return list(sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"])


def step_pids(log_id: str, program: str = "sleep", under: int | None = None) -> list[int]:
    """Host pids of a step's `program` processes: steps run in a PID namespace of their own, so the test
    finds them as the worker's sweep does, by the STEPLINE_LOG_ID in their environment.

    `under`: only descendants of that process (a worker's pid). Tests running in parallel use the same
    log ids (run-1:test:1), so without it a test may find another test's step.
    """
    marker = f"STEPLINE_LOG_ID={log_id}".encode()
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
            if argv[0].endswith(program.encode()) and marker in (proc / "environ").read_bytes().split(b"\0"):
                if under is None or _descends_from(int(proc.name), under):
                    found.append(int(proc.name))
        except OSError:
            continue
    return found


def _descends_from(pid: int, ancestor: int) -> bool:
    while pid > 1:
        if pid == ancestor:
            return True
        try:
            pid = int((Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return False
    return False


def wait_for(condition: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met after {timeout}s")
        time.sleep(0.05)
    return value
