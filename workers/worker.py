"""The worker process: Step Functions clients, one poller per pool sharing the slots, signals and a clean shutdown."""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

import redis

from statemachines.contract import activity_name
from statemachines.sfn_client import make_sfn_client
from statemachines.worker_presence import REFRESH_SECONDS, forget_serving, record_serving
from workers.activity_task import Received, TaskHandler
from workers.checkout import Mirrors
from workers.config import WorkerConfig
from workers.git_access import GitAccess
from workers.poller import ActivityArns, Poller
from workers.process_group import SHUTDOWN
from workers.reporting import Reporter
from workers.slots import SlotPool

log = logging.getLogger(__name__)

REPORT_SECONDS = 40.0  # how long shutdown waits for cancelled tasks to report (Reporter retries ~30 s)


def make_worker_sfn_client(config: WorkerConfig, read_timeout: float, attempts: int, connections: int) -> Any:
    """A Step Functions client for the local engine (SFN_ENDPOINT_URL) or AWS, with the worker's keys."""
    return make_sfn_client(
        config.aws_region,
        config.sfn_endpoint_url,
        read_timeout=read_timeout,
        connect_timeout=5,
        attempts=attempts,
        connections=connections,
        access_key_id=config.aws_access_key_id,
        secret_access_key=config.aws_secret_access_key,
        user_agent="stepline-worker",
    )


class Worker:
    """Polls every configured pool, sharing `slots` build slots, until stop(); then finishes or fails its tasks."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        # one open poll per pool; a long poll must outlast the service's 60 s answer
        self.poll_sfn = make_worker_sfn_client(
            config, config.poll_read_timeout_seconds, 1, len(config.pools) + 2
        )
        self.sfn = make_worker_sfn_client(config, 20, 3, 2 * (config.slots + len(config.pools)) + 4)
        self.redis = redis.Redis.from_url(config.redis_url, socket_timeout=10, health_check_interval=30)
        git = GitAccess(
            config.work_dir / "git-home",
            config.git_token,
            config.git_token_hosts,
            config.allow_file_urls,
            config.step_path,
        )
        mirrors = Mirrors(config.work_dir / "mirrors", git, config.checkout_timeout_seconds)
        self.handler = TaskHandler(config, self.sfn, self.redis, mirrors, Reporter(self.sfn, self.redis))
        self.stopping = threading.Event()
        self.slots = SlotPool(config.slots)
        self._accepting = 0
        self._lock = threading.Lock()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        swept = self.handler.workspace.sweep()
        if swept:
            log.info("removed %s task directories left by stopped workers", swept)
        activities = ActivityArns(self.sfn, self.config.activity_prefix)
        for pool in self.config.pools:
            poller = Poller(
                pool,
                self.poll_sfn,
                activities,
                self.slots,
                self._accept,
                self.stopping,
                self.config.worker_name,
            )
            thread = threading.Thread(target=poller.run, name=f"poll-{pool}", daemon=True)
            self.threads.append(thread)
            thread.start()
        presence = threading.Thread(target=self._announce, name="presence", daemon=True)
        self.threads.append(presence)
        presence.start()
        log.info(
            "worker %s: %s slots on pools %s",
            self.config.worker_name,
            self.config.slots,
            ",".join(self.config.pools),
        )

    def _accept(self, received: Received) -> None:
        with self._lock:
            self._accepting += 1
        try:
            if self.stopping.is_set():
                self.handler.refuse(received)
            else:
                self.handler.handle(received)
        finally:
            with self._lock:
                self._accepting -= 1

    def busy(self) -> int:
        with self._lock:
            return self._accepting

    def _activities(self) -> list[str]:
        return [activity_name(pool, self.config.activity_prefix) for pool in self.config.pools]

    def _announce(self) -> None:
        """Tell pages which activities are served (statemachines/worker_presence.py) until stopping."""
        while True:
            if self.stopping.is_set():
                return
            try:
                record_serving(self.redis, self.config.worker_name, self._activities())
            except redis.RedisError as exc:  # pages may say "no worker" meanwhile; steps are not affected
                log.debug("worker %s: presence not recorded: %s", self.config.worker_name, exc)
            self.stopping.wait(REFRESH_SECONDS)

    def stop(self) -> None:
        """Stop polling; let running steps finish for the grace period, then kill and fail them."""
        self.stopping.set()
        try:
            forget_serving(self.redis, self.config.worker_name, self._activities())
        except redis.RedisError:
            pass  # the record goes stale within a minute
        log.info("worker %s: stopping with %s tasks running", self.config.worker_name, self.busy())
        self._wait_idle(self.config.shutdown_grace_seconds)
        self.handler.cancel_all(SHUTDOWN)
        if not self._wait_idle(REPORT_SECONDS):
            log.error("worker %s: tasks still running at exit", self.config.worker_name)

    def _wait_idle(self, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while self.busy() and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.busy()


def run(config: WorkerConfig) -> int:
    """Run until SIGTERM or SIGINT, then shut down cleanly; the exit status."""
    stop = threading.Event()

    def on_signal(number: int, _frame: Any) -> None:
        log.info("worker %s: received %s", config.worker_name, signal.Signals(number).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker = Worker(config)
    worker.start()
    while not stop.wait(1):
        pass
    worker.stop()
    return 0
