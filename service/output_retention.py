"""Retention of build outputs: the jobs process's sweep deletes what each blob-backed store says is due.

Each store owns its keys and blobs and knows what is due (statemachines/log_archive.py: a finished
log when its Redis meta expires, STEP_LOG_RETENTION_SECONDS; statemachines/artifacts.py: a run's
artifacts STEPLINE_ARTIFACT_RETENTION_DAYS after they were kept; statemachines/caches.py: a cache
unused for STEPLINE_CACHE_RETENTION_DAYS). A sweep deletes a bounded number of each, so a backlog
drains over several sweeps. What went is counted in Redis for /metrics.

    stepline:output-retention   Hash logs|artifacts|caches -> deleted so far (a counter)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import redis

from statemachines.artifacts import ArtifactStore
from statemachines.blob_store import BlobSettings, BlobStore, open_blob_store
from statemachines.caches import CacheStore
from statemachines.errors import BlobError
from statemachines.log_archive import LogArchive
from statemachines.redis_text import redis_text

log = logging.getLogger(__name__)

DELETED_KEY = "stepline:output-retention"
PER_SWEEP = 1000  # of each kind
KINDS = ("logs", "artifacts", "caches")


@functools.cache
def blob_store(settings: BlobSettings) -> BlobStore:
    """One store per process and settings (a boto3 client is costly to make every sweep or scrape)."""
    return open_blob_store(settings)


def trim_build_outputs(
    client: redis.Redis,
    store: BlobStore,
    artifact_days: float,
    cache_days: float,
    limit: int = PER_SWEEP,
    now: float | None = None,
) -> dict[str, int]:
    """Delete due archived logs, artifacts and caches (at most `limit` of each); how many of each went."""
    trims: dict[str, Callable[[], int]] = {
        "logs": lambda: LogArchive(client, store).trim(now=now, limit=limit),
        "artifacts": lambda: ArtifactStore(client, store).trim(artifact_days, now=now, limit=limit),
        "caches": lambda: CacheStore(client, store).trim(cache_days, now=now, limit=limit),
    }
    deleted = {}
    for kind, trim in trims.items():
        try:
            deleted[kind] = trim()
        except (BlobError, OSError) as exc:  # the blob store is away: the next sweep tries again
            log.warning("retention: %s not trimmed: %s", kind, exc)
            deleted[kind] = 0
    pipe = client.pipeline(transaction=False)
    for kind, count in deleted.items():
        if count:
            pipe.hincrby(DELETED_KEY, kind, count)
    pipe.execute()
    return deleted


OUTPUT_HELP = {
    "stepline_archived_logs": (
        "gauge",
        "Finished step logs in the blob store (Redis keeps only their meta).",
    ),
    "stepline_artifact_runs": ("gauge", "Runs whose artifacts the blob store keeps."),
    "stepline_caches": ("gauge", "Caches in the blob store, all repositories and both trusts."),
    "stepline_cache_bytes": ("gauge", "Bytes of those caches."),
    "stepline_retention_days": (
        "gauge",
        "Days build outputs are kept (caches: since last used; 0: forever).",
    ),
    "stepline_retention_deleted": ("counter", "Build outputs retention deleted, by kind."),
}


def output_samples(
    client: redis.Redis, store: BlobStore, artifact_days: float, cache_days: float
) -> dict[str, list[tuple[str, float]]]:
    """The build-output numbers of /metrics, read from Redis at scrape time."""
    caches = CacheStore(client, store).usage()
    raw: dict[Any, Any] = client.hgetall(DELETED_KEY) or {}
    counted = {redis_text(k): int(v) for k, v in raw.items()}
    return {
        "stepline_archived_logs": [("", LogArchive(client, store).usage())],
        "stepline_artifact_runs": [("", ArtifactStore(client, store).usage()["runs"])],
        "stepline_caches": [("", caches["entries"])],
        "stepline_cache_bytes": [("", caches["bytes"])],
        "stepline_retention_days": [('kind="artifacts"', artifact_days), ('kind="caches"', cache_days)],
        "stepline_retention_deleted": [(f'kind="{kind}"', counted.get(kind, 0)) for kind in KINDS],
    }
