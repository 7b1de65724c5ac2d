"""What a step leaves in the blob store: its finished log, its artifacts and its cache (statemachines/blob_store.py)."""

from __future__ import annotations

import logging

import redis

from statemachines.blob_store import BlobError, open_blob_store
from statemachines.log_archive import LogArchive
from statemachines.step_logs import StepLogWriter
from workers.config import WorkerConfig

log = logging.getLogger(__name__)


class BuildOutputs:
    """The worker's side of the blob store, shared by every slot."""

    def __init__(self, config: WorkerConfig, client: redis.Redis) -> None:
        self.config = config
        self.store = open_blob_store(config.blob)
        self.logs = LogArchive(client, self.store)

    def archive_log(self, writer: StepLogWriter, trusted: bool) -> None:
        """Move the finished log out of Redis; on failure it stays there until it expires, as before."""
        try:
            self.logs.archive(writer.log_id, trusted, self.config.step_log_retention_seconds)
        except (BlobError, OSError, redis.RedisError) as exc:
            log.warning("%s: log %s stays in Redis: %s", writer.run_id, writer.log_id, exc)
        except Exception as exc:  # botocore's errors: the step's outcome never depends on the archive
            log.warning("%s: log %s stays in Redis: %r", writer.run_id, writer.log_id, exc)
