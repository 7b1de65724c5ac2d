"""ENGINE_PROCESSES: several engine processes on one port, kept running and stopped by their parent."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.harness.redis_server import RedisServer

from .conftest import ROLE_ARN, EngineProcess, definition, make_client


@pytest.fixture()
def engine2(redis_proc: RedisServer, tmp_path: Path) -> Iterator[EngineProcess]:
    proc = EngineProcess(redis_proc.url, tmp_path / "engine.log", ENGINE_PROCESSES="2")
    proc.start()
    yield proc
    proc.stop()


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def _until(predicate: Any, timeout: float = 10) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError("condition not reached")


def _run_executions(sfn: Any, machine: str, count: int) -> list[str]:
    def run(index: int) -> str:
        arn = sfn.start_execution(stateMachineArn=machine, input=f'{{"n": {index}}}')["executionArn"]
        return str(_until(lambda: _finished(sfn, arn)))

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(run, range(count)))


def _finished(sfn: Any, arn: str) -> str | None:
    described = sfn.describe_execution(executionArn=arn)
    return None if described["status"] == "RUNNING" else f"{described['status']} {described.get('output')}"


def _machine(sfn: Any, name: str) -> str:
    states = {"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Result": {"ok": True}, "End": True}}
    return str(
        sfn.create_state_machine(name=name, definition=definition(states), roleArn=ROLE_ARN)[
            "stateMachineArn"
        ]
    )


def test_each_process_serves_and_one_that_dies_is_replaced(engine2: EngineProcess, unique: str) -> None:
    children = engine2.children()
    assert len(children) == 2
    sfn = make_client(engine2.endpoint)
    machine = _machine(sfn, f"procs-{unique}")
    assert _run_executions(sfn, machine, 40) == ['SUCCEEDED {"ok":true}'] * 40
    # kill one child, then the other: the port keeps answering, so each of them was serving
    for victim in children:
        os.kill(victim, signal.SIGKILL)
        _until(lambda v=victim: _gone(v) and len(engine2.children()) == 2)
        fresh = make_client(engine2.endpoint)  # new connections: the killed child's are gone
        assert _run_executions(fresh, machine, 8) == ['SUCCEEDED {"ok":true}'] * 8
    assert not set(engine2.children()) & set(children)
    assert (
        f"process {children[0]} ended (killed by signal 9); starting it again" in engine2.log_path.read_text()
    )


def test_a_sigkill_of_the_parent_takes_its_children_along(engine2: EngineProcess, unique: str) -> None:
    children = engine2.children()
    engine2.kill()  # returns once nothing answers on the port any more
    _until(lambda: all(_gone(pid) for pid in children))
    engine2.start()  # the port is free again: the new engine binds it
    sfn = make_client(engine2.endpoint)
    assert _run_executions(sfn, _machine(sfn, f"again-{unique}"), 4) == ['SUCCEEDED {"ok":true}'] * 4


def test_sigterm_stops_every_process(engine2: EngineProcess) -> None:
    assert engine2.proc is not None
    parent, children = engine2.proc, engine2.children()
    parent.terminate()
    assert parent.wait(timeout=15) == 0
    engine2.proc = None
    _until(lambda: all(_gone(pid) for pid in children))


@pytest.mark.parametrize("processes", ["1", "2"])
def test_sigterm_ends_waiting_long_polls_at_once_and_quietly(
    redis_proc: RedisServer, tmp_path: Path, unique: str, processes: str
) -> None:
    engine = EngineProcess(
        redis_proc.url, tmp_path / "engine.log", ENGINE_PROCESSES=processes, ENGINE_POLL_SECONDS="60"
    )
    engine.start()
    sfn = make_client(engine.endpoint)
    activity = sfn.create_activity(name=f"quiet-{unique}")["activityArn"]

    def poll() -> None:
        with contextlib.suppress(Exception):  # the engine goes away under it: that is the point
            make_client(engine.endpoint).get_activity_task(activityArn=activity)

    pollers = [threading.Thread(target=poll) for _ in range(5)]
    for poller in pollers:
        poller.start()
    time.sleep(0.5)  # all five wait in Redis now
    assert engine.proc is not None
    began = time.monotonic()
    engine.proc.terminate()
    assert engine.proc.wait(timeout=45) == 0
    assert time.monotonic() - began < 30  # a hang detector: not after the 60 s polls ended
    engine.proc = None
    for poller in pollers:
        poller.join(30)
    assert "Traceback" not in engine.log_path.read_text()
