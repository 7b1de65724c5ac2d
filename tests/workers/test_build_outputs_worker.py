"""Build outputs through `python -m workers`: a cancelled step's tar dies at once, artifacts of failed
steps when asked for, and a failed upload that fails the step by a name pipelines can Catch."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from statemachines.artifacts import ArtifactStore
from statemachines.blob_store import S3, DirectoryStore
from statemachines.caches import CacheStore, Scope
from statemachines.run_claims import TICKET, claim_ticket
from statemachines.run_stops import mark_stopped
from statemachines.step_logs import StepLogReader, meta_key, stream_key
from tests.harness.blob_servers import KEYS, REGION
from tests.workers.conftest import build_step, step_pids, wait_execution, wait_for
from tests.workers.task_inputs import execution_input
from tests.workers.test_worker_process import failure_of, log_lines, statuses

# the work tree's bin/ comes first on the step's PATH, so a step's own `tar` packs and unpacks its cache:
# one that hangs stands for a huge cache, deterministically
STEP_PATH = "/stepline/src/bin:/usr/local/bin:/usr/bin:/bin"
HANGING_TAR = "#!/bin/sh\nexec sleep 60\n"
CACHE = {"key": "deps-1", "paths": ["deps"]}


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def vouched(redis_client, repo, sha, run_id: str = "run-1") -> dict:
    """An execution input the service vouches for (caches and artifacts are kept only for those)."""
    run = execution_input(clone_url=repo.url, sha=sha, run_id=run_id)
    return {**run, TICKET: claim_ticket(redis_client, run_id, run, trusted=True)}


def seed_cache(redis_client, blobs: Path, key: str) -> None:
    """A cache of octo/app saved by an earlier run, for the step to restore."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        member = tarfile.TarInfo("src/deps/lib.txt")
        member.size = 3
        archive.addfile(member, io.BytesIO(b"lib"))
    path = blobs.parent / "seed.tar"
    path.write_bytes(data.getvalue())
    caches = CacheStore(redis_client, DirectoryStore(blobs))
    caches.save(Scope("octo/app", True), key, path, path.stat().st_size, 1 << 30)


@pytest.fixture
def repo_with_hanging_tar(make_repo):
    repo = make_repo("app")
    tar = repo.work / "bin" / "tar"
    tar.parent.mkdir(parents=True)
    tar.write_text(HANGING_TAR)
    tar.chmod(0o755)
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    return repo, sha


@pytest.mark.parametrize("when", ["restore", "save"])
def test_a_stopped_run_kills_its_cache_tar_at_once(
    when, repo_with_hanging_tar, start_worker, run_pipeline, sfn, redis_client, tmp_path
):
    repo, sha = repo_with_hanging_tar
    if when == "restore":
        seed_cache(redis_client, tmp_path / "blobs", CACHE["key"])
    start_worker(WORKER_STEP_PATH=STEP_PATH, HEARTBEAT_SECONDS="60")  # no heartbeat tells it meanwhile
    step = build_step(["mkdir -p deps && echo built > deps/lib.txt"], heartbeat=110, cache=CACHE)
    run_pipeline(step, **vouched(redis_client, repo, sha))
    (pid,) = wait_for(lambda: step_pids("run-1:test:1"), timeout=30, what=f"the cache {when}'s tar started")
    mark_stopped(redis_client, "run-1")  # the service cancels or supersedes the run
    # a hang detector: killed by the worker, long before the 60 s tar (and the 36 s heartbeat) would end
    wait_for(lambda: not _running(pid), timeout=20, what="the tar killed")
    reader = StepLogReader(redis_client)
    wait_for(lambda: reader.meta("run-1", "test")["finished"], timeout=20, what="log finished")
    assert reader.meta("run-1", "test")["status"] == "stopped"
    lines = log_lines(redis_client)
    said = "restored" if when == "restore" else "saved"
    assert f"[stepline] cache: not {said}: tar killed: the step was stopped" in lines, lines
    ran = any(line.startswith("$ mkdir") for line in lines)
    assert ran is (when == "save")  # a restore stopped: none of the commands ran
    if when == "save":
        caches = CacheStore(redis_client, DirectoryStore(tmp_path / "blobs"))
        assert caches.find(Scope("octo/app", True), CACHE["key"]) is None


def test_a_worker_shutting_down_kills_its_cache_tar_and_fails_the_task_at_once(
    repo_with_hanging_tar, start_worker, run_pipeline, sfn, redis_client, tmp_path
):
    repo, sha = repo_with_hanging_tar
    worker = start_worker(WORKER_STEP_PATH=STEP_PATH)
    arn = run_pipeline(build_step(["mkdir -p deps"], cache=CACHE), **vouched(redis_client, repo, sha))
    (pid,) = wait_for(lambda: step_pids("run-1:test:1"), timeout=30, what="the cache save's tar started")
    assert worker.stop(timeout=20) == 0  # a hang detector: SIGKILLed (not 0) if the tar held it up
    assert failure_of(sfn, arn)["error"] == "Stepline.WorkerShutdown"
    assert not _running(pid)
    lines = log_lines(redis_client)
    assert "[stepline] cache: not saved: tar killed: the worker is shutting down" in lines, lines


def test_artifacts_when_always_keeps_a_failed_steps_reports_and_the_default_does_not(
    make_repo, start_worker, run_pipeline, sfn, redis_client, tmp_path
):
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    start_worker()
    artifacts = ArtifactStore(redis_client, DirectoryStore(tmp_path / "blobs"))
    fails = ["mkdir -p reports && echo '<testsuite failures=\"1\"/>' > reports/junit.xml", "exit 3"]
    for when, kept in ((None, False), ("always", True), ("failure", True)):
        run_id = f"run-{when}"
        extra = {"artifacts_when": when} if when else {}
        arn = run_pipeline(
            build_step(fails, artifacts=["reports/*.xml"], **extra),
            **vouched(redis_client, repo, sha, run_id),
        )
        assert failure_of(sfn, arn)["error"] == "Stepline.StepFailed"  # the step's own error stays
        listing = artifacts.listing(run_id)
        assert ("test" in listing) is kept, (when, listing)
        if kept:
            assert [f["path"] for f in listing["test"]["files"]] == ["reports/junit.xml"]
            assert "[stepline] artifacts: kept 1 file(s), 26 bytes" in log_lines(redis_client, run_id)
    arn = run_pipeline(  # "failure" keeps nothing of a step that passed
        build_step(["mkdir r && touch r/a.xml"], artifacts=["r/*"], artifacts_when="failure"),
        **vouched(redis_client, repo, sha, "run-passed"),
    )
    assert wait_execution(sfn, arn)["status"] == "SUCCEEDED"
    assert artifacts.listing("run-passed") == {}


def test_a_stopped_step_keeps_no_artifacts_even_always(
    make_repo, start_worker, run_pipeline, sfn, redis_client, tmp_path
):
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    start_worker()
    step = build_step(
        ["touch report.xml; sleep 60 & wait"], artifacts=["report.xml"], artifacts_when="always"
    )
    arn = run_pipeline(step, **vouched(redis_client, repo, sha))
    (pid,) = wait_for(lambda: step_pids("run-1:test:1"), what="step started")
    sfn.stop_execution(executionArn=arn, error="Stepline.Cancelled", cause="a newer push")
    wait_for(lambda: not _running(pid), timeout=30, what="the step killed")
    reader = StepLogReader(redis_client)
    wait_for(lambda: reader.meta("run-1", "test")["finished"], timeout=20, what="log finished")
    assert reader.meta("run-1", "test")["status"] == "stopped"
    assert ArtifactStore(redis_client, DirectoryStore(tmp_path / "blobs")).listing("run-1") == {}


@pytest.mark.parametrize("backend", ["directory", S3])
def test_a_failed_upload_fails_the_step_as_artifact_failed(
    backend, make_repo, start_worker, run_pipeline, sfn, redis_client, tmp_path, request
):
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    if backend == S3:  # the bucket is gone (deleted, or a wrong name): S3 answers NoSuchBucket
        endpoint = request.getfixturevalue("moto_s3")
        start_worker(
            STEPLINE_BLOB_STORE=S3, STEPLINE_BLOB_BUCKET="no-such-bucket", STEPLINE_BLOB_ENDPOINT_URL=endpoint,
            STEPLINE_BLOB_REGION=REGION, STEPLINE_BLOB_ACCESS_KEY_ID=KEYS["AWS_ACCESS_KEY_ID"],
            STEPLINE_BLOB_SECRET_ACCESS_KEY=KEYS["AWS_SECRET_ACCESS_KEY"],
        )  # fmt: skip
    else:  # the directory cannot be written (here: a file stands where it should be)
        (tmp_path / "not-a-dir").write_text("")
        start_worker(STEPLINE_BLOB_DIR=str(tmp_path / "not-a-dir"))
    step = build_step(["mkdir dist && echo wheel > dist/app.whl"], artifacts=["dist/*.whl"])
    failure = failure_of(sfn, run_pipeline(step, **vouched(redis_client, repo, sha)))
    assert failure["error"] == "Stepline.ArtifactFailed"
    assert "the commands passed but the artifacts could not be stored" in failure["cause"]
    (_, _, state, description) = statuses(redis_client)[-1]
    why = "NoSuchBucket" if backend == S3 else "Not a directory"
    assert state == "error" and description.startswith("artifacts not kept: the blob store failed ("), (
        description
    )
    assert why in description
    said = "[stepline] artifacts: not kept: the blob store failed ("
    assert any(line.startswith(said) and why in line for line in log_lines(redis_client))
    assert StepLogReader(redis_client).meta("run-1", "test")["status"] == "errored"


def test_a_lost_attempts_log_leaves_redis_once_the_retry_ends(
    make_repo, start_worker, run_pipeline, sfn, redis_client, tmp_path
):
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    first = start_worker("first", WORKER_SLOTS="1")
    step = ['echo "attempt $STEPLINE_ATTEMPT"', 'if [ "$STEPLINE_ATTEMPT" = 1 ]; then sleep 60; fi']
    arn = run_pipeline(build_step(step, heartbeat=2), **vouched(redis_client, repo, sha))
    (orphan,) = wait_for(lambda: step_pids("run-1:test:1"), what="attempt 1 started")
    try:
        first.kill()  # SIGKILL: attempt 1's log is never finished nor moved by its own worker
        start_worker("second", WORKER_SLOTS="1")
        assert wait_execution(sfn, arn, timeout=60)["status"] == "SUCCEEDED"
    finally:
        if _running(orphan):
            os.kill(orphan, 9)
    meta = StepLogReader(redis_client).meta("run-1", "test", 1)
    assert meta["status"] == "lost"
    lost = "run-1:test:1"
    wait_for(lambda: redis_client.hget(meta_key(lost), "archive"), timeout=30, what="attempt 1 moved")
    assert not redis_client.exists(stream_key(lost))  # Redis keeps its meta only
    lines = log_lines(redis_client, attempt=1)  # read back from the blob store
    assert "attempt 1" in lines and any("ended without its worker" in line for line in lines)
    assert (tmp_path / "blobs" / "logs" / "trusted" / "run-1" / "test" / "1.jsonl").exists()
