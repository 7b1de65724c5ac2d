"""Entry point of the jobs process: validate settings, then run an rq worker on Stepline's queues."""

from __future__ import annotations

import logging
import sys

import redis
from rq import Queue, Worker

from service.config import ServiceConfig
from statemachines.errors import ConfigError

# Order matters: an rq worker drains queues left to right, and starting runs is what users wait on.
QUEUE_NAMES = ("runs", "statuses", "default")


def run() -> int:
    try:
        config = ServiceConfig.from_env()
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    logging.basicConfig(level=config.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    connection = redis.Redis.from_url(config.redis_url)
    queues = [Queue(name, connection=connection) for name in QUEUE_NAMES]
    Worker(queues, connection=connection).work(with_scheduler=True)
    return 0


if __name__ == "__main__":
    sys.exit(run())
