"""Step concurrency groups: the declaration, its check and defaults, and the lease rules on a real Redis."""

from __future__ import annotations

import time

import pytest

from statemachines.contract import check_pipeline
from statemachines.pipeline_check import check_definition
from statemachines.step_concurrency import (
    HOLD,
    MOOT,
    NEWEST_WINS,
    QUEUE,
    WAIT,
    Claimant,
    Declaration,
    claim,
    first_told,
    group_key,
    parse_declaration,
    release,
    renew,
)
from statemachines.step_defaults import CONCURRENCY_WAIT_RETRY, fill_step_defaults

KEY = "stepline:step-concurrency:octo/app:deploy-production"
A, B, C = Claimant("run-a", "deploy", 1.0), Claimant("run-b", "deploy", 2.0), Claimant("run-c", "deploy", 3.0)


def pipeline(params: dict, resource: str = "${activity:deploy}") -> dict:
    step = {"Type": "Task", "Resource": resource, "End": True, "Parameters": params}
    return {"StartAt": "Deploy", "States": {"Deploy": step}}


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("deploy-production", Declaration("deploy-production", QUEUE)),
        ("deploy-{branch} newest-wins", Declaration("deploy-{branch}", NEWEST_WINS)),
        ("deploy cancel-in-progress", Declaration("deploy", NEWEST_WINS)),
        ("deploy queue", Declaration("deploy", QUEUE)),
    ],
)
def test_a_declaration_has_the_pipeline_level_grammar(written, expected):
    assert parse_declaration(written) == expected


@pytest.mark.parametrize("written", ["", "deploy now", "-x", "a" * 101, {"group": "x"}, 3, "a b c"])
def test_a_bad_declaration_is_refused(written):
    with pytest.raises(ValueError, match="'concurrency' must be a group name"):
        parse_declaration(written)


def test_a_step_with_a_group_gets_its_wait_retry_first_and_checks_clean():
    flaky = {"ErrorEquals": ["States.ALL"], "MaxAttempts": 1}
    definition = pipeline({"step": "deploy", "commands": ["make deploy"], "concurrency": "deploy-production"})
    definition["States"]["Deploy"]["Retry"] = [flaky]
    filled = fill_step_defaults(definition)["States"]["Deploy"]
    assert filled["Retry"][0] == CONCURRENCY_WAIT_RETRY and filled["Retry"][-1] == flaky
    assert check_definition(definition) == []
    plain = fill_step_defaults(pipeline({"step": "deploy", "commands": ["make deploy"]}))["States"]["Deploy"]
    assert all("Stepline.ConcurrencyWait" not in r["ErrorEquals"] for r in plain["Retry"])


@pytest.mark.parametrize(
    ("params", "resource", "message"),
    [
        ({"concurrency": "deploy now"}, "${activity:deploy}", "'concurrency' must be a group name"),
        ({"concurrency.$": "$.group"}, "${activity:deploy}", "not computed"),
        ({"concurrency": "deploy"}, "${activity:approval}", "an approval step takes no 'concurrency'"),
    ],
)
def test_a_bad_group_is_named_at_check_time_with_its_location(params, resource, message):
    definition = pipeline({"step": "deploy", "commands": ["make deploy"], **params}, resource)
    problems = [p for p in check_definition(definition) if message in p.message]
    assert problems and problems[0].location == "/States/Deploy"


def test_a_written_retry_that_drops_the_wait_is_named():
    definition = fill_step_defaults(
        pipeline({"step": "deploy", "commands": ["make deploy"], "concurrency": "deploy"})
    )
    definition["States"]["Deploy"]["Retry"] = definition["States"]["Deploy"]["Retry"][1:]
    assert check_pipeline(definition) == [
        "Deploy: a step with a concurrency group needs a Retry on Stepline.ConcurrencyWait (the default has one)"
    ]


def test_groups_are_per_repository_and_branch_and_an_untrusted_runs_are_its_pull_requests():
    declaration = Declaration("deploy-{branch}", QUEUE)
    run = {"repository": "octo/app", "branch": "main", "pull_request": None}
    assert group_key(declaration, run, True) == (
        "deploy-main",
        "stepline:step-concurrency:octo/app:deploy-main",
    )
    fork = {"repository": "octo/app", "branch": "main", "pull_request": {"number": 9}}
    name, key = group_key(declaration, fork, False)
    assert name == "untrusted/pr-9/deploy-main" and key.endswith(":untrusted/pr-9/deploy-main")


def test_queue_only_the_newest_waits_and_takes_the_group_when_it_is_freed(redis_client):
    held = claim(redis_client, KEY, A, QUEUE, 60_000)
    assert held.kind == HOLD
    waiting = claim(redis_client, KEY, B, QUEUE, 60_000)
    assert (waiting.kind, waiting.holder["run_id"], waiting.supersede) == (WAIT, "run-a", [])
    newer = claim(redis_client, KEY, C, QUEUE, 60_000)
    assert (newer.kind, newer.supersede) == (WAIT, ["run-b"])  # the older waiter is superseded
    moot = claim(redis_client, KEY, B, QUEUE, 60_000)  # B asks again before the service stopped it
    assert (moot.kind, moot.by["run_id"]) == (MOOT, "run-c")
    assert claim(redis_client, KEY, C, QUEUE, 60_000).kind == WAIT
    release(redis_client, KEY, held.lease)
    assert claim(redis_client, KEY, C, QUEUE, 60_000).kind == HOLD


def test_newest_wins_asks_to_supersede_the_holder_and_an_older_run_never_runs_after_a_newer(redis_client):
    held = claim(redis_client, KEY, B, NEWEST_WINS, 60_000)
    newer = claim(redis_client, KEY, C, NEWEST_WINS, 60_000)
    assert (newer.kind, newer.supersede) == (WAIT, ["run-b"])  # the holder's run is superseded first
    release(redis_client, KEY, held.lease)  # its step stopped
    took = claim(redis_client, KEY, C, NEWEST_WINS, 60_000)
    assert took.kind == HOLD
    release(redis_client, KEY, took.lease)
    older = claim(redis_client, KEY, A, QUEUE, 60_000)  # free, but a newer run's step already deployed
    assert (older.kind, older.by["run_id"]) == (MOOT, "run-c")


def test_another_step_of_the_holders_run_waits_without_superseding_anyone(redis_client):
    claim(redis_client, KEY, A, NEWEST_WINS, 60_000)
    other = claim(redis_client, KEY, Claimant("run-a", "deploy-eu", 1.0), NEWEST_WINS, 60_000)
    assert (other.kind, other.supersede) == (WAIT, [])
    assert redis_client.get(KEY + ":waiting") is None


def test_a_lease_not_renewed_expires_and_the_group_is_free(redis_client):
    held = claim(redis_client, KEY, A, QUEUE, 300)
    assert renew(redis_client, KEY, held.lease, 300)
    assert claim(redis_client, KEY, B, QUEUE, 60_000).kind == WAIT
    deadline = time.monotonic() + 10
    while redis_client.exists(KEY) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert claim(redis_client, KEY, B, QUEUE, 60_000).kind == HOLD
    assert not renew(redis_client, KEY, held.lease, 300)  # the dead holder's lease is not revived
    release(redis_client, KEY, held.lease)  # nor does its late release free B's
    assert redis_client.exists(KEY)


def test_a_waiter_whose_run_ended_waits_no_more(redis_client):
    held = claim(redis_client, KEY, A, QUEUE, 60_000)
    assert claim(redis_client, KEY, C, QUEUE, 60_000).kind == WAIT  # then C is cancelled
    assert claim(redis_client, KEY, B, QUEUE, 60_000).kind == MOOT  # C still counts while live
    waiting = claim(redis_client, KEY, B, QUEUE, 60_000, ended=lambda run_id: run_id == "run-c")
    assert (waiting.kind, waiting.supersede) == (WAIT, [])  # nobody to supersede: C ended
    release(redis_client, KEY, held.lease)
    assert claim(redis_client, KEY, B, QUEUE, 60_000, ended=lambda run_id: run_id == "run-c").kind == HOLD


def test_a_waiting_status_is_told_once_per_change(redis_client):
    assert first_told(redis_client, "run-b", "deploy", "waiting for concurrency group g held by run a")
    assert not first_told(redis_client, "run-b", "deploy", "waiting for concurrency group g held by run a")
    assert first_told(redis_client, "run-b", "deploy", "waiting for concurrency group g held by run c")
