"""Retention against a real Redis: old ended runs leave every lookup; open and recent runs stay."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time

from service.app import create_app
from service.approvals import ApprovalStore
from service.job_context import use_config
from service.reconcile import sweep_open_runs
from service.retention import DAY, trim_finished_runs
from service.run_index import EXECUTIONS, RunIndex
from service.status_contexts import StatusUpdate
from service.status_ledger import StatusLedger
from statemachines.run_stages import RunStages
from statemachines.step_logs import StepLogReader
from tests.service.dashboard_seed import seed_log, seed_run

ARN = "arn:aws:states:us-east-1:123456789012:execution:stepline-ci:{}"


def aged(redis_client, run_id: str, days: float, ended_days: float | None = None, **fields):
    """A run created `days` ago that ended `ended_days` ago (None with an open status)."""
    created = time.time() - days * DAY
    ended = None if ended_days is None else time.time() - ended_days * DAY
    fields = {"execution_arn": ARN.format(run_id), "sha": sha_of(run_id), **fields}
    run = seed_run(redis_client, run_id=run_id, created_at=created, finished_at=ended, **fields)
    RunIndex(redis_client).add_audit(run_id, {"action": "started"})
    return run


def sha_of(run_id: str) -> str:
    return hashlib.sha1(run_id.encode()).hexdigest()  # noqa: S324 - a made-up commit id


def keys_naming(redis_client, run_id: str) -> list[str]:
    """Every key whose name or content still names the run (sorted sets, hashes, sets)."""
    found = []
    for raw in redis_client.scan_iter(count=1000):
        key = raw.decode()
        kind = redis_client.type(raw).decode()
        named = run_id in key
        if kind == "zset":
            named = named or redis_client.zscore(raw, run_id) is not None
        elif kind == "hash" and key == EXECUTIONS:
            named = named or run_id.encode() in redis_client.hvals(raw)
        elif kind == "set":
            named = named or any(run_id.encode() in m for m in redis_client.smembers(raw))
        if named:
            found.append(key)
    return found


def test_a_trimmed_run_vanishes_from_every_lookup_and_open_and_recent_runs_stay(redis_client):
    index = RunIndex(redis_client)
    aged(redis_client, "old-push", 120, 119, branch="feature")
    aged(redis_client, "old-pr", 100, 99.9, pull_request=7, branch="fix", status="FAILED")
    aged(redis_client, "old-open", 200, None, status="RUNNING")  # never trimmed, however old
    aged(redis_client, "old-queued", 200, None, status="QUEUED")
    aged(redis_client, "long-run", 100, 10)  # created long ago, ended lately: kept
    aged(redis_client, "recent", 5, 5, branch="feature")
    update = StatusUpdate("octo/app", sha_of("old-push"), "stepline/ci", "success", "", "", "old-push", (1,))
    ledger = StatusLedger(redis_client)
    ledger.claim(update)
    ledger.record_error(update, "GitHub said no")
    ledger.note_redrives("old-push", 2)
    seed_log(redis_client, "old-push", "build", ["compiling"])  # a log kept longer than the run
    ApprovalStore(redis_client).add("token-of-old-pr", json.dumps({"run_id": "old-pr", "step": "deploy"}))
    seed_log(redis_client, "recent", "build", ["compiling"])
    RunStages(redis_client).stamp("old-push", "task_answered")

    assert trim_finished_runs(index, 90) == 2

    ids = lambda runs: [r["run_id"] for r in runs]  # noqa: E731
    for gone in ("old-push", "old-pr"):
        assert index.get(gone) is None
        assert index.by_execution_arn(ARN.format(gone)) is None
        assert index.audit(gone) == []
        assert ledger.claimed(gone) == [] and ledger.errors(gone) == []
        assert keys_naming(redis_client, gone) == []
    assert ids(index.list_runs()) == ["recent", "long-run", "old-queued", "old-open"]
    assert ids(index.list_runs(repository="octo/app", branch="feature")) == ["recent"]
    assert index.list_runs(repository="octo/app", pull_request=7) == []
    assert index.list_runs(status="FAILED") == []
    assert index.runs_for_sha("octo/app", sha_of("old-push")) == []
    assert ids(index.open_runs("octo/app")) == ["old-queued", "old-open"]
    assert index.by_execution_arn(ARN.format("long-run"))["run_id"] == "long-run"
    assert len(index.audit("recent")) == 1
    assert [m["step"] for m in StepLogReader(redis_client).list_logs("recent")] == ["build"]
    assert ApprovalStore(redis_client).pending_ids() == []
    assert trim_finished_runs(index, 90) == 0  # nothing left to do
    assert trim_finished_runs(index, 0) == 0  # 0 days: keep forever


def test_a_backlog_drains_in_bounded_batches_and_pages_stay_consistent(redis_client):
    index = RunIndex(redis_client)
    for n in range(130):
        aged(redis_client, f"old-{n:03}", 200 - n * 0.1, 150, branch=f"b{n % 3}")
    for n in range(30):
        aged(redis_client, f"new-{n:02}", 1, 1, branch=f"b{n % 3}")

    assert trim_finished_runs(index, 90, batch=20, limit=50) == 50  # at most `limit` per sweep
    assert redis_client.zcard("stepline:runs") == 110
    # every listed id has its record: offsets line up with what a page shows
    page = index.list_runs(limit=25, offset=25)
    assert len(page) == 25
    assert trim_finished_runs(index, 90, batch=20, limit=50) == 50
    assert trim_finished_runs(index, 90, batch=20, limit=50) == 30
    assert trim_finished_runs(index, 90, batch=20, limit=50) == 0
    assert sorted(r["run_id"] for r in index.list_runs(limit=100)) == [f"new-{n:02}" for n in range(30)]
    assert [len(index.list_runs(repository="octo/app", branch=f"b{b}")) for b in range(3)] == [10, 10, 10]


def test_a_run_redriven_while_being_trimmed_is_kept(redis_client, redis_server):
    index = RunIndex(redis_client)
    aged(redis_client, "redriven", 120, 119, status="FAILED")
    other = RunIndex(redis_server.client())

    class RedriveMeanwhile:
        def forget_runs(self, pipe, run_ids: list[str]) -> None:
            # between the read and the transaction, as actions.redrive would
            for run_id in run_ids:
                other.transition(run_id, ("FAILED",), status="RUNNING", finished_at=None)

    assert index.delete_finished(["redriven"], time.time(), [RedriveMeanwhile()]) == ([], 1)
    assert index.get("redriven")["status"] == "RUNNING"
    assert [r["run_id"] for r in index.open_runs("octo/app")] == ["redriven"]
    assert trim_finished_runs(index, 90) == 0


def test_the_sweep_trims_and_the_dashboard_lists_and_filters_what_is_left(service_config, redis_client):
    aged(redis_client, "old", 120, 119, branch="feature")
    aged(redis_client, "old-pr", 120, 119, pull_request=3, branch="fix")
    aged(redis_client, "kept", 1, 1, branch="feature")
    # no execution: the sweep's reconcile of it asks Step Functions nothing
    aged(redis_client, "open", 120, None, status="RUNNING", branch="feature", execution_arn=None)
    config = dataclasses.replace(service_config, run_retention_days=30)
    use_config(config)

    assert sweep_open_runs()["trimmed"] == 2

    client = create_app(config).test_client()
    listed = lambda query: [r["run_id"] for r in client.get(f"/api/runs?{query}").get_json()["runs"]]  # noqa: E731
    assert listed("") == ["kept", "open"]
    assert listed("repository=octo/app&branch=feature") == ["kept", "open"]
    assert listed("branch=feature&status=SUCCEEDED") == ["kept"]
    assert listed("pr=3") == [] and listed("repository=octo/app&pr=3") == []
    assert client.get("/api/runs/old").status_code == 404
