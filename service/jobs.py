"""Entry point of the jobs process: validate settings, then run an rq worker on Stepline's queues.

`make run` stops Redis together with every process, so Redis may vanish before or during shutdown:
each part of this process (the worker, its scheduler process, the sweeper and approval threads) then
logs one line and the process exits 0, never a traceback.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

import redis
from rq import Queue, SimpleWorker
from rq.defaults import DEFAULT_LOGGING_DATE_FORMAT, DEFAULT_LOGGING_FORMAT
from rq.job import Job
from rq.scheduler import RQScheduler

from service.approvals import start_poller
from service.config import ServiceConfig
from service.job_context import job_context, use_config
from service.reconcile import start_sweeper
from statemachines.errors import ConfigError

log = logging.getLogger(__name__)

# Order matters: an rq worker drains queues left to right, and starting runs is what users wait on.
QUEUE_NAMES = ("runs", "statuses", "default")
REDIS_GONE = (redis.ConnectionError, redis.TimeoutError)


class QuietScheduler(RQScheduler):
    """rq's scheduler process, riding out a Redis outage with one line (rq's dies with two tracebacks).

    rq's worker would restart a dead scheduler only at its next maintenance, up to 10 minutes later,
    and status retries (enqueue_in) wait for the scheduler: so it waits for Redis instead, and ends
    quietly when asked to stop meanwhile.
    """

    def work(self) -> None:
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


class JobsWorker(SimpleWorker):
    """SimpleWorker with QuietScheduler as its scheduler, riding out a Redis outage around a job."""

    def execute_job(self, job: Job, queue: Queue) -> None:
        # rq's own bookkeeping around a job (starting it, recording its end) talks to Redis outside
        # the job; a Redis that vanishes then makes rq's work loop quit ("unhandled exception") and
        # with it the whole process. Wait for Redis instead and go on with the next job. A job whose
        # start was never recorded is not retried by rq: the reconcile sweep is what catches up.
        try:
            super().execute_job(job, queue)
        except REDIS_GONE as exc:
            self.log.warning("jobs: Redis unavailable around job %s (%s); waiting for it", job.id, exc)
            while not self._stop_requested:
                try:
                    self.connection.ping()
                    return
                except REDIS_GONE:
                    time.sleep(1)

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
        self.scheduler.acquire_locks()
        if self.scheduler.acquired_locks:
            self.scheduler.start()


def preload_jobs(config: ServiceConfig) -> None:
    """Import the job modules and build their context (boto3 and GitHub clients) once, before any job."""
    import service.cancellations
    import service.reporter
    import service.runs  # noqa: F401

    use_config(config)
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
    # SimpleWorker runs each job in this process instead of a forked work horse: a fork costs tens of
    # milliseconds per job (three jobs stand between a push and its first status) and would share the
    # threads' boto3 connections with the child. Jobs are short I/O; rq still enforces their timeouts.
    try:
        JobsWorker(queues, connection=connection).work(with_scheduler=True)
    except REDIS_GONE as exc:
        # rq's teardown unregisters the worker in Redis; a Redis stopped first (`make run`'s Ctrl-C)
        # leaves nothing to unregister from, and its key expires on its own
        log.warning("jobs: Redis unavailable (%s); jobs process stopped", exc)
    finally:
        stop.set()
    return 0


if __name__ == "__main__":
    sys.exit(run())
