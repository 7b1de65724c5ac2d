"""What a step leaves in the blob store: its finished log, its artifacts and its cache (statemachines/blob_store.py)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import redis

from statemachines.artifacts import ArtifactStore
from statemachines.blob_store import Stop, open_blob_store
from statemachines.caches import CacheStore, Hit, Scope, partition
from statemachines.contract import StepTask
from statemachines.errors import BlobError, TransferStopped
from statemachines.log_archive import ARCHIVE_FIELD, LogArchive
from statemachines.redis_text import redis_text
from statemachines.step_logs import LOST, StepLogWriter, log_id, meta_key
from workers import artifact_transfer, cache_transfer
from workers.cache_transfer import Wrap
from workers.config import WorkerConfig
from workers.errors import ArtifactFailed, CacheRefused
from workers.process_group import Cancellation
from workers.workspace import TaskPlaces

log = logging.getLogger(__name__)
MAX_LOST_ARCHIVED = 10  # earlier attempts looked at: a step's retries, bounded whatever its Retry says
UNVOUCHED = "[stepline] {what}: skipped: the run was not started by Stepline (no run claim to scope it by)"


@dataclass(frozen=True)
class CachePlan:
    """A step's cache as restore found it, for save to decide."""

    scope: Scope
    key: str
    hit: Hit | None


class BuildOutputs:
    """The worker's side of the blob store, shared by every slot."""

    def __init__(self, config: WorkerConfig, client: redis.Redis) -> None:
        self.config = config
        self.store = open_blob_store(config.blob)
        self.logs = LogArchive(client, self.store)
        self.artifacts = ArtifactStore(client, self.store)
        self.caches = CacheStore(client, self.store)

    def archive_log(self, writer: StepLogWriter, trusted: bool) -> None:
        """Move the finished log out of Redis; on failure it stays there until it expires, as before."""
        try:
            self.logs.archive(writer.log_id, trusted, self.config.step_log_retention_seconds)
        except Exception as exc:  # botocore's errors too: the step's outcome never depends on the archive
            log.warning("%s: log %s stays in Redis: %r", writer.run_id, writer.log_id, exc)

    def archive_lost(self, writer: StepLogWriter, trusted: bool) -> None:
        """Earlier attempts of this step whose worker was lost (ended as such when this one started) move
        out of Redis too: the last MAX_LOST_ARCHIVED, each once (a moved log is never moved again)."""
        for attempt in range(max(1, writer.attempt - MAX_LOST_ARCHIVED), writer.attempt):
            lost = log_id(writer.run_id, writer.step, attempt)
            try:
                status, archived = self.logs.redis.hmget(meta_key(lost), ["status", ARCHIVE_FIELD])
                if redis_text(status or "") == LOST and not archived:
                    self.logs.archive(lost, trusted, self.config.step_log_retention_seconds)
            except Exception as exc:  # as archive_log: it stays in Redis until it expires
                log.warning("%s: lost log %s stays in Redis: %r", writer.run_id, lost, exc)

    def restore_needs(
        self,
        task: StepTask,
        trusted: bool,
        verified: bool,
        root: Path,
        writer: StepLogWriter,
        cancellation: Cancellation,
    ) -> None:
        """Place the artifacts the step `needs` in its work tree, before its commands run.

        A cancellation stops it between files and chunks; the caller then ends the task."""
        if not task.outputs.needs:
            return
        if not verified:  # a run id without its claim could name another run's artifacts
            writer.write_line(UNVOUCHED.format(what="needs"))
            return
        try:
            artifact_transfer.restore(
                self.artifacts, task.run_id, task.outputs.needs, trusted, root, writer.write_line,
                stop=_stop(cancellation),
            )  # fmt: skip
        except TransferStopped:
            writer.write_line(f"[stepline] needs: not all placed: {cancellation.said}")

    def carry_artifacts(self, from_run: str, run_id: str, step: str, trusted: bool) -> None:
        """A reused step's artifacts are its original run's: list them in this run too, for `needs`."""
        try:
            entry = self.artifacts.listing(from_run).get(step)
            if entry is not None and (entry.get("trusted") is True) == trusted:
                self.artifacts.record(run_id, step, dict(entry, reused_from=from_run))
        except redis.RedisError as exc:
            log.warning("%s: step %s: artifacts of run %s not carried over: %s", run_id, step, from_run, exc)

    def keep_artifacts(
        self,
        task: StepTask,
        trusted: bool,
        verified: bool,
        root: Path,
        writer: StepLogWriter,
        cancellation: Cancellation,
        passed: bool = True,
    ) -> None:
        """Upload the files the step declared as artifacts, after it passed (or failed: `artifacts_when`).

        ArtifactFailed when a passed step's upload fails (a later step would miss them); after a failed
        step the failure is a line in the log, the step's own error stays. A cancellation stops the upload
        between files and chunks and keeps nothing; the caller then ends the task."""
        wanted = task.outputs.artifacts_when in ("always", "success" if passed else "failure")
        if not task.outputs.artifacts or not wanted or cancellation.is_set:
            return
        if not verified:
            writer.write_line(UNVOUCHED.format(what="artifacts"))
            return
        found = artifact_transfer.collect(
            root, task.outputs.artifacts, self.config.artifact_max_bytes, writer.write_line
        )
        try:
            entry = artifact_transfer.upload(
                self.artifacts, found, task.run_id, task.step, writer.attempt, trusted, _stop(cancellation)
            )
        except TransferStopped:
            writer.write_line(f"[stepline] artifacts: not kept: {cancellation.said}")
            return
        except Exception as exc:  # the blob store or Redis: a later step would miss them, so say it here
            writer.write_line(f"[stepline] artifacts: not kept: {_failure(exc)}: {exc}")
            if passed:
                raise ArtifactFailed(
                    f"artifacts not kept: {_failure(exc)}"[:140],
                    f"the commands passed but the artifacts could not be stored: {exc!r}\nlog: {writer.log_id}",
                ) from exc
            return
        size = sum(item["size"] for item in entry["files"])
        writer.write_line(f"[stepline] artifacts: kept {len(entry['files'])} file(s), {size} bytes")

    def restore_cache(
        self,
        task: StepTask,
        trusted: bool,
        verified: bool,
        places: TaskPlaces,
        base: Path,
        wrap: Wrap,
        env: Mapping[str, str],
        writer: StepLogWriter,
        cancellation: Cancellation,
    ) -> CachePlan | None:
        """Restore the step's cache before its commands; the plan for saving it after them.

        A cancellation stops the download between chunks or kills the tar; the caller then ends the task."""
        spec = task.outputs.cache
        if spec is None:
            return None
        if not verified:  # the repository named without its claim: no scope to trust
            writer.write_line(UNVOUCHED.format(what="cache"))
            return None
        part = partition(task.run, trusted)  # a fork's pull request never reads another's caches
        key = part + cache_transfer.render_key(spec.key, places.source, task.source.ref, task.step)
        fallbacks = tuple(
            part + cache_transfer.render_key(prefix, places.source, task.source.ref, task.step)
            for prefix in spec.restore_keys
        )
        scope = Scope(task.source.repository, trusted)
        archive = places.root / "cache-restore.tar"
        try:
            unpack = lambda path: cache_transfer.unpack(wrap, env, path, base, cancellation)  # noqa: E731
            hit = cache_transfer.restore(
                self.caches, scope, key, fallbacks, archive, writer.write_line, unpack, _stop(cancellation)
            )
        except (CacheRefused, BlobError, OSError) as exc:  # a cache is an optimisation: run without it
            writer.write_line(f"[stepline] cache: not restored: {exc}")
            hit = None
        finally:
            archive.unlink(missing_ok=True)
        return CachePlan(scope, key, hit)

    def save_cache(
        self,
        plan: CachePlan | None,
        task: StepTask,
        places: TaskPlaces,
        base: Path,
        wrap: Wrap,
        env: Mapping[str, str],
        writer: StepLogWriter,
        cancellation: Cancellation,
    ) -> None:
        """After a success, save the step's cache when its own key missed; a cancellation stops it."""
        if plan is None or task.outputs.cache is None or (plan.hit and plan.hit.exact) or cancellation.is_set:
            return
        names = cache_transfer.members(task.outputs.cache, places.source, places.home)
        if not names:
            writer.write_line("[stepline] cache: not saved: none of its paths exist")
            return
        archive = places.root / "cache-save.tar"
        try:
            limit = self.config.cache_max_bytes
            size = cache_transfer.pack(wrap, env, names, base, archive, limit, cancellation)
            evicted = self.caches.save(
                plan.scope,
                plan.key,
                archive,
                size,
                self.config.cache_repository_max_bytes,
                _stop(cancellation),
            )
            writer.write_line(f"[stepline] cache: saved {plan.key} ({size} bytes)")
            if evicted:
                writer.write_line(f"[stepline] cache: evicted {', '.join(evicted)} (least recently used)")
        except (CacheRefused, BlobError, OSError) as exc:
            writer.write_line(f"[stepline] cache: not saved: {exc}")
        finally:
            archive.unlink(missing_ok=True)


def _stop(cancellation: Cancellation) -> Stop:
    return lambda: cancellation.is_set


def _failure(exc: Exception) -> str:
    """What failed, short enough for a commit status' description."""
    if isinstance(exc, BlobError):
        return f"the blob store failed ({exc.reason})"
    if isinstance(exc, OSError):  # the directory store: its disk, or its permissions
        return f"the blob store failed ({exc.strerror or type(exc).__name__})"
    if isinstance(exc, redis.RedisError):
        return f"Redis failed ({type(exc).__name__})"
    return f"the worker failed ({type(exc).__name__})"
