"""Shutdown when Redis goes first (`make run`'s Ctrl-C stops everything at once): one line, no traceback.

Real processes: a redis-server of this test's own (it is killed), the engine and the jobs process.
"""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import timedelta

import boto3
import pytest
from rq import Queue

from service.jobs import JobsWorker
from tests.harness.processes import ManagedProcess, python_module, start_engine
from tests.harness.redis_server import RedisServer

pytestmark = pytest.mark.fault

WAIT_THEN_SUCCEED = {
    "StartAt": "Soak",
    "States": {"Soak": {"Type": "Wait", "Seconds": 1, "Next": "Done"}, "Done": {"Type": "Succeed"}},
}


def wait_for_log(process: ManagedProcess, text: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in process.log():
        process.check_alive()
        assert time.monotonic() < deadline, f"{process.name} never logged {text!r}:\n{process.log()}"
        time.sleep(0.05)


@pytest.fixture
def own_redis(tmp_path):
    """A redis-server of this test alone: the test kills it."""
    server = RedisServer(tmp_path / "redis").start()
    yield server
    server.stop()


def start_stepline(redis_server: RedisServer, processes) -> tuple[ManagedProcess, ManagedProcess, str]:
    """The engine and the jobs process over `redis_server`, once every thread of the jobs process runs."""
    started: dict[str, ManagedProcess] = {}

    def start(name: str, args: list[str], env: dict[str, str]) -> ManagedProcess:
        started[name] = processes(name, args, env)
        return started[name]

    engine_url = start_engine(start, redis_server.url, LOG_LEVEL="INFO")
    settings = {
        "REDIS_URL": redis_server.url,
        "SFN_ENDPOINT_URL": engine_url,
        "GITHUB_WEBHOOK_SECRET": "test-webhook-secret",
        "STEPLINE_RECONCILE_INTERVAL_SECONDS": "1",
        "LOG_LEVEL": "INFO",
    }
    jobs = processes("jobs", python_module("service.jobs"), settings)
    for text in ("Listening on", "approval poller: polling", "Scheduler for"):
        wait_for_log(jobs, text)
    return started["engine"], jobs, engine_url


def arm_timer(engine_url: str) -> None:
    """An execution whose Wait timer falls due while Redis is down."""
    sfn = boto3.client(
        "stepfunctions", endpoint_url=engine_url, region_name="us-east-1",
        aws_access_key_id="test", aws_secret_access_key="test",
    )  # fmt: skip
    arn = sfn.create_state_machine(
        name="soak", definition=json.dumps(WAIT_THEN_SUCCEED), roleArn="arn:aws:iam::123456789012:role/x"
    )["stateMachineArn"]
    sfn.start_execution(stateMachineArn=arn, input="{}")


def stop_all(*stepline: ManagedProcess) -> None:
    for process in stepline:
        process.signal(signal.SIGTERM)
    for process in stepline:
        assert process.process is not None
        assert process.process.wait(timeout=20) == 0, process.log()


@pytest.mark.parametrize("outage_seconds", [0.0, 3.0])
def test_redis_stopping_first_ends_the_engine_and_jobs_process_quietly(own_redis, processes, outage_seconds):
    engine, jobs, engine_url = start_stepline(own_redis, processes)
    arm_timer(engine_url)
    time.sleep(0.5)

    own_redis.kill()  # before everyone else, as `make run`'s Ctrl-C may do it
    time.sleep(outage_seconds)  # 0: the signals arrive at once; 3: every thread meets the outage first
    stop_all(engine, jobs)

    for process in (engine, jobs):
        assert "Traceback" not in process.log(), process.log()
    if outage_seconds:
        # one line per outage from each of our threads, not one per retry
        assert jobs.log().count("sweeper: sweep not enqueued") == 1
        assert jobs.log().count("scheduler: Redis unavailable") == 1
        assert engine.log().count("timer loop: Redis unavailable") == 1


def test_jobs_process_carries_on_when_redis_comes_back(own_redis, processes):
    engine, jobs, _ = start_stepline(own_redis, processes)
    own_redis.kill()
    time.sleep(2.5)
    own_redis.start()  # same port and data
    wait_for_log(jobs, "sweeper: Redis answers again")
    # the scheduler waited for Redis too: a job enqueued for later (a status retry) still runs
    job = Queue("statuses", connection=own_redis.client()).enqueue_in(
        timedelta(seconds=1), "service.reconcile.sweep_open_runs"
    )
    deadline = time.monotonic() + 20
    while job.get_status(refresh=True) != "finished":
        jobs.check_alive()
        assert time.monotonic() < deadline, jobs.log()
        time.sleep(0.1)
    stop_all(engine, jobs)
    assert "Traceback" not in jobs.log(), jobs.log()


def test_a_job_started_while_redis_vanishes_does_not_end_the_worker(own_redis, caplog):
    connection = own_redis.client()
    queue = Queue("default", connection=connection)
    job = queue.enqueue("service.reconcile.sweep_open_runs")
    worker = JobsWorker([queue], connection=connection)
    own_redis.kill()  # rq's bookkeeping before the job now fails: rq's loop would quit on it
    outcome: list[BaseException | None] = []

    def run_it() -> None:
        try:
            worker.execute_job(job, queue)
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    runner = threading.Thread(target=run_it)
    with caplog.at_level("WARNING"):
        runner.start()
        time.sleep(1.5)
        assert runner.is_alive()  # waiting for Redis, not gone
        own_redis.start()
        runner.join(10)
    assert outcome == [None]
    assert f"Redis unavailable around job {job.id}" in caplog.text
