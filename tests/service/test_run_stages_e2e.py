"""Stage timing through the real stack: a push stamps every stage from the webhook to the final status,
the workers' stamps travel through Redis, and the run page shows the timeline."""

from __future__ import annotations

import itertools
import json

import pytest

from service.retention import trim_finished_runs
from statemachines.run_stages import STAGES, RunStages, stages_key
from tests.service.dashboard_seed import ADMIN_TOKEN, seed_run
from tests.service.github_events import deliver, push_payload

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PIPELINE = {
    "StartAt": "Build",
    "States": {
        "Build": {
            "Type": "Task", "Resource": "${activity:build}", "HeartbeatSeconds": 10, "End": True,
            "Parameters": {"step": "build", "commands": ["echo built"], "run.$": "$$.Execution.Input"},
        },
    },
}  # fmt: skip
SERVICE_SIDE = ("webhook_received", "delivery_recorded", "execution_started", "task_handed_out")
WORKER_SIDE = (
    "task_handed_out",
    "checkout_done",
    "first_command_started",
    "last_command_ended",
    "task_answered",
)


def in_order(stamps: dict[str, int], names: tuple[str, ...]) -> bool:
    return all(stamps[a] <= stamps[b] for a, b in itertools.pairwise(names))


@pytest.mark.slow
def test_a_push_stamps_every_stage_and_the_run_page_shows_the_timeline(
    run_stack, make_repo, redis_client, fake_github
):
    repo = make_repo("app")
    sha = repo.commit({".stepline/pipeline.asl.json": json.dumps(PIPELINE)}, "one step")
    repo.checkout("feature/stages")
    repo.push("feature/stages")
    response = deliver(run_stack.client, "push", push_payload(repo, "feature/stages"))
    assert response.status_code == 202, response.json
    run_id = response.json["run_id"]
    assert run_stack.ended(run_id)["status"] == "SUCCEEDED"
    stages = RunStages(redis_client)

    # the final status is posted by a status job after the run ended
    def complete() -> dict[str, int] | None:
        # the publisher posts only the newest wanted status: a run fast enough never shows its pending one
        pending = any(status["state"] == "pending" for status in fake_github.statuses("octo/app", sha))
        wanted = {stage.name for stage in STAGES if pending or stage.name != "pending_posted"}
        found = stages.read(run_id)
        return found if set(found) == wanted else None

    stamps = run_stack.wait(complete)
    assert in_order(stamps, SERVICE_SIDE) and in_order(stamps, WORKER_SIDE)
    assert stamps["task_answered"] <= stamps["final_posted"]
    assert stamps["webhook_received"] == min(stamps.values())

    page = run_stack.client.get(f"/runs/{run_id}", headers=ADMIN)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Timeline" in html
    for name in stamps:
        assert f'data-stage="{name}"' in html
    assert "(slowest)" in html

    assert trim_finished_runs(run_stack.index, 1, now=stamps["final_posted"] / 1000 + 2 * 86400) == 1
    assert not redis_client.exists(stages_key(run_id))  # retention forgets the timeline with the run


def test_stamps_keep_the_first_beginning_and_the_last_end(redis_client):
    stages = RunStages(redis_client, keep_seconds=60)
    stages.stamp("r1", "task_handed_out", 1000)
    stages.stamp("r1", "task_handed_out", 2000)  # a second step's task: the run began at the first
    stages.stamp("r1", "task_answered", 3000)
    stages.stamp("r1", "task_answered", 4000)  # the last answer ends the run's work
    assert stages.read("r1") == {"task_handed_out": 1000, "task_answered": 4000}
    assert [(row["label"], row["offset_ms"], row["since_previous_ms"]) for row in stages.timeline("r1")] == [
        ("task handed out", 0, None),
        ("task answered", 3000, 3000),
    ]
    assert 0 < redis_client.ttl(stages_key("r1")) <= 60


def test_the_timeline_reads_in_the_order_the_stages_happened(redis_client):
    stages = RunStages(redis_client)
    stages.stamp("r2", "execution_started", 1000)
    stages.stamp("r2", "task_handed_out", 1020)  # the worker took the task before the pending status went out
    stages.stamp("r2", "pending_posted", 1070)
    rows = stages.timeline("r2")
    assert [row["stage"] for row in rows] == ["execution_started", "task_handed_out", "pending_posted"]
    assert [row["since_previous_ms"] for row in rows] == [None, 20, 50]


@pytest.mark.slow
def test_a_task_naming_a_recorded_run_without_its_claim_is_refused_and_writes_nothing_into_it(
    run_stack, make_repo, redis_client
):
    seed_run(redis_client, run_id="victim", status="RUNNING")  # a run no claim vouches for
    pretender = {
        "run_id": "victim",
        "repository.$": "$$.Execution.Input.repository",
        "clone_url.$": "$$.Execution.Input.clone_url",
        "sha.$": "$$.Execution.Input.sha",
    }
    pipeline = json.loads(json.dumps(PIPELINE))
    pipeline["States"]["Build"]["Parameters"] = {"step": "build", "commands": ["true"], "run": pretender}
    repo = make_repo("app")
    repo.commit({".stepline/pipeline.asl.json": json.dumps(pipeline)}, "pretend")
    repo.checkout("feature/pretend")
    repo.push("feature/pretend")
    response = deliver(run_stack.client, "push", push_payload(repo, "feature/pretend"))
    run_id = response.json["run_id"]
    # the victim is a run the service recorded but no claim vouches for (its claim expired, or it never
    # started): the worker refuses the task, so the pretender's run fails and the victim gets nothing
    assert run_stack.ended(run_id)["status"] == "FAILED"
    assert "build" not in run_stack.steps("victim")
    assert not set(RunStages(redis_client).read("victim")) & set(WORKER_SIDE)
    assert not set(RunStages(redis_client).read(run_id)) & set(WORKER_SIDE)
