"""`stepline run` on a warm set-up: time from the command to its first step, beside the bare stack's start.

    .venv/bin/python bench/local_run_bench.py [--repeat R]

A repository with a one-step pipeline and an uncommitted change; one run first warms the cache (the
worker's mirror, the page cache, .pyc files). Then each of R runs of `.venv/bin/stepline run` is
timed from its start to the first line of its step's log (the worker has taken the task: the step
has started) and to its end. The physical limit, measured in the same run: starting a bare
redis-server until it answers PING and the engine (`python -m statemachines.engine`) until it
accepts connections, one after the other, as the local run must. Target (issue 19): start to first
step under 2 s. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from stepline.stack import LocalStack
from tests.harness.git_repos import GitRepo

STEPLINE = Path(sys.executable).with_name("stepline")
PIPELINE = {
    "StartAt": "First",
    "States": {
        "First": {
            "Type": "Task",
            "Resource": "${activity:build}",
            "Parameters": {"step": "first", "commands": ["cat change.txt"]},
            "End": True,
        }
    },
}


def time_run(work: Path, cache: Path) -> tuple[float, float]:
    """(seconds to the step's first log line, seconds to the end) of one `stepline run`."""
    began = time.monotonic()
    command = [str(STEPLINE), "run", str(work), "--cache-dir", str(cache)]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert run.stdout is not None
    first = None
    lines = []
    for line in run.stdout:
        lines.append(line)
        if first is None and line.startswith("first ") and " | " in line:
            first = time.monotonic() - began
    if run.wait() != 0 or first is None:
        raise SystemExit("the local run failed:\n" + "".join(lines))
    return first, time.monotonic() - began


def time_bare_stack(root: Path) -> tuple[float, float]:
    """(seconds to a redis-server answering PING, then seconds to the engine accepting connections)."""
    stack = LocalStack(root, os.environ.get("PATH", "/usr/bin:/bin"))
    try:
        began = time.monotonic()
        stack.start_redis()
        stack.wait_redis()
        redis_seconds = time.monotonic() - began
        began = time.monotonic()
        stack.start_engine()
        stack.wait_engine()
        return redis_seconds, time.monotonic() - began
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="local-run-bench-") as scratch:
        base = Path(scratch)
        repo = GitRepo(base, "app")
        repo.commit({".stepline/pipeline.asl.json": json.dumps(PIPELINE), "change.txt": "committed\n"})
        (repo.work / "change.txt").write_text("uncommitted\n")
        cache = base / "cache"
        time_run(repo.work, cache)  # warm: the mirror, the page cache, compiled modules
        firsts, ends, bare = [], [], []
        for index in range(args.repeat):
            (repo.work / "change.txt").write_text(f"uncommitted {index}\n")  # a new snapshot commit each time
            first, end = time_run(repo.work, cache)
            firsts.append(first)
            ends.append(end)
            stack_root = base / f"bare-{index}"
            stack_root.mkdir()
            bare.append(time_bare_stack(stack_root))
    redis_s = statistics.median(b[0] for b in bare)
    engine_s = statistics.median(b[1] for b in bare)
    print(f"stepline run, warm, {args.repeat} runs (median; min-max):")
    print(
        f"  start to first step    {statistics.median(firsts):6.2f} s  ({min(firsts):.2f}-{max(firsts):.2f})"
    )
    print(f"  start to end of run    {statistics.median(ends):6.2f} s  ({min(ends):.2f}-{max(ends):.2f})")
    print("bare stack, same machine, same run (median):")
    print(f"  redis-server to PING   {redis_s:6.2f} s")
    print(f"  engine to listening    {engine_s:6.2f} s")
    print(f"  both, one after other  {redis_s + engine_s:6.2f} s")
    ratio = statistics.median(firsts) / (redis_s + engine_s)
    print(f"first step / bare stack: {ratio:.1f}x   target: first step <= 2 s")


if __name__ == "__main__":
    main()
