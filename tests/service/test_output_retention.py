"""Retention of build outputs (archived logs, artifacts, caches) in bounded sweeps, and their /metrics."""

from __future__ import annotations

import dataclasses
import time

from service.app import create_app
from service.output_retention import trim_build_outputs
from statemachines.artifacts import ArtifactStore
from statemachines.blob_store import open_blob_store
from statemachines.caches import CacheStore, Scope
from statemachines.log_archive import LogArchive
from statemachines.step_logs import StepLogWriter
from tests.service.dashboard_seed import ADMIN_TOKEN, with_users


def seed(redis_client, store, tmp_path) -> None:
    for run in ("run-a", "run-b"):
        writer = StepLogWriter.start(redis_client, run, "build")
        writer.write_line("hello")
        writer.finish("succeeded", 0)
        LogArchive(redis_client, store).archive(writer.log_id, True, 3600)
        ArtifactStore(redis_client, store).record(run, "build", {"trusted": True, "files": []})
        store.put_bytes(f"artifacts/trusted/{run}/build/dist/app.whl", b"wheel")
    tar = tmp_path / "c.tar"
    tar.write_bytes(b"x" * 10)
    CacheStore(redis_client, store).save(Scope("octo/app", True), "pip-1", tar, 10, 1000)


def test_retention_deletes_due_outputs_in_bounded_batches_and_metrics_count_them(
    redis_client, blob_settings, service_config, tmp_path
):
    store = open_blob_store(blob_settings)
    seed(redis_client, store, tmp_path)
    assert trim_build_outputs(redis_client, store, 30, 7) == {"logs": 0, "artifacts": 0, "caches": 0}
    later = time.time() + 40 * 86_400
    assert trim_build_outputs(redis_client, store, 30, 7, limit=1, now=later) == {
        "logs": 1,
        "artifacts": 1,
        "caches": 1,
    }
    assert trim_build_outputs(redis_client, store, 0, 7, now=later) == {
        "logs": 1,
        "artifacts": 0,
        "caches": 0,
    }
    assert len(list(store.list("artifacts/"))) == 1  # 0 days: artifacts are kept forever
    assert list(store.list("logs/")) == [] and list(store.list("caches/")) == []

    app = create_app(with_users(dataclasses.replace(service_config, blob=blob_settings)))
    text = (
        app.test_client()
        .get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
        .get_data(as_text=True)
    )
    assert "stepline_archived_logs 0" in text and "stepline_artifact_runs 1" in text
    assert 'stepline_retention_deleted{kind="logs"} 2' in text
    assert 'stepline_retention_deleted{kind="artifacts"} 1' in text
    assert 'stepline_retention_deleted{kind="caches"} 1' in text
    assert 'stepline_retention_days{kind="artifacts"} 30' in text
