"""Fixtures for the engine service: a real redis-server and the engine as a subprocess, driven by boto3."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from tests.harness.ports import free_port
from tests.harness.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
ROLE_ARN = "arn:aws:iam::123456789012:role/stepline"


class EngineProcess:
    """`python -m statemachines.engine` on a free port; killable (SIGKILL) and restartable."""

    def __init__(self, redis_url: str, log_path: Path, **env: str) -> None:
        self.port = free_port()
        self.redis_url = redis_url
        self.log_path = log_path
        self.env = env
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {**os.environ, "ENGINE_PORT": str(self.port), "REDIS_URL": self.redis_url}
        env.update({"ENGINE_POLL_SECONDS": "2", "ENGINE_ID": f"test-{self.port}", "LOG_LEVEL": "INFO"})
        env.update(self.env)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "statemachines.engine"], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        for _ in range(300):
            if self.proc.poll() is not None:
                raise RuntimeError(f"engine exited: {self.log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(self.endpoint + "/", timeout=1):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("engine did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
            self.proc = None
            self.wait_port_closed()

    def wait_port_closed(self, timeout: float = 5) -> None:
        """Until nothing answers on the port (an ENGINE_PROCESSES parent's children die just after it)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.01)
        raise AssertionError(f"port {self.port} still answers after the engine was killed")

    def children(self) -> list[int]:
        """Pids of the engine's child processes (ENGINE_PROCESSES > 1), from Linux's /proc."""
        assert self.proc is not None
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        return [int(pid) for pid in path.read_text().split()]

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def make_client(endpoint: str, key: str = "testing", secret: str = "testing", read_timeout: int = 70) -> Any:  # noqa: S107
    return boto3.client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        config=Config(
            inject_host_prefix=False,
            retries={"max_attempts": 1},
            read_timeout=read_timeout,
            max_pool_connections=50,
        ),
    )


@pytest.fixture(scope="session")
def redis_proc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    proc = RedisServer(tmp_path_factory.mktemp("engine-redis"))
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def engine(redis_proc: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineProcess]:
    proc = EngineProcess(redis_proc.url, tmp_path_factory.mktemp("engine") / "engine.log")
    proc.start()
    yield proc
    proc.stop()


@pytest.fixture()
def sfn(engine: EngineProcess) -> Any:
    return make_client(engine.endpoint)


@pytest.fixture()
def unique() -> str:
    return uuid.uuid4().hex[:10]


def definition(states: dict[str, Any], start: str | None = None, **top: Any) -> str:
    return json.dumps({"StartAt": start or next(iter(states)), "States": states, **top})


def create_machine(sfn: Any, name: str, states: dict[str, Any], **kwargs: Any) -> str:
    arn: str = sfn.create_state_machine(name=name, definition=definition(states), roleArn=ROLE_ARN, **kwargs)[
        "stateMachineArn"
    ]
    return arn


def wait_done(sfn: Any, exec_arn: str, timeout: float = 10) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        desc: dict[str, Any] = sfn.describe_execution(executionArn=exec_arn)
        if desc["status"] != "RUNNING" or time.monotonic() > deadline:
            return desc
        time.sleep(0.02)


def history(sfn: Any, exec_arn: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=exec_arn):
        events.extend(page["events"])
    return events


def answer_all_at_once(endpoints: list[str], activity: str, count: int) -> list[BaseException]:
    """`count` workers each take a task of `activity`, then all answer it at the same instant.

    Worker i talks to endpoints[i % len(endpoints)]; returns the errors the answers raised.
    """
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def work(index: int) -> None:
        client = make_client(endpoints[index % len(endpoints)])
        task = client.get_activity_task(activityArn=activity)
        barrier.wait()
        try:
            client.send_task_success(taskToken=task["taskToken"], output=task["input"])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return errors


def read_http_answer(reader: Any) -> tuple[bytes, bytes]:
    """(status line, body) of the next HTTP answer on `reader` (a socket's buffered file)."""
    status = reader.readline()
    length = 0
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        if name.lower() == b"content-length":
            length = int(value)
    return status, reader.read(length)
