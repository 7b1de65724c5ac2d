"""Where a run's time goes: p50/p95 of each stage of a one-step pipeline, from the push to the final status.

    .venv/bin/python bench/stages_bench.py [--runs 100]

Starts every process as in production (redis-server, `python -m statemachines.engine`, the web
process under gunicorn, `python -m service.jobs`, `python -m workers`) and the fake GitHub; posts
signed push deliveries over HTTP one at a time (each after the last run's final status) and reads each
run's stamps (statemachines/run_stages.py). The repository's mirror is warmed by three runs first.
Beside the table, the physical limits measured in the same run: a Redis PING round trip and a loopback
TCP round trip (1 byte each way). Prints, never asserts.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from statemachines.run_stages import (
    EXECUTION_STARTED,
    FINAL_POSTED,
    FIRST_COMMAND_STARTED,
    PENDING_POSTED,
    STAGES,
    WEBHOOK_RECEIVED,
    RunStages,
)
from tests.harness.fake_github import FakeGitHub
from tests.harness.git_repos import GitRepo
from tests.harness.processes import ManagedProcess, python_module, start_engine, start_web
from tests.harness.redis_server import RedisServer
from tests.service.github_events import push_payload, signed_headers
from tests.service.run_stack import jobs_settings

PIPELINE = {
    "StartAt": "Build",
    "States": {
        "Build": {
            "Type": "Task", "Resource": "${activity:build}", "HeartbeatSeconds": 30, "End": True,
            "Parameters": {"step": "build", "commands": ["true"], "run.$": "$$.Execution.Input"},
        },
    },
}  # fmt: skip
WARM_RUNS = 3
ANSWERED = "webhook_answered_ms"  # not a stage: the delivery's HTTP round trip, measured by the sender
SETTLE_MS = 300  # a final status stamped this long ago is the run's last


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


def loopback_round_trip_ms(samples: int = 2000) -> float:
    """A 1-byte TCP ping-pong on 127.0.0.1 (the floor of any local HTTP call), median."""
    server = socket.create_server(("127.0.0.1", 0))

    def echo() -> None:
        connection, _ = server.accept()
        with connection:
            while data := connection.recv(1):
                connection.sendall(data)

    threading.Thread(target=echo, daemon=True).start()
    client = socket.create_connection(server.getsockname())
    client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    times = []
    for _ in range(samples):
        began = time.perf_counter()
        client.sendall(b"x")
        client.recv(1)
        times.append((time.perf_counter() - began) * 1000)
    client.close()
    server.close()
    return statistics.median(times)


def redis_round_trip_ms(client: Any, samples: int = 2000) -> float:
    times = []
    for _ in range(samples):
        began = time.perf_counter()
        client.ping()
        times.append((time.perf_counter() - began) * 1000)
    return statistics.median(times)


class Stack:
    """Every process of a run, started in `work`; `stop()` ends them."""

    def __init__(self, work: Path) -> None:
        self.logs = work / "logs"
        self.logs.mkdir()
        self.started: list[ManagedProcess] = []
        self.redis = RedisServer(work / "redis").start()
        self.github = FakeGitHub().start()
        self.github.add_repo("octo/app")
        engine = start_engine(self.start, self.redis.url)
        settings = jobs_settings(self.redis.url, engine, self.github) | {"LOG_LEVEL": "WARNING"}
        self.web = start_web(
            self.start, self.redis.url, **{**settings, "GITHUB_WEBHOOK_SECRET": "test-webhook-secret"}
        )
        self.start("jobs", python_module("service.jobs"), settings)
        worker = {
            "REDIS_URL": self.redis.url, "SFN_ENDPOINT_URL": engine, "WORKER_DIR": str(work / "worker"),
            "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true", "LOG_LEVEL": "WARNING",
        }  # fmt: skip
        self.start("worker", python_module("workers"), worker)

    def start(self, name: str, args: list[str], env: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, args, env, self.logs).start()
        self.started.append(process)
        return process

    def stop(self) -> None:
        for process in reversed(self.started):
            process.stop(timeout=10)
        self.github.stop()
        self.redis.stop()


def one_run(
    stack: Stack, stages: RunStages, payload: dict[str, Any], session: requests.Session
) -> dict[str, int]:
    body = json.dumps(payload).encode()
    headers = signed_headers("push", body, str(uuid.uuid4()), secret="test-webhook-secret")
    began = time.perf_counter()
    response = session.post(f"{stack.web}/webhooks/github", data=body, headers=headers, timeout=30)
    answered_ms = round((time.perf_counter() - began) * 1000)
    response.raise_for_status()
    run_id = response.json()["run_id"]
    deadline = time.monotonic() + 60
    stamps: dict[str, int] = {}
    while time.monotonic() < deadline:
        stamps = stages.read(run_id)
        if FINAL_POSTED in stamps and time.time() * 1000 - stamps[FINAL_POSTED] > SETTLE_MS:
            return {**stamps, ANSWERED: answered_ms}  # the run's last final-phase status is posted
        time.sleep(0.02)
    raise TimeoutError(f"{run_id}: stages {sorted(stamps)} after 60 s; logs in {stack.logs}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stages-bench-") as directory:
        work = Path(directory)
        stack = Stack(work)
        try:
            repo = GitRepo(work / "git", "app")
            repo.commit({".stepline/pipeline.asl.json": json.dumps(PIPELINE)}, "one step")
            repo.checkout("feature/bench")
            repo.push("feature/bench")
            payload = push_payload(repo, "feature/bench")
            stages = RunStages(stack.redis.client())
            session = requests.Session()
            for _ in range(WARM_RUNS):
                one_run(stack, stages, payload, session)
            runs = [one_run(stack, stages, payload, session) for _ in range(args.runs)]
            redis_ms = redis_round_trip_ms(stack.redis.client())
            loopback_ms = loopback_round_trip_ms()
        finally:
            stack.stop()
    print_table(runs, redis_ms, loopback_ms)
    return 0


def print_table(runs: list[dict[str, int]], redis_ms: float, loopback_ms: float) -> None:
    print(f"stages of a one-step pipeline (`true`, warm mirror), {len(runs)} runs one at a time")
    print(f"  {'stage (time since the stage before)':<54}{'p50':>9}{'p95':>9}{'max':>9}")
    path = [stage for stage in STAGES if stage.name != PENDING_POSTED]  # the pending post runs beside
    for before, stage in itertools.pairwise(path):
        row(f"{before.label} -> {stage.label}", [run[stage.name] - run[before.name] for run in runs])
    posted = [run for run in runs if PENDING_POSTED in run]
    row(
        f"execution started -> pending status posted ({len(posted)} of {len(runs)} runs)",
        [run[PENDING_POSTED] - run[EXECUTION_STARTED] for run in posted],
    )
    row("webhook answered (HTTP round trip, as GitHub waits)", [run[ANSWERED] for run in runs])
    row("push -> first command started", [run[FIRST_COMMAND_STARTED] - run[WEBHOOK_RECEIVED] for run in runs])
    row(
        "push -> final status posted (the whole run)",
        [run[FINAL_POSTED] - run[WEBHOOK_RECEIVED] for run in runs],
    )
    print(
        f"physical limits, same run: Redis PING round trip {redis_ms:.3f} ms; loopback TCP round trip {loopback_ms:.3f} ms"
    )
    print(
        "(stamps are whole milliseconds of wall clock. The pending status is posted by a status job while the"
    )
    print(
        " worker already runs; the publisher posts only the newest wanted status, so a fast run may never show it)"
    )


def row(label: str, took: list[int]) -> None:
    if not took:
        print(f"  {label:<54}{'-':>9}")
        return
    print(
        f"  {label:<54}{statistics.median(took):>7.0f}ms{percentile(took, 0.95):>7.0f}ms{max(took):>7.0f}ms"
    )


if __name__ == "__main__":
    sys.exit(main())
