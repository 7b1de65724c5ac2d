"""The processes a run needs, for end-to-end tests: engine, jobs and a real build worker; and a TCP gate.

A gated step (`Gate.command()` in its commands) asks the gate's server how to end: `fail` or `pass`,
and waits while the gate is closed. A trusted step shares the machine's network (PIPELINES.md,
"The sandbox"), so bash's /dev/tcp reaches it.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

from service.app import create_app
from service.run_index import RunIndex
from statemachines.blob_store import BlobSettings
from statemachines.step_logs import StepLogReader
from tests.harness.blob_servers import blob_env
from tests.harness.processes import python_module, start_engine
from tests.service.dashboard_seed import with_users


class Gate:
    """A TCP server a gated step asks: `fail` (once `before_failing()` returns) until `passing` is set."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.before_failing: Callable[[], Any] = lambda: None
        self.passing = False
        self.opened = threading.Event()  # cleared: the step waits for its answer (it holds its group)
        self.opened.set()
        self.asked = 0
        threading.Thread(target=self._serve, daemon=True).start()

    def command(self) -> str:
        # bash's /dev/tcp: a trusted step shares the machine's network (PIPELINES.md, "The sandbox")
        return f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{self.port}; read -r v <&3; echo gate: $$v; test $$v = pass'"

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self.server.accept()
            except OSError:
                return
            self.asked += 1
            threading.Thread(target=self._answer, args=(connection,), daemon=True).start()

    def _answer(self, connection: socket.socket) -> None:
        with connection:
            self.opened.wait(120)
            if not self.passing:
                self.before_failing()
            connection.sendall(b"pass\n" if self.passing else b"fail\n")


def jobs_settings(redis_url: str, engine: str, fake_github: Any) -> dict[str, str]:
    """The jobs process of an end-to-end test: the test Redis and engine, the fake GitHub, a sweep each second."""
    return {
        "REDIS_URL": redis_url, "SFN_ENDPOINT_URL": engine, "GITHUB_TOKEN": "test-token",
        "GITHUB_API_URL": fake_github.url, "GITHUB_WEBHOOK_SECRET": "unused-here",
        "STEPLINE_PUBLIC_URL": "http://stepline.test", "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true",
        "STEPLINE_RECONCILE_INTERVAL_SECONDS": "1", "STEPLINE_APPROVAL_POLLER": "false", "LOG_LEVEL": "INFO",
    }  # fmt: skip


def start_stack(
    service_config,
    redis_url,
    redis_client,
    fake_github,
    processes,
    tmp_path,
    blob: BlobSettings | None = None,
    worker_settings: dict[str, str] | None = None,
) -> Stack:
    """Engine, jobs process and one build worker over the test Redis; the web test client and helpers.

    Build outputs go to `blob` (default: a directory of the test's own); `worker_settings` override the worker's.
    """
    blob = blob or BlobSettings(directory=tmp_path / "blobs")
    engine = start_engine(processes, redis_url, ENGINE_POLL_SECONDS="5", LOG_LEVEL="INFO")
    jobs_env = jobs_settings(redis_url, engine, fake_github) | blob_env(blob)
    worker_env = {
        "REDIS_URL": redis_url, "SFN_ENDPOINT_URL": engine, "WORKER_DIR": str(tmp_path / "worker"),
        "HEARTBEAT_SECONDS": "1", "WORKER_POLL_READ_TIMEOUT_SECONDS": "15", "WORKER_SLOTS": "4",
        "WORKER_POOLS": "build,untrusted-build", "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true", "LOG_LEVEL": "INFO",
    }  # fmt: skip
    worker_env |= blob_env(blob) | (worker_settings or {})
    jobs = processes("jobs", python_module("service.jobs"), jobs_env)
    worker = processes("worker", python_module("workers"), worker_env)
    config = with_users(
        dataclasses.replace(service_config, sfn_endpoint_url=engine, allow_local_repositories=True, blob=blob)
    )
    fake_github.add_repo("octo/app")
    return Stack(
        create_app(config).test_client(), RunIndex(redis_client), StepLogReader(redis_client), jobs, worker
    )


@dataclasses.dataclass
class Stack:
    client: Any
    index: RunIndex
    logs: StepLogReader
    jobs: Any
    worker: Any

    def wait(self, condition: Callable[[], Any], timeout: float = 90.0) -> Any:
        deadline = time.monotonic() + timeout
        while not (value := condition()):
            self.jobs.check_alive()
            self.worker.check_alive()
            if time.monotonic() > deadline:
                logs = "\n".join(f"--- {p.name}\n{p.log()[-4000:]}" for p in (self.jobs, self.worker))
                raise TimeoutError(f"condition not met:\n{logs}")
            time.sleep(0.2)
        return value

    def ended(self, run_id: str) -> dict[str, Any]:
        return self.wait(lambda: _ended(self.index.get(run_id)))

    def steps(self, run_id: str) -> dict[str, dict[str, Any]]:
        """step -> the meta of its latest log in the run (what the run page's steps table shows)."""
        latest: dict[str, dict[str, Any]] = {}
        for meta in self.logs.list_logs(run_id):
            if meta["attempt"] >= latest.get(meta["step"], {}).get("attempt", 0):
                latest[meta["step"]] = meta
        return latest

    def attempts(self, run_id: str) -> dict[str, int]:
        return {step: meta["attempt"] for step, meta in self.steps(run_id).items()}

    def started_by_worker(self, run_id: str) -> set[str]:
        """Steps the worker checked out and ran in the run (its log line per attempt)."""
        lines = [line for line in self.worker.log().splitlines() if f"{run_id}: step " in line]
        return {line.split(": step ", 1)[1].split(" attempt ", 1)[0] for line in lines if " attempt " in line}


def _ended(run: dict[str, Any] | None) -> dict[str, Any] | None:
    return run if run and run["status"] not in ("QUEUED", "RUNNING") else None
