"""Webhook ingest under real gunicorn, and push → first pending status on (a fake) GitHub.

    .venv/bin/python bench/webhook_bench.py [--deliveries N] [--clients C] [--pushes P] [--rounds R]

1. Ingest: signed push deliveries (each distinct: verify, parse, de-duplicate, record the run, enqueue
   the job) against `python -m service` (gunicorn) over a private redis-server; deliveries/s and
   latency percentiles. The peer is `GET /healthz` on the same server (one Redis PING): the floor of
   this gunicorn + Redis setup, so the ratio shows what the webhook's own work costs. Ours and the peer
   alternate over --rounds rounds with fresh connections, and the median round is printed: a gthread
   worker keeps the keep-alive connections it accepted, so a single round may load one worker only.
2. Push → first pending status: the web, jobs (`python -m service.jobs`) and engine processes with the
   fake GitHub; the time from sending the webhook to the first `pending` status GitHub receives.
Targets (issue 5): ≥ 1,000 deliveries/s, p99 ≤ 50 ms; push → pending p50 ≤ 100 ms. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import http.client
import importlib.util
import json
import multiprocessing
import os
import secrets
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.harness.fake_github import FakeGitHub
from tests.harness.ports import free_port
from tests.harness.processes import ManagedProcess, python_module
from tests.harness.redis_server import RedisServer

SECRET = "bench-secret"
PUSH = (
    Path(__file__).resolve().parents[1]
    / "tests"
    / "fixtures"
    / "github"
    / "push"
    / "branch-push.drone-go-scm.json"
)


def signed(body: bytes, delivery: str) -> dict[str, str]:
    signature = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-GitHub-Event": "push", "X-GitHub-Delivery": delivery,
            "X-GitHub-Hook-ID": "1", "X-Hub-Signature-256": signature}  # fmt: skip


def client_loop(args: tuple[int, int, str]) -> list[float]:
    """One client process: `count` requests over one keep-alive connection; returns latencies in seconds."""
    port, count, kind = args
    body = PUSH.read_bytes()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        if kind == "webhook":
            connection.request("POST", "/webhooks/github", body=body, headers=signed(body, str(uuid.uuid4())))
        else:
            connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        if response.status >= 300 and response.status != 202:
            raise RuntimeError(f"{kind}: HTTP {response.status}")
        latencies.append(time.perf_counter() - started)
    return latencies


def load(port: int, kind: str, total: int, clients: int) -> tuple[float, list[float]]:
    with multiprocessing.Pool(clients) as pool:
        client_loop((port, 20, kind))  # warm-up: imports, connections, gunicorn workers
        started = time.perf_counter()
        results = pool.map(client_loop, [(port, total // clients, kind)] * clients)
        elapsed = time.perf_counter() - started
    latencies = sorted(x for r in results for x in r)
    return len(latencies) / elapsed, latencies


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(len(values) * p))] * 1000


def start(name: str, module: str, env: dict[str, str], logs: Path, url: str | None = None) -> ManagedProcess:
    process = ManagedProcess(name, python_module(module), env, logs).start()
    if url:
        process.wait_http(url)
    return process


def median_round(runs: list[tuple[float, list[float]]]) -> tuple[float, list[float], list[float]]:
    """The median round's rate, the latencies of every round (sorted) and each round's rate."""
    rates = [rate for rate, _ in runs]
    return statistics.median(rates), sorted(x for _, lat in runs for x in lat), rates


def bench_ingest(redis_url: str, logs: Path, total: int, clients: int, rounds: int) -> None:
    port = free_port()
    env = {"PORT": str(port), "REDIS_URL": redis_url, "GITHUB_WEBHOOK_SECRET": SECRET, "LOG_LEVEL": "WARNING",
           "WEB_CONCURRENCY": str(max(2, os.cpu_count() or 2)), "WEB_THREADS": "8"}  # fmt: skip
    web = start("web", "service", env, logs, f"http://127.0.0.1:{port}/healthz")
    try:
        print(
            f"ingest: {rounds} rounds of {total} signed push deliveries, {clients} client processes, {os.cpu_count()} CPUs shared with the clients"
        )
        runs: dict[str, list[tuple[float, list[float]]]] = {"webhook": [], "healthz": []}
        for _ in range(rounds):
            for kind, kind_runs in runs.items():
                kind_runs.append(load(port, kind, total, clients))
        rate, lat, rates = median_round(runs["webhook"])
        peer_rate, peer_lat, peer_rates = median_round(runs["healthz"])
        print(
            f"  ours  POST /webhooks/github : {rate:8.0f} deliveries/s  p50 {pct(lat, 0.5):6.1f} ms  p99 {pct(lat, 0.99):6.1f} ms  (target ≥ 1000/s, p99 ≤ 50 ms)  rounds {_rates(rates)}"
        )
        print(
            f"  peer  GET  /healthz         : {peer_rate:8.0f} requests/s    p50 {pct(peer_lat, 0.5):6.1f} ms  p99 {pct(peer_lat, 0.99):6.1f} ms  rounds {_rates(peer_rates)}"
        )
        print(f"  ratio ours/peer throughput  : {rate / peer_rate:.2f}")
    finally:
        web.stop(timeout=5)


def _rates(rates: list[float]) -> str:
    return " ".join(f"{rate:.0f}" for rate in rates)


def bench_push_to_pending(redis_url: str, logs: Path, pushes: int) -> None:
    if importlib.util.find_spec("service.reporter") is None:
        print("push → first pending status: n/a (service/reporter.py does not exist yet)")
        return
    github = FakeGitHub().start()
    github.add_repo("octo/app")
    web_port, engine_port = free_port(), free_port()
    env = {"REDIS_URL": redis_url, "GITHUB_WEBHOOK_SECRET": SECRET, "GITHUB_TOKEN": "t", "LOG_LEVEL": "WARNING",
           "GITHUB_API_URL": github.url, "SFN_ENDPOINT_URL": f"http://127.0.0.1:{engine_port}",
           "PORT": str(web_port), "ENGINE_PORT": str(engine_port), "WEB_CONCURRENCY": "1"}  # fmt: skip
    started = [start("engine", "statemachines.engine", env, logs, f"http://127.0.0.1:{engine_port}/"),
               start("web", "service", env, logs, f"http://127.0.0.1:{web_port}/healthz"),
               start("jobs", "service.jobs", env, logs)]  # fmt: skip
    try:
        samples = [one_push(github, web_port) for _ in range(pushes + 1)][1:]  # first one warms the processes
        samples = [s for s in samples if s is not None]
        if not samples:
            print(
                "push → first pending status: n/a (no pending status arrived; see the jobs log in "
                + str(logs)
                + ")"
            )
            return
        ms = sorted(s * 1000 for s in samples)
        print(f"push → first pending status on GitHub: p50 {statistics.median(ms):.0f} ms, max {ms[-1]:.0f} ms "
              f"over {len(ms)} pushes (target p50 ≤ 100 ms)")  # fmt: skip
    finally:
        for process in reversed(started):
            process.stop(timeout=5)
        github.stop()


def one_push(github: FakeGitHub, port: int) -> float | None:
    sha = secrets.token_hex(20)
    payload = json.loads(PUSH.read_bytes())
    payload["repository"] = {"full_name": "octo/app", "clone_url": "https://github.example/octo/app.git"}
    payload["head_commit"]["id"] = payload["after"] = sha
    payload["ref"] = f"refs/heads/bench-{sha[:8]}"
    body = json.dumps(payload).encode()
    started = time.perf_counter()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("POST", "/webhooks/github", body=body, headers=signed(body, str(uuid.uuid4())))
    connection.getresponse().read()
    while time.perf_counter() - started < 10:
        if any(s["state"] == "pending" for s in github.statuses("octo/app", sha)):
            return time.perf_counter() - started
        time.sleep(0.001)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deliveries", type=int, default=4000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--pushes", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stepline-bench-") as tmp:
        redis_server = RedisServer(Path(tmp) / "redis").start()
        logs = Path(tmp) / "logs"
        logs.mkdir()
        try:
            bench_ingest(redis_server.url, logs, args.deliveries, args.clients, args.rounds)
            redis_server.flush()
            bench_push_to_pending(redis_server.url, logs, args.pushes)
        finally:
            redis_server.stop()


if __name__ == "__main__":
    main()
