"""Shutdown when Redis goes first (`make run`'s Ctrl-C stops everything at once): one line, no traceback.

Real processes: a redis-server of this test's own (it is killed), the engine and the jobs process.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

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
        try:
            code = process.process.wait(timeout=20)
        except subprocess.TimeoutExpired as exc:  # say what it was doing (seen once, in a loaded chroot)
            raise AssertionError(f"{process.name} did not stop:\n{process.log()[-6000:]}") from exc
        assert code == 0, process.log()


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


def scheduler_pids(jobs: ManagedProcess) -> list[int]:
    """The jobs process's children: rq's scheduler process (SimpleWorker forks nothing else)."""
    assert jobs.process is not None
    pids: list[int] = []
    for task in Path(f"/proc/{jobs.process.pid}/task").iterdir():  # the thread that forked it lists it
        try:
            pids += [int(p) for p in (task / "children").read_text().split()]
        except FileNotFoundError:  # a thread that just ended
            pass
    return pids


def gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"
    except FileNotFoundError:
        return True


def until(predicate: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """A hang detector: what it waits for takes seconds; rq's own fallback takes 10 minutes."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


def scheduled_job_runs(redis_server: RedisServer) -> None:
    """A job enqueued for later (what status retries do) runs: a scheduler holds the lock."""
    job = Queue("statuses", connection=redis_server.client()).enqueue_in(
        timedelta(seconds=1), "service.reconcile.sweep_open_runs"
    )
    until(lambda: job.get_status(refresh=True) == "finished", "the scheduled job to run")


def test_a_sigkilled_scheduler_is_started_again_within_seconds(own_redis, processes):
    engine, jobs, _ = start_stepline(own_redis, processes)
    (first,) = scheduler_pids(jobs)
    os.kill(first, signal.SIGKILL)
    second = until(lambda: [p for p in scheduler_pids(jobs) if p != first and not gone(p)], "a new scheduler")
    assert second
    scheduled_job_runs(own_redis)
    stop_all(engine, jobs)


def test_a_sigkilled_jobs_process_leaves_no_scheduler_behind(own_redis, processes):
    engine, jobs, _ = start_stepline(own_redis, processes)
    (orphan,) = scheduler_pids(jobs)
    assert jobs.process is not None
    os.kill(jobs.process.pid, signal.SIGKILL)  # the parent alone, as the OOM killer picks one process
    jobs.process.wait(timeout=10)
    try:
        until(lambda: gone(orphan), "the scheduler to end with its jobs process")
    finally:
        if not gone(orphan):
            os.kill(orphan, signal.SIGKILL)
    # the lock was released, not left to expire: the next jobs process schedules at once
    replacement = processes("jobs-2", jobs.args, jobs.env)
    wait_for_log(replacement, "Scheduler for")
    scheduled_job_runs(own_redis)
    stop_all(engine, replacement)


def test_the_work_loop_waits_for_redis_between_jobs(own_redis):
    # rq's loop calls these outside its own retry; a Redis error there ended the jobs process
    worker = JobsWorker([Queue("default", connection=own_redis.client())], connection=own_redis.client())
    calls = {
        "heartbeat": worker.heartbeat,
        "set_state": lambda: worker.set_state("idle"),
        "check_for_suspension": lambda: worker.check_for_suspension(False),
    }
    for name, call in calls.items():
        own_redis.kill()
        outcome: list[BaseException | None] = []

        def run_it(call: Callable[[], Any] = call, outcome: list[BaseException | None] = outcome) -> None:
            try:
                call()
                outcome.append(None)
            except BaseException as exc:
                outcome.append(exc)

        runner = threading.Thread(target=run_it)
        runner.start()
        runner.join(1.5)
        assert runner.is_alive(), (name, outcome)  # waiting for Redis, not gone
        own_redis.start()
        runner.join(30)
        assert outcome == [None], name


def test_jobs_process_outlives_outages_of_any_length(own_redis, processes):
    engine, jobs, _ = start_stepline(own_redis, processes)
    # the sweeper enqueues a job every second: outages land between jobs, in them, in rq's waits
    for outage in (0.2, 1.3, 0.7, 9.0):
        own_redis.kill()
        time.sleep(outage)
        own_redis.start()
        time.sleep(1.5)
        jobs.check_alive()
    scheduled_job_runs(own_redis)
    stop_all(engine, jobs)
    assert "Traceback" not in jobs.log(), jobs.log()
