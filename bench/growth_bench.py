"""How Stepline's cost grows with its work: each cost at three sizes and the ratio between sizes.

    .venv/bin/python bench/growth_bench.py [--quick] [--only runs,memory,executions,slots]

- runs in the index (1,000 / 10,000 / 100,000; --quick 300 / 3,000 / 30,000): server time of the runs
  page, each filter and combinations, the run page, the badge and /metrics, through the Flask app in
  this process (a private redis-server). Peer: one Redis PING round trip, measured in the same run.
- Redis memory per finished run at each size, and per finished run with its log, statuses and audit.
- running executions (10 / 100 / 1,000) and worker slots (1 / 8 / 64): bench/growth_engine.py.

A cost that is flat has ratios near 1.0; one that grows like log(n) has 1.33 then 1.25 (log10 of
1k/10k/100k); linear growth shows 10. Prints, never asserts.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.app import create_app
from service.config import ServiceConfig
from service.run_index import RunIndex
from service.run_index_backfill import backfill
from service.status_contexts import StatusUpdate
from service.status_ledger import StatusLedger
from statemachines.step_logs import StepLogWriter
from tests.harness.redis_server import RedisServer

STATUSES = ("SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "FAILED", "RUNNING", "ABORTED")
REPOS, BRANCHES = 4, 10
PAGES = (
    ("runs page (first 25)", "/"),
    ("runs page, page 20", "/?page=20"),
    ("filter repository", "/?repository=octo/repo-1"),
    ("filter branch (any repository)", "/?branch=branch-7"),
    ("filter status", "/?status=FAILED"),
    ("filter PR (any repository)", "/?pr=17"),
    ("repository + branch", "/?repository=octo/repo-1&branch=branch-3"),
    ("repository + status", "/?repository=octo/repo-1&status=FAILED"),
    ("branch + status", "/?branch=branch-7&status=SUCCEEDED"),
    ("repository + branch + status", "/?repository=octo/repo-1&branch=branch-3&status=SUCCEEDED"),
    ("PR + status", "/?pr=17&status=SUCCEEDED"),
    ("PR + branch", "/?pr=17&branch=feature-17"),
    ("run page", "/runs/{oldest}"),
    ("badge (repository + branch)", "/badge/octo/repo-1.svg?branch=branch-3"),
    ("/metrics", "/metrics"),
)


def run_fields(number: int, start: float) -> dict[str, Any]:
    """Run `number` of a synthetic history: 4 repositories, 10 branches, a fifth of the runs PRs (of 50)."""
    rng = random.Random(number)
    pr = rng.randrange(50) if rng.random() < 0.2 else None
    branch = f"feature-{pr}" if pr is not None else f"branch-{rng.randrange(BRANCHES)}"
    return {
        "run_id": f"run-{number:07}",
        "repository": f"octo/repo-{rng.randrange(REPOS)}",
        "event": "pull_request" if pr is not None else "push",
        "ref": f"refs/heads/{branch}",
        "branch": branch,
        "pull_request": pr,
        "sha": f"{number:040x}",
        "message": f"Change number {number} <with> some & text",
        "author": f"author-{number % 30}",
        "steps": ["build", "test"],
        "status": rng.choice(STATUSES),
        "created_at": start + number,
        "started_at": start + number + 1,
        "finished_at": start + number + 60,
    }


def seed(index: RunIndex, first: int, last: int) -> None:
    pipe = index.redis.pipeline(transaction=False)
    for number in range(first, last):
        index.create(run_fields(number, 1_700_000_000.0), pipeline=pipe)
        if number % 1000 == 999:
            pipe.execute()
    pipe.execute()


def best_ms_each(actions: list[Callable[[], Any]], repeat: int) -> list[float]:
    """The best of `repeat` timings of each action, taken in turns: a neighbour's load on this shared
    machine then weighs on every size alike (and the best, not the median, is what the code costs)."""
    best = [float("inf")] * len(actions)
    for action in actions:
        action()  # warm: templates compiled, connections open
    for _ in range(repeat):
        for number, action in enumerate(actions):
            started = time.perf_counter()
            action()
            best[number] = min(best[number], (time.perf_counter() - started) * 1000)
    return best


def get_ok(client: Any, url: str) -> Callable[[], Any]:
    def get() -> Any:
        response = client.get(url)
        assert response.status_code == 200, (url, response.status_code)
        return response

    return get


def used_memory(client: Any) -> int:
    return int(client.info("memory")["used_memory"])


def print_table(title: str, sizes: list[int], rows: dict[str, list[float]], unit: str) -> None:
    print(f"\n{title}")
    header = "".join(f"{size:>12,}" for size in sizes)
    ratios = "".join(f"{f'x{b // a}':>9}" for a, b in itertools.pairwise(sizes))
    print(f"  {'':<36}{header}   ratios{ratios}")
    for name, values in rows.items():
        cells = "".join(f"{value:>9.2f} {unit}" for value in values)
        growth = "".join(f"{b / a if a else 0:>9.2f}" for a, b in itertools.pairwise(values))
        print(f"  {name:<36}{cells}         {growth}")


def bench_runs(work: Path, sizes: list[int], repeat: int) -> None:
    """One redis-server and app per size, seeded alike; each page is timed at every size in turns."""
    servers = [RedisServer(work / f"redis-runs-{size}").start() for size in sizes]
    try:
        apps = [create_app(ServiceConfig(redis_url=server.url, webhook_secret="bench")) for server in servers]
        memory: dict[str, list[float]] = {"bytes per finished run (no log)": []}
        for size, app in zip(sizes, apps, strict=True):
            redis_client = app.extensions["redis"]
            began, baseline = time.perf_counter(), used_memory(redis_client)
            index = RunIndex(redis_client)
            seed(index, 0, size)
            while not backfill(index)[1]:  # a fresh index: marks the v2 sets complete
                pass
            print(f"seeded {size:,} runs ({time.perf_counter() - began:.1f} s)", flush=True)
            memory["bytes per finished run (no log)"].append((used_memory(redis_client) - baseline) / size)
        clients = [app.test_client() for app in apps]
        rows: dict[str, list[float]] = {}
        for name, url in PAGES:
            pages = [get_ok(client, url.format(oldest="run-0000000")) for client in clients]
            rows[name] = best_ms_each(pages, repeat)
        pings = [app.extensions["redis"].ping for app in apps]
        rows["Redis PING round trip (the floor)"] = best_ms_each(pings, repeat * 5)
        print_table(
            f"runs in the index: server time, best of {repeat} (Flask test client)", sizes, rows, "ms"
        )
        print_table("Redis memory per run record", sizes, memory, "B ")
    finally:
        for server in servers:
            server.stop()


def bench_run_memory(work: Path, runs: int, lines: int) -> None:
    """A finished run as the stack leaves it: record, audit, two status contexts, a one-step log."""
    server = RedisServer(work / "redis-memory").start()
    try:
        client = server.client()
        index, ledger = RunIndex(client), StatusLedger(client)
        before = used_memory(client)
        for number in range(runs):
            run = index.create(run_fields(number, time.time()))
            index.add_audit(run["run_id"], {"action": "started", "by": "webhook"})
            for context, order in (("stepline/ci", 1), ("stepline/ci/build", 2)):
                update = StatusUpdate(
                    run["repository"],
                    run["sha"],
                    context,
                    "success",
                    "passed in 3s",
                    "",
                    run["run_id"],
                    (order,),
                )
                ledger.claim(update)
                ledger.mark_posted(update)
            writer = StepLogWriter.start(client, run["run_id"], "build", worker="bench")
            for line in range(lines):
                writer.write_line(f"[{line:05}] compiling module_{line % 97}.py ... ok ({line % 13} ms)")
            writer.finish("succeeded", 0)
        per_run = (used_memory(client) - before) / runs
        log_bytes = sum(
            len(f"[{i:05}] compiling module_{i % 97}.py ... ok ({i % 13} ms)") + 1 for i in range(lines)
        )
        print(
            f"\nRedis memory per finished run, everything included ({runs} runs, one step of {lines} lines)"
        )
        print(
            f"  {per_run:10,.0f} B per run   (its log's text alone: {log_bytes:,} B; the rest is keys and records)"
        )
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes (a minute instead of several)")
    parser.add_argument("--only", default="runs,memory,executions,slots")
    args = parser.parse_args()
    parts = set(args.only.split(","))
    with tempfile.TemporaryDirectory(prefix="growth-bench-") as directory:
        work = Path(directory)
        if "runs" in parts:
            bench_runs(
                work,
                [300, 3_000, 30_000] if args.quick else [1_000, 10_000, 100_000],
                10 if args.quick else 20,
            )
        if "memory" in parts:
            bench_run_memory(work, 200 if args.quick else 1000, 200)
        if parts & {"executions", "slots"}:
            from bench.growth_engine import bench_executions, bench_slots

            if "executions" in parts:
                bench_executions(work, [10, 50, 200] if args.quick else [10, 100, 1000])
            if "slots" in parts:
                bench_slots(work, [1, 8, 32] if args.quick else [1, 8, 64])
    return 0


if __name__ == "__main__":
    sys.exit(main())
