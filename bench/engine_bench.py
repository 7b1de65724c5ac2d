"""Benchmark: the same boto3 workloads against our engine and moto's server, side by side.

    .venv/bin/python bench/engine_bench.py [--quick]

Starts redis-server (appendonly yes), `python -m statemachines.engine` (one process per core,
and once more with one process) and `python -m moto.server` (with state machine execution
switched on), runs each workload against both and prints both numbers and the ratio. Activity
workloads are ours only: moto does not hand out activity tasks. Prints, never asserts.

(B) spreads its 8 client threads over client processes: one boto3 process spends ~1.5 ms of
CPU per execution under its GIL and would be what is measured. The canned-reply rows show how
far the same clients get against a server that costs nothing.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import redis
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
ROLE = "arn:aws:iam::123456789012:role/bench"
TERMINAL = {"SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED"}
# (B): 8 client threads, spread over processes so that boto3's own CPU is not what is measured
# (against canned replies, 8 threads reach ~720 exec/s in one process and ~1,750 in two here)
CLIENT_THREADS = 8
CLIENT_PROCESSES = 2
ENGINE_PROCESSES = os.cpu_count() or 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError as exc:
            if getattr(exc, "code", None):  # any HTTP answer means it is up
                return
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


@contextmanager
def process(args: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(
        args,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def client(endpoint: str) -> Any:
    config = Config(
        inject_host_prefix=False, retries={"max_attempts": 1}, read_timeout=70, max_pool_connections=64
    )
    return boto3.client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="bench",
        aws_secret_access_key="bench",
        config=config,
    )


def machine(sfn: Any, name: str, states: dict[str, Any]) -> str:
    definition = json.dumps({"StartAt": next(iter(states)), "States": states})
    return str(sfn.create_state_machine(name=name, definition=definition, roleArn=ROLE)["stateMachineArn"])


def pass_chain(count: int) -> dict[str, Any]:
    states: dict[str, Any] = {f"P{i}": {"Type": "Pass", "Next": f"P{i + 1}"} for i in range(count - 1)}
    states[f"P{count - 1}"] = {"Type": "Pass", "End": True}
    return states


def run_to_end(sfn: Any, sm: str, payload: str = "{}") -> tuple[str, float]:
    began = time.perf_counter()
    name = uuid.uuid4().hex  # moto does not invent names by itself
    arn = sfn.start_execution(stateMachineArn=sm, name=name, input=payload)["executionArn"]
    while sfn.describe_execution(executionArn=arn)["status"] not in TERMINAL:
        time.sleep(0.001)
    return arn, time.perf_counter() - began


def bench_transitions(sfn: Any, tag: str, repeats: int) -> float:
    """(A) one execution through 200 Pass states: state transitions per second (best of runs)."""
    sm = machine(sfn, f"a-{tag}", pass_chain(200))
    return max(200 / run_to_end(sfn, sm)[1] for _ in range(repeats))


def bench_executions(sfn: Any, tag: str, count: int, processes: int = 1) -> float:
    """(B) `count` executions of a 5-state machine from 8 client threads: executions per second.

    The 8 threads run in `processes` client processes. One boto3 process spends ~1.5 ms of CPU
    per execution (two calls) under the GIL, so with one process the client is what is measured.
    """
    sm = machine(sfn, f"b-{tag}", pass_chain(5))
    if processes == 1:
        return count / _run_executions(sfn, sm, count, CLIENT_THREADS)
    endpoint = sfn.meta.endpoint_url
    ctx = multiprocessing.get_context("spawn")
    started = ctx.Barrier(processes + 1)
    ended: Any = ctx.Queue()
    share, threads = count // processes, CLIENT_THREADS // processes
    clients = [
        ctx.Process(target=_client_process, args=(endpoint, sm, share, threads, started, ended))
        for _ in range(processes)
    ]
    for proc in clients:
        proc.start()
    try:
        started.wait(timeout=60)  # every client process has imported boto3 and connected
        began = time.perf_counter()  # CLOCK_MONOTONIC: the same clock in every process
        last = max(ended.get(timeout=300) for _ in clients)
    finally:
        for proc in clients:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.kill()
    return share * processes / (last - began)


def _client_process(endpoint: str, sm: str, count: int, threads: int, started: Any, ended: Any) -> None:
    sfn = client(endpoint)
    sfn.describe_state_machine(stateMachineArn=sm)
    started.wait(timeout=60)
    began = time.perf_counter()
    ended.put(began + _run_executions(sfn, sm, count, threads))


def _run_executions(sfn: Any, sm: str, count: int, threads: int) -> float:
    """Seconds to run `count` executions to their end from `threads` threads."""
    began = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(lambda _: run_to_end(sfn, sm), range(count)))
    return time.perf_counter() - began


def bench_executions_in_turn(
    ours: Any, moto: Any | None, tag: str, count: int, rounds: int, processes: int
) -> tuple[float, float | None]:
    """(B) on both sides in alternating rounds, the same `count`; the best round of each.

    One round each would compare two moments: other load on the machine then decides the ratio.
    """
    best_ours, best_moto = 0.0, None
    for round_no in range(rounds):
        round_tag = f"{tag}-{processes}-{round_no}"
        best_ours = max(best_ours, bench_executions(ours, round_tag, count, processes))
        if moto is not None:
            got = with_moto(lambda c, t=round_tag: bench_executions(c, t, count, processes), moto)
            if got is None:  # moto failed (reported): no more rounds for it
                moto = None
            else:
                best_moto = max(best_moto or 0.0, got)
    return best_ours, best_moto


def bench_map(sfn: Any, tag: str, repeats: int) -> float:
    """(D2) a Map over 100 items of a Pass: seconds from StartExecution to SUCCEEDED (median)."""
    states = {
        "M": {
            "Type": "Map",
            "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
            "End": True,
        }
    }
    sm = machine(sfn, f"map-{tag}", states)
    return statistics.median(run_to_end(sfn, sm, json.dumps(list(range(100))))[1] for _ in range(repeats))


def bench_history(sfn: Any, tag: str, repeats: int) -> float:
    """(E) fetching 400 history events in one GetExecutionHistory call (median seconds)."""
    sm = machine(sfn, f"e-{tag}", pass_chain(199))  # 1 + 199*2 + 1 = 400 events
    arn, _ = run_to_end(sfn, sm)
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        times.append(time.perf_counter() - began)
    assert len(events) >= 390, len(events)
    return statistics.median(times)


def bench_history_raw(sfn: Any, tag: str, repeats: int) -> float:
    """(E) the same fetch over raw HTTP: the server's share, without botocore's parsing (median s)."""
    sm = machine(sfn, f"eraw-{tag}", pass_chain(199))
    arn, _ = run_to_end(sfn, sm)
    body = json.dumps({"executionArn": arn, "maxResults": 1000}).encode()
    headers = {
        "X-Amz-Target": "AWSStepFunctions.GetExecutionHistory",
        "Content-Type": "application/x-amz-json-1.0",
    }
    times = []
    for _ in range(repeats):
        request = urllib.request.Request(
            sfn.meta.endpoint_url + "/", data=body, headers=headers, method="POST"
        )
        began = time.perf_counter()
        with urllib.request.urlopen(request) as response:
            events = json.loads(response.read())["events"]
        times.append(time.perf_counter() - began)
    assert len(events) >= 390, len(events)
    return statistics.median(times)


def bench_dispatch(sfn: Any, tag: str, samples: int) -> tuple[float, float]:
    """(C) StartExecution → the task in a waiting poller's hands: p50, p95 seconds."""
    activity = sfn.create_activity(name=f"c-{tag}")["activityArn"]
    sm = machine(sfn, f"c-{tag}", {"T": {"Type": "Task", "Resource": activity, "End": True}})
    poller = client(sfn.meta.endpoint_url)
    latencies = []
    for _ in range(samples):
        got: list[float] = []
        thread = threading.Thread(target=_take_into, args=(poller, activity, got))
        thread.start()
        time.sleep(0.02)  # the poll is waiting
        began = time.perf_counter()
        sfn.start_execution(stateMachineArn=sm)
        thread.join()
        latencies.append(got[0] - began)
    latencies.sort()
    return latencies[len(latencies) // 2], latencies[int(len(latencies) * 0.95) - 1]


def _take_into(poller: Any, activity: str, got: list[float]) -> None:
    got.append(_take(poller, activity))


def _take(poller: Any, activity: str) -> float:
    task = poller.get_activity_task(activityArn=activity)
    at = time.perf_counter()
    poller.send_task_success(taskToken=task["taskToken"], output="{}")
    return at


def bench_parallel(sfn: Any, tag: str, repeats: int) -> float:
    """(D1) a Parallel of 8 activity branches, all answered at once: seconds end to end (median)."""
    activity = sfn.create_activity(name=f"d-{tag}")["activityArn"]
    branches = [
        {"StartAt": f"T{i}", "States": {f"T{i}": {"Type": "Task", "Resource": activity, "End": True}}}
        for i in range(8)
    ]
    sm = machine(sfn, f"d-{tag}", {"P": {"Type": "Parallel", "Branches": branches, "End": True}})
    pollers = [client(sfn.meta.endpoint_url) for _ in range(8)]
    times = []
    for _ in range(repeats):
        threads = [threading.Thread(target=_take, args=(p, activity)) for p in pollers]
        for thread in threads:
            thread.start()
        time.sleep(0.05)
        times.append(run_to_end(sfn, sm)[1])
        for thread in threads:
            thread.join()
    return statistics.median(times)


def memory_per_execution(sfn: Any, store: redis.Redis, tag: str, count: int) -> tuple[float, float]:
    """Redis used_memory for `count` finished executions of a 3-state machine: MiB total, bytes each."""
    sm = machine(sfn, f"mem-{tag}", pass_chain(3))
    before = int(store.info("memory")["used_memory"])
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda i: sfn.start_execution(stateMachineArn=sm, input=json.dumps({"i": i})), range(count)
            )
        )
    used = int(store.info("memory")["used_memory"]) - before
    return used / 2**20, used / count


def row(label: str, ours: float | None, peer: float | None, unit: str, higher_is_better: bool = True) -> None:
    def show(value: float | None) -> str:
        return "n/a" if value is None else f"{value:,.4g} {unit}"

    ratio = ""
    if ours and peer:
        ratio = f"{(ours / peer) if higher_is_better else (peer / ours):,.1f}x"
    print(f"{label:<60} {show(ours):>18} {show(peer):>18} {ratio:>8}")


def with_moto(fn: Callable[[Any], Any], sfn: Any | None) -> Any:
    if sfn is None:
        return None
    try:
        return fn(sfn)
    except Exception as exc:  # moto is the peer, not the subject: report and go on
        print(f"  (moto failed: {type(exc).__name__}: {str(exc)[:120]})")
        return None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    parser.add_argument("--no-moto", action="store_true")
    args = parser.parse_args()
    scale = 0.25 if args.quick else 1.0
    tag = str(int(time.time()))
    with tempfile.TemporaryDirectory() as tmp:
        redis_port, engine_port, moto_port = free_port(), free_port(), free_port()
        redis_args = [
            "redis-server",
            "--port",
            str(redis_port),
            "--dir",
            tmp,
            "--appendonly",
            "yes",
            "--save",
            "",
        ]
        engine_env = {
            "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "LOG_LEVEL": "WARNING",
        }
        single_port = free_port()
        engine = [sys.executable, "-m", "statemachines.engine"]
        with (
            process(redis_args),
            process(
                engine,
                {**engine_env, "ENGINE_PORT": str(engine_port), "ENGINE_PROCESSES": str(ENGINE_PROCESSES)},
            ),
            process(engine, {**engine_env, "ENGINE_PORT": str(single_port), "ENGINE_ID": "single"}),
        ):
            time.sleep(0.3)
            wait_http(f"http://127.0.0.1:{engine_port}/")
            wait_http(f"http://127.0.0.1:{single_port}/")
            ours = client(f"http://127.0.0.1:{engine_port}")
            single = client(f"http://127.0.0.1:{single_port}")
            moto_cm = (
                process([sys.executable, "-m", "moto.server", "-p", str(moto_port)])
                if not args.no_moto
                else None
            )
            with moto_cm if moto_cm else _nothing():
                moto = None
                if moto_cm:
                    wait_http(f"http://127.0.0.1:{moto_port}/moto-api/")
                    config = json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode()
                    urllib.request.urlopen(
                        urllib.request.Request(
                            f"http://127.0.0.1:{moto_port}/moto-api/config", data=config, method="POST"
                        )
                    )
                    moto = client(f"http://127.0.0.1:{moto_port}")
                run_all(ours, single, moto, redis.Redis(port=redis_port), tag, scale)
    return 0


@contextmanager
def canned_engine() -> Iterator[Any]:
    """A client of bench/canned_engine.py: what (B)'s client threads do against a server that costs nothing."""
    port = free_port()
    with process([sys.executable, str(ROOT / "bench" / "canned_engine.py"), str(port)]):
        wait_http(f"http://127.0.0.1:{port}/")
        yield client(f"http://127.0.0.1:{port}")


@contextmanager
def _nothing() -> Iterator[None]:
    yield None


def run_all(ours: Any, single: Any, moto: Any, store: redis.Redis, tag: str, scale: float) -> None:
    """Every workload; `ours` is the engine with ENGINE_PROCESSES processes, `single` with one."""
    repeats = max(3, int(10 * scale))
    print(f"stepline engine: ENGINE_PROCESSES={ENGINE_PROCESSES} (one per core) unless a row says otherwise")
    print(f"{'workload':<60} {'stepline engine':>18} {'moto server':>18} {'ratio':>8}")
    row(
        "(A) 200 Pass states, one execution",
        bench_transitions(ours, tag, repeats),
        with_moto(lambda c: bench_transitions(c, tag, repeats), moto),  # best of as many runs as ours
        "trans/s",
    )
    count = max(50, int(200 * scale))
    rounds = 5
    for engine, label, processes in (
        (ours, "", CLIENT_PROCESSES),
        (single, ", ENGINE_PROCESSES=1", CLIENT_PROCESSES),
        (ours, "", 1),
    ):
        where = f"{processes} client processes" if processes > 1 else "1 client process"
        row(
            f"(B) {count} executions x 5 states, 8 threads in {where}{label}",
            *bench_executions_in_turn(engine, moto, f"{tag}{label[-1:]}", count, rounds, processes),
            "exec/s",
        )
    print(f"    (B) rows: the best of {rounds} rounds, taken in turns with moto")
    with canned_engine() as canned:
        for processes in (CLIENT_PROCESSES, 1):
            best = max(bench_executions(canned, f"{tag}-c{n}", count, processes) for n in range(rounds))
            where = f"{processes} client processes" if processes > 1 else "1 client process"
            row(f"    (B) in {where} against canned replies (the ceiling)", best, None, "exec/s")
    p50, p95 = bench_dispatch(ours, tag, max(20, int(100 * scale)))
    row("(C) dispatch to waiting poller, p50", p50 * 1000, None, "ms", higher_is_better=False)
    row("(C) dispatch to waiting poller, p95", p95 * 1000, None, "ms", higher_is_better=False)
    row(
        "(D) Parallel of 8 activity branches, end to end",
        bench_parallel(ours, tag, repeats) * 1000,
        None,
        "ms",
        False,
    )
    row(
        "(D) Map over 100 Pass items, end to end",
        bench_map(ours, tag, repeats) * 1000,
        with_moto(lambda c: bench_map(c, tag, 2) * 1000, moto),
        "ms",
        False,
    )
    row(
        "(E) GetExecutionHistory, 400 events",
        bench_history(ours, tag, repeats * 2) * 1000,
        with_moto(lambda c: bench_history(c, tag, 3) * 1000, moto),
        "ms",
        False,
    )
    raw = bench_history_raw(ours, tag, repeats * 2) * 1000  # moto wants signed requests; ours only
    row("(E) the same over raw HTTP (no botocore parsing)", raw, None, "ms", False)
    count = int(10_000 * scale)
    total, each = memory_per_execution(ours, store, tag, count)
    print(
        f"Redis used_memory for {count:,} finished 3-state executions: {total:,.1f} MiB ({each:,.0f} bytes each)"
    )


if __name__ == "__main__":
    sys.exit(main())
