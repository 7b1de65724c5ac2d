"""What the run jobs share: settings, Redis, the run index, the Step Functions client, the status queue."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import redis
from rq import Queue

from service.config import ServiceConfig
from service.run_index import RunIndex
from service.sfn import make_sfn_client
from statemachines import queues

log = logging.getLogger(__name__)

_lock = threading.Lock()
_configured: ServiceConfig | None = None
_contexts: dict[ServiceConfig, JobContext] = {}


@dataclass(frozen=True)
class JobContext:
    """Built once per process and settings: boto3 clients and Redis pools are costly to make per job."""

    config: ServiceConfig
    redis: redis.Redis
    index: RunIndex
    sfn: Any
    statuses: Queue

    def report(self, job: str, *args: Any) -> None:
        """Enqueue a reporter job by its path (statemachines.queues): no import of the reporter, so no cycle."""
        self.statuses.enqueue(job, *args)


def use_config(config: ServiceConfig) -> None:
    """Give the jobs their settings (tests, embedded callers); otherwise they are read from the environment."""
    global _configured
    _configured = config


def job_context() -> JobContext:
    global _configured
    with _lock:
        if _configured is None:
            _configured = ServiceConfig.from_env(check_services=False)
        config = _configured
        if config not in _contexts:
            client = redis.Redis.from_url(config.redis_url, socket_timeout=10, socket_connect_timeout=3)
            _contexts[config] = JobContext(
                config,
                client,
                RunIndex(client),
                make_sfn_client(config),
                Queue(queues.STATUSES, connection=client),
            )
        return _contexts[config]
