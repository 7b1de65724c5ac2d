"""Entry point of the jobs process: validate settings, then run an rq worker on Stepline's queues.

`make run` stops Redis together with every process, so Redis may vanish before or during shutdown:
each part of this process (the worker, its scheduler process, the sweeper and approval threads) then
logs one line and the process exits 0, never a traceback.
"""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import redis
from rq import Queue, SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.exceptions import StopRequested
from rq.job import Job
from rq.scheduler import RQScheduler

from service.approvals import start_poller
from service.config import ServiceConfig
from service.job_context import job_context, use_config
from service.reconcile import start_sweeper
from service.scheduler import start_scheduler
from statemachines.blob_store import open_blob_store
from statemachines.errors import ConfigError
from statemachines.log_archive import use_blob_store
from statemachines.queues import QUEUE_NAMES

log = logging.getLogger(__name__)

REDIS_GONE = (redis.ConnectionError, redis.TimeoutError)


# a scheduler that died (SIGKILL, OOM) is started again this soon; rq's worker would wait for its
# 10-minute maintenance, and status retries (enqueue_in) wait for a scheduler
SCHEDULER_CHECK_SECONDS = 2.0
SCHEDULER_STOP_SECONDS = 5  # a scheduler process still up when the jobs process ends gets this long
# rq backs off up to 60 s between tries while Redis is away; we come back sooner
REDIS_RETRY_SECONDS = 1.0
_PR_SET_PDEATHSIG = 1


class QuietScheduler(RQScheduler):
    """rq's scheduler process: rides out a Redis outage with one line (rq's dies with two tracebacks)
    and dies with the jobs process, so no orphan keeps the scheduler lock.
    """

    parent_pid = 0

    def start(self) -> Any:
        self.parent_pid = os.getpid()
        return super().start()

    def work(self) -> None:
        # SIGTERM (rq's own stop: the scheduler releases its locks within a second) once the jobs
        # process is gone, even SIGKILLed; an orphan would hold the lock for good
        self._install_signal_handlers()
        if not _terminate_with_parent(self.parent_pid):
            self.log.info("scheduler: the jobs process is gone; releasing the lock")
            self.release_locks()
            return
        down = False
        while not self._stop_requested:
            try:
                super().work()
                return
            except REDIS_GONE as exc:
                if not down and not self._stop_requested:
                    self.log.warning("scheduler: Redis unavailable (%s); retrying", exc)
                down = True
                time.sleep(1)


def _terminate_with_parent(parent: int) -> bool:
    """Ask Linux for a SIGTERM when `parent` dies; False when it already has."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: a SIGKILLed jobs process leaves its scheduler
        return True
    return not parent or os.getppid() == parent


class JobsWorker(SimpleWorker):
    """SimpleWorker that waits for Redis wherever rq's work loop would quit on an outage, and keeps
    a scheduler process running (QuietScheduler, restarted within seconds of dying)."""

    max_connection_wait_time = 5.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._scheduler_lock = threading.Lock()
        self._scheduler_stopped = False
        self._redis_down = False

    def execute_job(self, job: Job, queue: Queue) -> None:
        # rq's own bookkeeping around a job (starting it, recording its end) talks to Redis outside
        # the job; a Redis that vanishes then makes rq's work loop quit ("unhandled exception") and
        # with it the whole process. Wait for Redis instead and go on with the next job. A job whose
        # start was never recorded is not retried by rq: the reconcile sweep is what catches up.
        try:
            super().execute_job(job, queue)
        except REDIS_GONE as exc:
            self.log.warning("jobs: Redis unavailable around job %s (%s); waiting for it", job.id, exc)
            self.wait_for_redis()

    # rq's work loop calls these outside its own retry (between jobs): any Redis error there ends
    # the loop, and with it the process, so each waits for Redis and tries again
    def heartbeat(self, *args: Any, **kwargs: Any) -> None:
        self._until_redis_answers(super().heartbeat, *args, **kwargs)

    def set_state(self, *args: Any, **kwargs: Any) -> None:
        self._until_redis_answers(super().set_state, *args, **kwargs)

    def check_for_suspension(self, *args: Any, **kwargs: Any) -> None:
        self._until_redis_answers(super().check_for_suspension, *args, **kwargs)

    def run_maintenance_tasks(self) -> None:
        with self._scheduler_lock:
            self._until_redis_answers(super().run_maintenance_tasks)

    def _until_redis_answers(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        while True:
            try:
                call(*args, **kwargs)
                if self._redis_down:
                    self.log.info("jobs: Redis answers again")
                self._redis_down = False
                return
            except REDIS_GONE as exc:
                if not self._redis_down:
                    self.log.warning("jobs: Redis unavailable (%s); waiting for it", exc)
                self._redis_down = True
                self.wait_for_redis()

    def wait_for_redis(self) -> None:
        """Until Redis answers a ping; StopRequested (rq's loop ends quietly) on SIGTERM meanwhile."""
        while True:
            if self._stop_requested:
                raise StopRequested()
            try:
                self.connection.ping()
                return
            except REDIS_GONE:
                time.sleep(REDIS_RETRY_SECONDS)

    def _start_scheduler(
        self,
        burst: bool = False,
        logging_level: str | None = "INFO",
        date_format: str = DEFAULT_LOGGING_DATE_FORMAT,
        log_format: str = DEFAULT_LOGGING_FORMAT,
    ) -> None:
        # rq's own (rq/worker/base.py) with our class; the jobs process never works in burst mode
        self.scheduler = QuietScheduler(
            self.queues,
            connection=self.connection,
            logging_level=logging_level if logging_level is not None else self.log.level,
            date_format=date_format,
            log_format=log_format,
            serializer=self.serializer,
        )
        self.keep_scheduler()
        threading.Thread(target=self._keep_scheduler_running, name="scheduler-keeper", daemon=True).start()

    def keep_scheduler(self) -> None:
        """Start the scheduler process unless it runs: it takes the lock if free or its own (the
        same name: a child of ours that died), else another jobs process schedules."""
        scheduler = self.scheduler
        if scheduler is None:
            return
        with self._scheduler_lock:
            if self._scheduler_stopped:
                return
            process = scheduler._process
            if process is not None and process.is_alive():
                return
            if process is not None:
                process.join(0)  # reap it
            scheduler.acquire_locks(auto_start=True)

    def stop_scheduler(self) -> None:
        with self._scheduler_lock:  # not started again behind rq's back while it stops
            self._scheduler_stopped = True
            super().stop_scheduler()

    def _keep_scheduler_running(self) -> None:
        while not self._scheduler_stopped:
            time.sleep(SCHEDULER_CHECK_SECONDS)
            try:
                self.keep_scheduler()
            except REDIS_GONE:
                pass  # the main loop says so; try again at the next check
            except Exception:
                self.log.exception("jobs: starting the scheduler failed; trying again")


def preload_jobs(config: ServiceConfig) -> None:
    """Import the job modules and build their context (boto3 and GitHub clients) once, before any job."""
    import service.cancellations
    import service.reporter
    import service.runs  # noqa: F401

    use_config(config)
    use_blob_store(open_blob_store(config.blob))  # finished step logs (check run output, retention)
    job_context()


def run() -> int:
    try:
        config = ServiceConfig.from_env(process="jobs")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    connection = redis.Redis.from_url(config.redis_url)
    preload_jobs(config)
    queues = [Queue(name, connection=connection) for name in QUEUE_NAMES]
    stop = threading.Event()
    # approval steps: a thread polls the approval activity; a person decides on the dashboard
    start_poller(config, redis.Redis.from_url(config.redis_url), stop)
    # the reconciler's periodic sweep: it finalises runs whose execution ended while nothing watched
    start_sweeper(redis.Redis.from_url(config.redis_url), config.reconcile_interval, stop)
    # cron schedules (service/scheduler.py): every jobs process ticks, a slot starts one run
    start_scheduler(config, stop)
    # SimpleWorker runs each job in this process instead of a forked work horse: a fork costs tens of
    # milliseconds per job (three jobs stand between a push and its first status) and would share the
    # threads' boto3 connections with the child. Jobs are short I/O; rq still enforces their timeouts.
    worker = JobsWorker(queues, connection=connection)
    try:
        worker.work(with_scheduler=True)
    except REDIS_GONE as exc:
        # rq's teardown unregisters the worker in Redis; a Redis stopped first (`make run`'s Ctrl-C)
        # leaves nothing to unregister from, and its key expires on its own
        log.warning("jobs: Redis unavailable (%s); jobs process stopped", exc)
    finally:
        stop.set()
        _end_scheduler_process(worker)
    return 0


def _end_scheduler_process(worker: JobsWorker) -> None:
    """The rq scheduler's process ends with us: multiprocessing joins it at exit, so one still waiting for
    Redis (its stop lost in a teardown that Redis cut short) would hold the jobs process up for good."""
    process = worker.scheduler._process if worker.scheduler is not None else None
    if process is None or not process.is_alive():
        return
    process.terminate()
    process.join(SCHEDULER_STOP_SECONDS)
    if process.is_alive():
        log.warning("jobs: the rq scheduler process did not stop; killing it")
        process.kill()
        process.join(SCHEDULER_STOP_SECONDS)


if __name__ == "__main__":
    sys.exit(run())
