"""Growth of the engine and the workers: running executions (dispatch, timers, CPU, memory) and worker slots.

Run through bench/growth_bench.py (`--only executions,slots`). Each part starts a private
redis-server and `python -m statemachines.engine` (and `python -m workers`) as processes.

- executions: N executions wait on a 3 s Wait timer at once. Measured while they wait: dispatch
  latency (StartExecution of another machine -> its task in a waiting GetActivityTask's hands, 20
  samples); afterwards timer lateness (WaitStateExited - WaitStateEntered - 3 s, from each history);
  a second burst of N timers due at one instant (a Wait's Timestamp): firing rate, lateness of the last;
  engine CPU seconds over the whole first phase (starting, waiting, finishing) per execution; engine RSS.
- slots: one worker with N slots, idle: Redis connections it holds, the engine's RSS, and pickup
  latency (StartExecution -> ActivityStarted of a one-step `true` pipeline on a warm mirror, 10 runs).
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench.growth_bench import print_table
from bench.worker_bench import deploy, one_run
from tests.harness.git_repos import GitRepo
from tests.harness.ports import free_port
from tests.harness.processes import ManagedProcess, python_module
from tests.harness.redis_server import RedisServer

WAIT_SECONDS = 3
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and its live children (expression workers)."""
    total = 0.0
    pids = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        pids += [int(child) for child in (task / "children").read_text().split()]
    for each in pids:
        try:
            fields = Path(f"/proc/{each}/stat").read_text().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICK
    return total


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def engine_pid(stack: Stack) -> int:
    assert stack.engine.process is not None
    return stack.engine.process.pid


class Stack:
    """redis-server and one engine process (and optionally a worker), stopped on exit."""

    def __init__(self, work: Path, name: str) -> None:
        self.work = work / name
        self.logs = self.work / "logs"
        self.logs.mkdir(parents=True)
        self.redis = RedisServer(self.work / "redis").start()
        port = free_port()
        env = {"ENGINE_PORT": str(port), "REDIS_URL": self.redis.url, "LOG_LEVEL": "WARNING"}
        self.engine = ManagedProcess("engine", python_module("statemachines.engine"), env, self.logs).start()
        self.endpoint = f"http://127.0.0.1:{port}"
        self.engine.wait_http(self.endpoint + "/")
        self.worker: ManagedProcess | None = None

    def client(self) -> Any:
        from bench.engine_bench import client

        return client(self.endpoint)

    def stop(self) -> None:
        if self.worker is not None:
            self.worker.stop(timeout=10)
        self.engine.stop(timeout=10)
        self.redis.stop()


def dispatch_latency(sfn: Any, samples: int) -> list[float]:
    activity = sfn.create_activity(name=f"dispatch-{time.time_ns()}")["activityArn"]
    definition = json.dumps(
        {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": activity, "End": True}}}
    )
    machine = sfn.create_state_machine(name=f"dispatch-{time.time_ns()}", definition=definition, roleArn=ROLE)
    from bench.engine_bench import client

    taker = client(sfn.meta.endpoint_url)  # its own pool: a waiting poll holds a connection
    latencies = []

    def take(got: list[float]) -> None:
        task = taker.get_activity_task(activityArn=activity)
        got.append(time.perf_counter())
        taker.send_task_success(taskToken=task["taskToken"], output="{}")

    for _ in range(samples):
        got: list[float] = []
        thread = threading.Thread(target=take, args=(got,))
        thread.start()
        time.sleep(0.05)  # the poll is waiting
        began = time.perf_counter()
        sfn.start_execution(stateMachineArn=machine["stateMachineArn"])
        thread.join()
        latencies.append((got[0] - began) * 1000)
    return latencies


def timer_times(sfn: Any, arns: list[str]) -> list[tuple[float, float]]:
    """(entered, exited) of each execution's Wait, in seconds."""
    times = []
    for arn in arns:
        events = sfn.get_execution_history(executionArn=arn, maxResults=20)["events"]
        entered = next(e["timestamp"] for e in events if e["type"] == "WaitStateEntered")
        exited = next((e["timestamp"] for e in events if e["type"] == "WaitStateExited"), None)
        if exited is not None:
            times.append((entered.timestamp(), exited.timestamp()))
    return times


def per_second(moments: list[float]) -> float:
    span = max(moments) - min(moments)
    return (len(moments) - 1) / span if span > 0 else float("nan")


def wait_until_none_running(sfn: Any, machine: str) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        listed = sfn.list_executions(stateMachineArn=machine, statusFilter="RUNNING", maxResults=1)
        if not listed["executions"]:
            return
        time.sleep(0.2)


def same_instant_burst(sfn: Any, count: int, start_s: float) -> tuple[float, float]:
    """`count` executions waiting for one Timestamp: how fast their timers fire, and how late the last."""
    due = datetime.now(UTC) + timedelta(seconds=start_s * 1.5 + 1)
    states = {
        "W": {"Type": "Wait", "Timestamp": due.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z", "Next": "P"},
        "P": {"Type": "Pass", "End": True},
    }
    definition = json.dumps({"StartAt": "W", "States": states})
    machine = sfn.create_state_machine(name="burst", definition=definition, roleArn=ROLE)["stateMachineArn"]
    with ThreadPoolExecutor(16) as pool:
        arns = list(
            pool.map(lambda i: sfn.start_execution(stateMachineArn=machine)["executionArn"], range(count))
        )
    wait_until_none_running(sfn, machine)
    exits = [exited for _, exited in timer_times(sfn, arns)]
    return per_second(exits), (max(exits) - due.timestamp()) * 1000


def one_size(work: Path, count: int) -> dict[str, float]:
    stack = Stack(work, f"executions-{count}")
    try:
        sfn = stack.client()
        states = {
            "W": {"Type": "Wait", "Seconds": WAIT_SECONDS, "Next": "P"},
            "P": {"Type": "Pass", "End": True},
        }
        definition = json.dumps({"StartAt": "W", "States": states})
        machine = sfn.create_state_machine(name="waiting", definition=definition, roleArn=ROLE)[
            "stateMachineArn"
        ]
        cpu_before = cpu_seconds(engine_pid(stack))
        began = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            arns = list(
                pool.map(lambda i: sfn.start_execution(stateMachineArn=machine)["executionArn"], range(count))
            )
        started_in = time.monotonic() - began
        dispatch = dispatch_latency(sfn, 20) if time.monotonic() - began < WAIT_SECONDS else []
        rss = rss_mib(engine_pid(stack))
        wait_until_none_running(sfn, machine)
        cpu = cpu_seconds(engine_pid(stack)) - cpu_before
        times = timer_times(sfn, arns)
        burst_rate, burst_last = same_instant_burst(sfn, count, started_in)
        late = sorted((exited - entered - WAIT_SECONDS) * 1000 for entered, exited in times)
        return {
            "StartExecution, each (ms)": started_in * 1000 / count,
            "dispatch p50 (ms)": statistics.median(dispatch) if dispatch else float("nan"),
            "timer late p50 (ms)": statistics.median(late),
            "timer late p95 (ms)": late[int(len(late) * 0.95) - 1] if len(late) > 1 else late[0],
            # the burst: timers come due as fast as the executions started; fired keeps up or lags
            "timers came due per second": per_second([entered for entered, _ in times]),
            "timers fired per second": per_second([exited for _, exited in times]),
            # every timer due at one instant (a Wait's Timestamp): the engine's firing capacity
            "one-instant burst: fired per second": burst_rate,
            "one-instant burst: last fired late (ms)": burst_last,
            "engine CPU per execution (ms)": cpu * 1000 / count,
            "engine RSS while waiting (MiB)": rss,
        }
    finally:
        stack.stop()


def bench_executions(work: Path, sizes: list[int]) -> None:
    results = [one_size(work, size) for size in sizes]
    rows = {name: [result[name] for result in results] for name in results[0]}
    print_table(
        f"running executions (all waiting on a {WAIT_SECONDS} s timer; one engine process)", sizes, rows, ""
    )
    print("  (the timer thread reads the due timers and the next due time in one round trip and sleeps until")
    print(
        "   then; a firing is CPU-bound, ~0.4 ms, so the last of n timers due at one instant is late by about"
    )
    print("   n x 0.4 ms in one engine process; the timer set itself is O(log n))")


def bench_slots(work: Path, sizes: list[int]) -> None:
    rows: dict[str, list[float]] = {
        "pickup p50 (ms)": [],
        "pickup max (ms)": [],
        "Redis connections (worker)": [],
        "engine RSS (MiB)": [],
    }
    repo = GitRepo(work / "slots-git", "app")
    sha = repo.commit({"a": "1"})
    repo.push("main")
    for slots in sizes:
        stack = Stack(work, f"slots-{slots}")
        try:
            client_count = int(stack.redis.client().info("clients")["connected_clients"])
            env = {
                "REDIS_URL": stack.redis.url,
                "SFN_ENDPOINT_URL": stack.endpoint,
                "WORKER_DIR": str(stack.work / "worker"),
                "WORKER_SLOTS": str(slots),
                "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true",
                "LOG_LEVEL": "WARNING",
            }
            stack.worker = ManagedProcess("worker", python_module("workers"), env, stack.logs).start()
            sfn = stack.client()
            machine = deploy(sfn)
            time.sleep(3)  # the worker opens its polls
            one_run(sfn, machine, repo.url, sha, 0)  # warms the mirror
            pickups = [one_run(sfn, machine, repo.url, sha, n)[0] * 1000 for n in range(1, 11)]
            rows["pickup p50 (ms)"].append(statistics.median(pickups))
            rows["pickup max (ms)"].append(max(pickups))
            now = int(stack.redis.client().info("clients")["connected_clients"])
            rows["Redis connections (worker)"].append(now - client_count)
            rows["engine RSS (MiB)"].append(rss_mib(engine_pid(stack)))
        finally:
            stack.stop()
    print_table("worker slots (one worker, idle between runs; step `true` on a warm mirror)", sizes, rows, "")


ROLE = "arn:aws:iam::123456789012:role/bench"
