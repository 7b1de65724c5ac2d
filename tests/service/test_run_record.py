"""The run record's stored format: records already in Redis load unchanged, and new ones are written the same way."""

from __future__ import annotations

import pytest

from service.errors import IncompleteRunError
from service.run_index import RUN_FIELDS, RunIndex
from service.run_index_backfill import backfill
from service.run_record import RunRecord, execution_input_of

# a PR run's hash as Stepline writes it today (one JSON-encoded value per field), typed out by hand:
# a change of key names or encoding fails here before it orphans the records users already have
STORED = {
    b"run_id": b'"r-stored"',
    b"repository": b'"octo/app"',
    b"event": b'"pull_request"',
    b"ref": b'"refs/pull/7/head"',
    b"branch": b'"feature"',
    b"tag": b"null",
    b"pull_request": b"7",
    b"sha": b'"' + b"a" * 40 + b'"',
    b"before": b'""',
    b"message": b'"Fix \\"it\\" \\u00e9"',
    b"author": b'"ada"',
    b"trusted": b"false",
    b"fork": b"true",
    b"pipeline": b'"ci"',
    b"steps": b'["build", "test-py{}"]',
    b"state_machine_arn": b'"arn:aws:states:us-east-1:1:stateMachine:ci"',
    b"execution_arn": b'"arn:aws:states:us-east-1:1:execution:ci:e1"',
    b"execution_input": b'{"run_id": "r-stored", "pull_request": {"number": 7}}',
    b"status": b'"RUNNING"',
    b"status_reason": b'""',
    b"superseded_by": b"null",
    b"validation": b"[]",
    b"delivery_id": b'"d-1"',
    b"created_at": b"1700000000.5",
    b"started_at": b"1700000001.25",
    b"finished_at": b"null",
    b"clone_url": b'"https://github.com/octo/app.git"',
    b"execution_name": b'"d-1-abc"',
    b"pipeline_path": b'".stepline/pipeline.asl.json"',
    b"trust_reason": b'"pull request from a fork"',
    b"installation_id": b"42",
    b"step_pools": b'{"build": "default", "test-py{}": "untrusted"}',
    b"step_families": b'[["test-py{}", "build"]]',
    b"pipeline_warnings": b"[]",
    b"concurrency_group": b'"untrusted/pr-7/ci"',
    b"concurrency_mode": b'"queue"',
    b"waiting_for": b"null",
}


def test_a_record_in_todays_format_loads_with_every_field(redis_client):
    redis_client.hset("stepline:run:r-stored", mapping=STORED)
    run = RunIndex(redis_client).get("r-stored")
    assert run is not None
    assert run["pull_request"] == 7 and run["branch"] == "feature" and run["tag"] is None
    assert run["message"] == 'Fix "it" é'
    assert run["steps"] == ["build", "test-py{}"]
    assert run.get("step_families") == [["test-py{}", "build"]]
    assert run.get("step_pools") == {"build": "default", "test-py{}": "untrusted"}
    assert run["created_at"] == 1700000000.5 and run["finished_at"] is None
    assert run.get("installation_id") == 42 and run["trusted"] is False and run["fork"] is True
    assert set(run) == {key.decode() for key in STORED}


def test_a_record_without_the_later_fields_loads_and_updates(redis_client):
    # what an older version wrote: the first RUN_FIELDS only, none of the fields added since
    older = {key: value for key, value in STORED.items() if key.decode() in RUN_FIELDS}
    del older[b"execution_name"], older[b"pipeline_path"]
    redis_client.hset("stepline:run:r-stored", mapping=older)
    redis_client.zadd("stepline:runs", {"r-stored": 1700000000.5})
    index = RunIndex(redis_client)
    assert backfill(index) == (1, True)
    ended = index.transition("r-stored", ("RUNNING",), status="SUCCEEDED", finished_at=1700000100.0)
    assert ended is not None and ended["status"] == "SUCCEEDED"
    assert ended.get("step_pools") is None and "execution_name" not in ended
    assert [run["run_id"] for run in index.list_runs(repository="octo/app", status="SUCCEEDED")] == [
        "r-stored"
    ]
    assert redis_client.hget("stepline:run:r-stored", "finished_at") == b"1700000100.0"


def test_create_writes_each_field_json_encoded_under_its_name(redis_client):
    run: RunRecord = {"run_id": "r-new", "repository": "octo/app", "sha": "b" * 40, "created_at": 5.0}
    RunIndex(redis_client).create({**run, "steps": ["build"], "inputs": {"level": "3"}})
    raw = redis_client.hgetall("stepline:run:r-new")
    assert raw[b"run_id"] == b'"r-new"' and raw[b"created_at"] == b"5.0" and raw[b"branch"] == b"null"
    assert raw[b"steps"] == b'["build"]' and raw[b"inputs"] == b'{"level": "3"}'
    assert raw[b"trusted"] == b"false" and raw[b"status"] == b'"QUEUED"'


def test_defaults_are_not_shared_between_records(redis_client):
    index = RunIndex(redis_client)
    first = index.create({"run_id": "one", "repository": "octo/app", "sha": "c" * 40})
    first["steps"].append("leaked")
    second = index.create({"run_id": "two", "repository": "octo/app", "sha": "c" * 40})
    assert second["steps"] == [] and RUN_FIELDS["steps"] == []


def test_a_run_without_execution_input_cannot_start():
    with pytest.raises(IncompleteRunError) as caught:
        execution_input_of({"run_id": "r1", "execution_input": None})
    assert caught.value.run_id == "r1" and caught.value.field == "execution_input"
    assert execution_input_of({"run_id": "r1", "execution_input": {"a": 1}}) == {"a": 1}
