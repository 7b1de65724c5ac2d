"""Entry point of the jobs process: validate settings, then run an rq worker on Stepline's queues."""

from __future__ import annotations

import logging
import sys

import redis
from rq import Queue, SimpleWorker

from service.approvals import start_poller
from service.config import ServiceConfig
from service.job_context import job_context, use_config
from service.reconcile import start_sweeper
from statemachines.errors import ConfigError

# Order matters: an rq worker drains queues left to right, and starting runs is what users wait on.
QUEUE_NAMES = ("runs", "statuses", "default")


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
    # approval steps: a thread polls the approval activity; a person decides on the dashboard
    start_poller(config, redis.Redis.from_url(config.redis_url))
    # the reconciler's periodic sweep: it finalises runs whose execution ended while nothing watched
    start_sweeper(redis.Redis.from_url(config.redis_url), config.reconcile_interval)
    # SimpleWorker runs each job in this process instead of a forked work horse: a fork costs tens of
    # milliseconds per job (three jobs stand between a push and its first status) and would share the
    # threads' boto3 connections with the child. Jobs are short I/O; rq still enforces their timeouts.
    SimpleWorker(queues, connection=connection).work(with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(run())
