"""The run index against a real Redis: lookups by every key, newest first, status sets kept in step."""

from __future__ import annotations

import threading

from service.run_index import RUN_FIELDS, RunIndex


def make_run(index: RunIndex, run_id: str, created_at: float, **fields):
    base = {
        "run_id": run_id,
        "repository": "octo/app",
        "branch": "main",
        "sha": "a" * 40,
        "created_at": created_at,
    }
    return index.create({**base, **fields})


def test_create_fills_every_field_and_get_reads_it_back(redis_client):
    index = RunIndex(redis_client)
    run = make_run(index, "r1", 1.0, pull_request=None, steps=["build"])
    assert set(RUN_FIELDS) <= set(run)
    assert index.get("r1") == run
    assert index.get("missing") is None


def test_lists_are_newest_first_and_filter_by_repository_branch_pr_status(redis_client):
    index = RunIndex(redis_client)
    make_run(index, "old", 1.0)
    make_run(index, "pr", 2.0, pull_request=7, branch="feature")
    make_run(index, "new", 3.0, branch="dev", status="RUNNING")
    make_run(index, "other", 4.0, repository="octo/other")
    ids = lambda runs: [r["run_id"] for r in runs]  # noqa: E731
    assert ids(index.list_runs()) == ["other", "new", "pr", "old"]
    assert ids(index.list_runs(limit=2, offset=1)) == ["new", "pr"]
    assert ids(index.list_runs(repository="octo/app")) == ["new", "pr", "old"]
    assert ids(index.list_runs(repository="octo/app", branch="main")) == ["old"]
    assert ids(index.list_runs(repository="octo/app", pull_request=7)) == ["pr"]
    assert ids(index.list_runs(status="RUNNING")) == ["new"]
    assert ids(index.list_runs(repository="octo/app", status="QUEUED")) == ["pr", "old"]
    assert ids(index.runs_for_sha("octo/app", "a" * 40)) == ["new", "pr", "old"]


def test_open_runs_follow_status_changes_and_branch_excludes_pull_requests(redis_client):
    index = RunIndex(redis_client)
    make_run(index, "push", 1.0, branch="feature")
    make_run(index, "pr", 2.0, branch="feature", pull_request=3)
    assert [r["run_id"] for r in index.open_runs("octo/app", branch="feature")] == ["push"]
    assert [r["run_id"] for r in index.open_runs("octo/app", pull_request=3)] == ["pr"]
    index.update("push", status="SUCCEEDED", finished_at=5.0)
    assert index.open_runs("octo/app", branch="feature") == []
    assert [r["run_id"] for r in index.list_runs(status="SUCCEEDED")] == ["push"]
    assert index.list_runs(status="QUEUED")[0]["run_id"] == "pr"


def test_transition_never_overwrites_a_finished_run(redis_client):
    index = RunIndex(redis_client)
    make_run(index, "r", 1.0, status="SUCCEEDED")
    assert index.transition("r", ("QUEUED", "RUNNING"), status="SUPERSEDED") is None
    assert index.get("r")["status"] == "SUCCEEDED"
    assert index.update("missing", status="FAILED") is None


def test_by_execution_arn_and_audit(redis_client):
    index = RunIndex(redis_client)
    make_run(index, "r", 1.0)
    index.update("r", execution_arn="arn:aws:states:us-east-1:1:execution:sm:e1", status="RUNNING")
    assert index.by_execution_arn("arn:aws:states:us-east-1:1:execution:sm:e1")["run_id"] == "r"
    assert index.by_execution_arn("nope") is None
    index.add_audit("r", {"action": "started"})
    index.add_audit("r", {"action": "cancelled", "user": "ada"})
    assert [e["action"] for e in index.audit("r")] == ["started", "cancelled"]


def test_concurrent_updates_of_different_fields_both_land(redis_client, redis_server):
    index = RunIndex(redis_client)
    make_run(index, "r", 1.0)

    def write(field: str) -> None:
        own = RunIndex(redis_server.client())
        for n in range(50):
            own.update("r", **{field: n})

    threads = [threading.Thread(target=write, args=(f,)) for f in ("started_at", "finished_at")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    run = index.get("r")
    assert run["started_at"] == 49 and run["finished_at"] == 49
