"""What a step leaves in the blob store: its finished log, its artifacts and its cache (statemachines/blob_store.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import redis

from statemachines.artifacts import ArtifactStore
from statemachines.blob_store import open_blob_store
from statemachines.contract import StepTask
from statemachines.log_archive import LogArchive
from statemachines.step_logs import StepLogWriter
from workers import artifact_transfer
from workers.config import WorkerConfig

log = logging.getLogger(__name__)
UNVOUCHED = "[stepline] {what}: skipped: the run was not started by Stepline (no run claim to scope it by)"


class BuildOutputs:
    """The worker's side of the blob store, shared by every slot."""

    def __init__(self, config: WorkerConfig, client: redis.Redis) -> None:
        self.config = config
        self.store = open_blob_store(config.blob)
        self.logs = LogArchive(client, self.store)
        self.artifacts = ArtifactStore(client, self.store)

    def archive_log(self, writer: StepLogWriter, trusted: bool) -> None:
        """Move the finished log out of Redis; on failure it stays there until it expires, as before."""
        try:
            self.logs.archive(writer.log_id, trusted, self.config.step_log_retention_seconds)
        except Exception as exc:  # botocore's errors too: the step's outcome never depends on the archive
            log.warning("%s: log %s stays in Redis: %r", writer.run_id, writer.log_id, exc)

    def restore_needs(
        self, task: StepTask, trusted: bool, verified: bool, root: Path, writer: StepLogWriter
    ) -> None:
        """Place the artifacts the step `needs` in its work tree, before its commands run."""
        if not task.outputs.needs:
            return
        if not verified:  # a run id without its claim could name another run's artifacts
            writer.write_line(UNVOUCHED.format(what="needs"))
            return
        artifact_transfer.restore(
            self.artifacts, task.run_id, task.outputs.needs, trusted, root, writer.write_line
        )

    def keep_artifacts(
        self, task: StepTask, trusted: bool, verified: bool, root: Path, writer: StepLogWriter
    ) -> None:
        """Upload the files the step declared as artifacts, after it passed."""
        if not task.outputs.artifacts:
            return
        if not verified:
            writer.write_line(UNVOUCHED.format(what="artifacts"))
            return
        found = artifact_transfer.collect(
            root, task.outputs.artifacts, self.config.artifact_max_bytes, writer.write_line
        )
        entry = artifact_transfer.upload(
            self.artifacts, found, task.run_id, task.step, writer.attempt, trusted
        )
        size = sum(item["size"] for item in entry["files"])
        writer.write_line(f"[stepline] artifacts: kept {len(entry['files'])} file(s), {size} bytes")
