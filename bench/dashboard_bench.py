"""The dashboard's runs page with 10,000 runs in the index: server time of the first page and of filtered pages.

    .venv/bin/python bench/dashboard_bench.py [--runs N] [--repeat R]

Seeds N runs through RunIndex into a private redis-server, then times requests through the Flask app in
this process (server time: routing, Redis reads and rendering, no network). The peer is `GET /healthz`
(one Redis PING) on the same app. Target (issue 8): the first page under 200 ms. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from service.app import create_app
from service.config import ServiceConfig
from service.run_index import RunIndex
from tests.harness.redis_server import RedisServer

STATUSES = ("SUCCEEDED", "SUCCEEDED", "SUCCEEDED", "FAILED", "RUNNING", "ABORTED")


def seed(index: RunIndex, count: int) -> None:
    start = time.time() - count
    pipe = index.redis.pipeline(transaction=False)
    for number in range(count):
        run_id = uuid.uuid4().hex
        run = {
            "run_id": run_id,
            "repository": f"octo/repo-{number % 20}",
            "event": "push",
            "ref": f"refs/heads/branch-{number % 50}",
            "branch": f"branch-{number % 50}",
            "sha": f"{number:040x}",
            "message": f"Change number {number} <with> some & text",
            "author": f"author-{number % 30}",
            "status": STATUSES[number % len(STATUSES)],
            "created_at": start + number,
            "started_at": start + number + 1,
            "finished_at": start + number + 60,
        }
        index.create(run, pipeline=pipe)
        if number % 500 == 499:
            pipe.execute()
    pipe.execute()


def timed(client, url: str, repeat: int) -> list[float]:
    client.get(url)  # warm: template compilation and connection pool
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return times


def report(name: str, times: list[float], peer: float) -> None:
    p50 = statistics.median(times)
    p99 = sorted(times)[max(0, int(len(times) * 0.99) - 1)]
    print(f"{name:<44} p50 {p50:7.1f} ms   p99 {p99:7.1f} ms   ({p50 / peer:5.1f}x healthz)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=50)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory)).start()
        try:
            config = ServiceConfig(redis_url=server.url, webhook_secret="bench")
            app = create_app(config)
            seeding = time.perf_counter()
            seed(RunIndex(app.extensions["redis"]), args.runs)
            print(f"seeded {args.runs} runs in {time.perf_counter() - seeding:.1f} s")
            client = app.test_client()
            peer = statistics.median(timed(client, "/healthz", args.repeat))
            print(f"{'GET /healthz (peer: one Redis PING)':<44} p50 {peer:7.1f} ms")
            for name, url in (
                ("GET / (first page, 25 runs)", "/"),
                ("GET /?partial=rows (the live refresh)", "/?partial=rows"),
                ("GET /?page=200 (deep page)", "/?page=200"),
                ("GET /?repository=...&branch=...", "/?repository=octo/repo-3&branch=branch-3"),
                ("GET /?repository=...&status=FAILED (scan)", "/?repository=octo/repo-3&status=FAILED"),
                ("GET /?branch=... (no repository: window)", "/?branch=branch-7"),
                ("GET /api/runs", "/api/runs"),
            ):
                report(name, timed(client, url, args.repeat), peer)
            print("target: the first page under 200 ms of server time")
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
