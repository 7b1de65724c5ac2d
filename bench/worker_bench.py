"""Benchmark of the build workers: checkout cold vs warm mirror (beside a plain `git clone`), sandbox cost, pickup.

    .venv/bin/python bench/worker_bench.py [--files 500] [--commits 150] [--runs 10]

Checkout: a real repository on file://; a plain `git clone` per task (what a naive runner does) is
the peer. Pickup: redis-server, `python -m statemachines.engine` and `python -m workers` as
processes; the time from StartExecution to the worker's ActivityStarted, and to the execution's end.
Sandbox: one command (`bash -c true`) started plainly beside the same in the step sandbox (bubblewrap,
own user, namespaces), and handing a checked-out tree to the step user. Prints numbers, never asserts.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import boto3
from botocore.config import Config

from statemachines.contract import Source
from tests.harness.git_repos import GitRepo, git
from tests.harness.ports import free_port
from tests.harness.processes import ManagedProcess, python_module
from tests.harness.redis_server import RedisServer
from workers.checkout import Mirrors
from workers.git_access import GitAccess
from workers.process_group import ProcessGroup
from workers.sandbox import BUBBLEWRAP, Sandbox
from workers.step_runner import SHELL

ROLE = "arn:aws:iam::123456789012:role/bench"


def timed(action: Callable[[], Any]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def make_repository(root: Path, files: int, commits: int) -> tuple[GitRepo, list[str]]:
    """A tree of `files` small files and a history of `commits` commits of incompressible content."""
    repo = GitRepo(root, "bench")
    shas = [repo.commit({f"src/d{i % 50}/f{i}.txt": f"file {i}\n" for i in range(files)}, "tree")]
    for number in range(commits):
        blobs = {f"data/blob{k}.bin": os.urandom(8192) for k in range(20)}
        shas.append(repo.commit(blobs, f"change {number}"))
    repo.push("main")
    return repo, shas


def bench_checkout(work: Path, files: int, commits: int) -> None:
    repo, shas = make_repository(work / "git", files, commits)
    access = GitAccess(work / "git-home", allow_file_urls=True)
    counter = iter(range(10_000))
    mirrors = Mirrors(work / "mirrors", access)

    def ours(sha: str, cold: bool = False) -> float:
        nonlocal mirrors
        if cold:  # a worker that never saw this repository
            mirrors = Mirrors(work / f"mirrors{next(counter)}", access)
        source = Source("octo/bench", repo.url, sha, "refs/heads/main")
        dest = work / f"tree{next(counter)}"
        seconds = timed(lambda: mirrors.checkout(source, dest))
        shutil.rmtree(dest)
        return seconds

    def peer(sha: str) -> float:
        dest = work / f"clone{next(counter)}"

        def clone() -> None:
            git("clone", "--quiet", "--no-checkout", repo.url, str(dest))
            git("checkout", "--quiet", "--detach", sha, cwd=dest)

        seconds = timed(clone)
        shutil.rmtree(dest)
        return seconds

    cold = statistics.median(ours(shas[-1], cold=True) for _ in range(5))
    warm = statistics.median(ours(shas[-1]) for _ in range(5))
    clone = statistics.median(peer(shas[-1]) for _ in range(5))
    fetches = []
    for number in range(5):
        new_sha = repo.commit({"src/new.txt": f"new {number}\n"}, "new")
        repo.push("main")
        fetches.append(ours(new_sha))
    incremental = statistics.median(fetches)
    history_mib = commits * 20 * 8192 / 2**20
    print(f"checkout: {files} files, {commits} commits (~{history_mib:.0f} MiB of history); median of 5")
    print(f"  plain git clone per task (peer)   {clone * 1000:8.1f} ms")
    print(f"  ours, cold mirror (first task)    {cold * 1000:8.1f} ms   ratio to peer {cold / clone:5.2f}")
    print(f"  ours, warm mirror (commit cached) {warm * 1000:8.1f} ms   ratio to peer {warm / clone:5.2f}")
    print(
        f"  ours, warm mirror + fetch 1 new   {incremental * 1000:8.1f} ms   ratio to peer {incremental / clone:5.2f}"
    )


def bench_sandbox(work: Path, files: int, runs: int = 50) -> None:
    root = work / "sandbox-task"
    source, home, tmp = root / "src", root / "home", root / "tmp"
    for directory in (source, home, tmp):
        directory.mkdir(parents=True)
    for i in range(files):
        (source / f"f{i}.txt").write_text("x")
    (root / "event.json").write_text("{}")
    sandbox = Sandbox(BUBBLEWRAP, 64000, 64000)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home)}
    args = [*SHELL, "true"]

    def start(line: list[str]) -> float:
        def one() -> None:
            group = ProcessGroup(line, source, env)
            assert group.process.stdout is not None
            group.process.stdout.read()
            group.process.stdout.close()
            assert group.wait(None, None)[1] == 0

        return timed(one)

    wrapped, _ = sandbox.wrap(args, source, home, tmp, root / "event.json", None, network=False, env=env)
    shared, _ = sandbox.wrap(args, source, home, tmp, root / "event.json", None, network=True, env=env)
    plain = [start(args) for _ in range(runs)]
    boxed = [start(wrapped) for _ in range(runs)]
    boxed_net = [start(shared) for _ in range(runs)]
    prepare = statistics.median(timed(lambda: sandbox.prepare([source, home, tmp], None)) for _ in range(5))
    print(
        f"sandbox: one command `bash -c true`, median of {runs} (as {'root' if os.geteuid() == 0 else 'user'})"
    )
    plain_ms = statistics.median(plain) * 1000
    for label, seconds in (
        ("plain (no sandbox, the floor)", plain),
        ("sandboxed, no network (untrusted)", boxed),
    ):
        ms = statistics.median(seconds) * 1000
        print(f"  {label:<34} {ms:7.1f} ms   added {ms - plain_ms:6.1f} ms")
    ms = statistics.median(boxed_net) * 1000
    print(f"  {'sandboxed, host network (trusted)':<34} {ms:7.1f} ms   added {ms - plain_ms:6.1f} ms")
    print(f"  handing a {files}-file tree to the step user (once per step) {prepare * 1000:6.1f} ms")


def bench_pickup(work: Path, runs: int) -> None:
    redis_server = RedisServer(work / "redis").start()
    logs = work / "logs"
    logs.mkdir()
    port = free_port()
    engine_env = {"ENGINE_PORT": str(port), "REDIS_URL": redis_server.url, "LOG_LEVEL": "WARNING"}
    engine = ManagedProcess("engine", python_module("statemachines.engine"), engine_env, logs).start()
    endpoint = f"http://127.0.0.1:{port}"
    worker: ManagedProcess | None = None
    try:
        engine.wait_http(endpoint + "/")
        repo = GitRepo(work / "pickup-git", "app")
        sha = repo.commit({"a": "1"})
        repo.push("main")
        worker_env = {
            "REDIS_URL": redis_server.url,
            "SFN_ENDPOINT_URL": endpoint,
            "WORKER_DIR": str(work / "worker"),
            "WORKER_SLOTS": "8",
            "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true",
            "LOG_LEVEL": "WARNING",
        }
        worker = ManagedProcess("worker", python_module("workers"), worker_env, logs).start()
        sfn = boto3.client(
            "stepfunctions",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
            config=Config(inject_host_prefix=False),
        )
        machine = deploy(sfn)
        time.sleep(2)  # let the worker open its polls
        pickups, totals = [], []
        for number in range(runs):
            pickup, total = one_run(sfn, machine, repo.url, sha, number)
            pickups.append(pickup)
            totals.append(total)
        print(f"task pickup over {runs} runs (idle worker, 8 slots; step `true` on a warm mirror)")
        print(
            f"  StartExecution -> ActivityStarted  median {statistics.median(pickups) * 1000:7.1f} ms   max {max(pickups) * 1000:7.1f} ms"
        )
        print(
            f"  StartExecution -> SUCCEEDED        median {statistics.median(totals) * 1000:7.1f} ms   max {max(totals) * 1000:7.1f} ms"
        )
        bench_parallel(sfn, repo.url, sha)
    finally:
        if worker is not None:
            worker.stop(timeout=10)
        engine.stop(timeout=10)
        redis_server.stop()


def bench_parallel(sfn: Any, url: str, sha: str, branches: int = 8, rounds: int = 3) -> None:
    """A Parallel of `branches` x `sleep 1` on one worker of 8 slots: wall time beside its floor (1 s)."""
    activity = sfn.create_activity(name="stepline-build")["activityArn"]
    step = {"Type": "Task", "Resource": activity, "HeartbeatSeconds": 30, "TimeoutSeconds": 300, "End": True}

    def branch(i: int) -> dict[str, Any]:
        params = {"step": f"sleep-{i}", "commands": ["sleep 1"], "run.$": "$$.Execution.Input"}
        return {"StartAt": f"S{i}", "States": {f"S{i}": step | {"Parameters": params}}}

    parallel = {"Type": "Parallel", "End": True, "Branches": [branch(i) for i in range(branches)]}
    definition = json.dumps({"StartAt": "All", "States": {"All": parallel}})
    machine = sfn.create_state_machine(name="bench-parallel", definition=definition, roleArn=ROLE)
    walls = []
    for number in range(rounds):
        run = {"run_id": f"parallel-{number}", "repository": "octo/app", "clone_url": url, "sha": sha}
        started = time.monotonic()
        arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input=json.dumps(run))
        while sfn.describe_execution(executionArn=arn["executionArn"])["status"] == "RUNNING":
            time.sleep(0.01)
        walls.append(time.monotonic() - started)
    print(f"a Parallel of {branches} x `sleep 1` on one worker with 8 slots, {rounds} rounds (warm mirror)")
    print(f"  wall time  median {statistics.median(walls):5.2f} s   best {min(walls):5.2f} s")
    print(f"  floor (one sleep) 1.00 s; one at a time would be {branches:.2f} s")


def deploy(sfn: Any) -> str:
    activity = sfn.create_activity(name="stepline-build")["activityArn"]
    step = {
        "Type": "Task",
        "Resource": activity,
        "Parameters": {"step": "bench", "commands": ["true"], "run.$": "$$.Execution.Input"},
        "HeartbeatSeconds": 30,
        "TimeoutSeconds": 300,
        "End": True,
    }
    definition = json.dumps({"StartAt": "Step", "States": {"Step": step}})
    return str(sfn.create_state_machine(name="bench", definition=definition, roleArn=ROLE)["stateMachineArn"])


def one_run(sfn: Any, machine: str, url: str, sha: str, number: int) -> tuple[float, float]:
    run = {
        "run_id": f"bench-{number}",
        "repository": "octo/app",
        "clone_url": url,
        "sha": sha,
        "trusted": True,
    }
    started = time.time()
    arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps(run))["executionArn"]
    while sfn.describe_execution(executionArn=arn)["status"] == "RUNNING":
        time.sleep(0.005)
    total = time.time() - started
    events = sfn.get_execution_history(executionArn=arn)["events"]
    began = next(e["timestamp"] for e in events if e["type"] == "ExecutionStarted")
    picked = next(e["timestamp"] for e in events if e["type"] == "ActivityStarted")
    return (picked - began).total_seconds(), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--commits", type=int, default=150)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="worker-bench-") as directory:
        work = Path(directory)
        bench_checkout(work, args.files, args.commits)
        bench_sandbox(work, args.files)
        bench_pickup(work, args.runs)


if __name__ == "__main__":
    main()
