"""From a signed webhook to a running execution: the real engine, Redis, git repositories and the fake GitHub.

The rq jobs run in this process with a SimpleWorker in burst mode against the real Redis; nothing of
Stepline is faked. Builds never finish here (no worker polls the activities), so runs stay RUNNING
until something supersedes or cancels them.
"""

from __future__ import annotations

import dataclasses
import json
import threading
from typing import Any

import pytest
from rq import Queue, SimpleWorker

from service.app import create_app
from service.job_context import job_context, use_config
from service.run_index import RunIndex
from statemachines.run_claims import TICKET, without_ticket
from tests.harness.git_repos import git
from tests.harness.ports import free_port
from tests.service.github_events import (
    ZERO,
    delete_payload,
    deliver,
    pull_request_payload,
    push_payload,
    repository,
)

TWO_STEP_PIPELINE = {
    "StartAt": "Checks",
    "States": {
        "Checks": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Lint", "States": {"Lint": {
                    "Type": "Task", "Resource": "${activity:build}", "End": True,
                    "Parameters": {"step": "lint", "commands": ["make lint"], "run.$": "$$.Execution.Input"}}}},
                {"StartAt": "Test", "States": {"Test": {
                    "Type": "Task", "Resource": "${activity:build}", "End": True,
                    "Parameters": {"step": "test", "commands": ["make test"], "run.$": "$$.Execution.Input"}}}},
            ],
            "End": True,
        }
    },
}  # fmt: skip


class Stepline:
    """The web app and the jobs, as the web and jobs processes would run them, plus inspection helpers."""

    def __init__(self, config: Any, redis_client: Any) -> None:
        use_config(config)
        self.config = config
        self.redis = redis_client
        self.client = create_app(config).test_client()
        self.index = RunIndex(redis_client)
        self.sfn = job_context().sfn

    def deliver(self, event: str, payload: dict[str, Any], delivery_id: str | None = None) -> Any:
        response = deliver(self.client, event, payload, delivery_id)
        assert response.status_code in (200, 202), response.json
        return response.json

    def run_jobs(self) -> None:
        worker = SimpleWorker([Queue("runs", connection=self.redis)], connection=self.redis)
        worker.work(burst=True)

    def run(self, run_id: str) -> dict[str, Any]:
        run = self.index.get(run_id)
        assert run is not None
        return run

    def execution(self, run_id: str) -> dict[str, Any]:
        return self.sfn.describe_execution(executionArn=self.run(run_id)["execution_arn"])

    def status_jobs(self) -> list[tuple[str, tuple]]:
        return [
            (job.func_name.rsplit(".", 1)[-1], job.args)
            for job in Queue("statuses", connection=self.redis).jobs
        ]

    def executions(self) -> list[dict[str, Any]]:
        found = []
        for machine in self.sfn.list_state_machines()["stateMachines"]:
            found += self.sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
        return found


@pytest.fixture
def stepline(service_config, sfn_engine, redis_client):
    config = dataclasses.replace(service_config, sfn_endpoint_url=sfn_engine, allow_local_repositories=True)
    return Stepline(config, redis_client)


def commit_and_push(repo, branch: str, files: dict[str, str] | None = None, message: str = "change") -> str:
    sha = repo.commit(files or {"src.txt": message}, message, branch=branch)
    repo.push(branch)
    return sha


def test_push_to_a_new_branch_starts_an_execution_of_the_default_pipeline(stepline, make_repo):
    repo = make_repo("app")
    sha = commit_and_push(repo, "feature/login", message="Add login")
    run_id = stepline.deliver("push", push_payload(repo, "feature/login"))["run_id"]
    stepline.run_jobs()
    run = stepline.run(run_id)
    assert run["status"] == "RUNNING" and run["pipeline_path"] == "default" and run["steps"] == ["build"]
    execution = stepline.execution(run_id)
    assert execution["status"] == "RUNNING"
    given = json.loads(execution["input"])
    # the ticket that vouches for the run's tasks is in the execution only, never in the run record
    assert without_ticket(given) == run["execution_input"] and len(given[TICKET]) > 20
    for page in (f"/api/runs/{run_id}", f"/api/runs/{run_id}/graph"):  # the graph shows every state's input
        answer = stepline.client.get(page)
        assert answer.status_code == 200 and given[TICKET] not in answer.get_data(as_text=True)
    assert (
        run["execution_input"] | {"run_id": run_id, "sha": sha, "branch": "feature/login", "trusted": True}
        == run["execution_input"]
    )
    assert ":stateMachine:stepline-ci-" in run["state_machine_arn"]
    assert stepline.index.by_execution_arn(run["execution_arn"])["run_id"] == run_id
    assert stepline.status_jobs() == [("report_run_started", (run_id,))]


def test_pushes_to_main_use_the_in_repo_pipeline_and_are_never_superseded(stepline, make_repo):
    repo = make_repo("app")
    pipeline = json.dumps(TWO_STEP_PIPELINE)
    commit_and_push(repo, "main", {".stepline/pipeline.asl.json": pipeline}, "first")
    first = stepline.deliver("push", push_payload(repo, "main"))["run_id"]
    stepline.run_jobs()
    before = repo.remote_ref("refs/heads/main")
    commit_and_push(repo, "main", {"README": "second"}, "second")
    second = stepline.deliver("push", push_payload(repo, "main", before=before))["run_id"]
    stepline.run_jobs()
    runs = [stepline.run(first), stepline.run(second)]
    assert [r["status"] for r in runs] == ["RUNNING", "RUNNING"]
    assert runs[0]["steps"] == ["lint", "test"] and runs[0]["pipeline_path"] == ".stepline/pipeline.asl.json"
    assert runs[0]["state_machine_arn"] == runs[1]["state_machine_arn"]  # one pipeline, one state machine
    changed = {**TWO_STEP_PIPELINE, "Comment": "changed"}
    commit_and_push(repo, "main", {".stepline/pipeline.asl.json": json.dumps(changed)}, "third")
    third = stepline.deliver("push", push_payload(repo, "main"))["run_id"]
    stepline.run_jobs()
    assert stepline.run(third)["state_machine_arn"] != runs[0]["state_machine_arn"]
    assert stepline.execution(first)["status"] == "RUNNING"


def test_force_push_supersedes_the_running_build_of_the_branch(stepline, make_repo):
    repo = make_repo("app")
    old_sha = commit_and_push(repo, "topic", message="wip")
    old = stepline.deliver("push", push_payload(repo, "topic"))["run_id"]
    stepline.run_jobs()
    git("commit", "--amend", "-q", "-m", "wip, amended", cwd=repo.work)
    repo.push("topic", force=True)
    payload = push_payload(repo, "topic", before=old_sha) | {"forced": True}
    new = stepline.deliver("push", payload)["run_id"]
    stepline.run_jobs()
    new_sha = stepline.run(new)["sha"]
    superseded = stepline.run(old)
    assert superseded["status"] == "SUPERSEDED" and superseded["superseded_by"] == new
    assert superseded["status_reason"] == f"superseded by {new_sha[:7]}"
    assert stepline.execution(old)["status"] == "ABORTED"
    assert stepline.execution(new)["status"] == "RUNNING"
    assert ("report_run_cancelled", (old, f"superseded by {new_sha[:7]}")) in stepline.status_jobs()
    assert [e["action"] for e in stepline.index.audit(old)] == ["started", "superseded"]


def test_pull_request_from_a_fork_builds_the_fork_untrusted_and_synchronize_supersedes(stepline, make_repo):
    base_repo, fork = make_repo("app"), make_repo("fork")
    commit_and_push(base_repo, "main")
    first_sha = commit_and_push(
        fork, "patch-1", {".stepline/pipeline.asl.json": json.dumps(TWO_STEP_PIPELINE)}
    )
    base = repository("octo/app", base_repo.url)
    head = repository("contributor/app", fork.url)
    opened = stepline.deliver(
        "pull_request", pull_request_payload("opened", 5, first_sha, base, head, "patch-1")
    )
    stepline.run_jobs()
    run = stepline.run(opened["run_id"])
    assert run["status"] == "RUNNING" and run["fork"] and not run["trusted"] and run["pull_request"] == 5
    assert run["steps"] == ["lint", "test"]  # read from the fork at the head sha
    given = json.loads(stepline.execution(opened["run_id"])["input"])
    assert given["clone_url"] == fork.url and given["repository"] == "octo/app" and given["trusted"] is False
    assert given["pull_request"] == {
        "number": 5, "base_ref": "main", "head_ref": "patch-1", "head_repository": "contributor/app", "draft": False
    }  # fmt: skip
    second_sha = commit_and_push(fork, "patch-1", {"more.txt": "x"})
    payload = pull_request_payload("synchronize", 5, second_sha, base, head, "patch-1") | {
        "before": first_sha
    }
    synced = stepline.deliver("pull_request", payload)
    stepline.run_jobs()
    assert stepline.run(opened["run_id"])["status"] == "SUPERSEDED"
    closed = pull_request_payload("closed", 5, second_sha, base, head, "patch-1")
    stepline.deliver("pull_request", closed)
    stepline.run_jobs()
    assert stepline.run(synced["run_id"])["status"] == "ABORTED"
    assert stepline.execution(synced["run_id"])["status"] == "ABORTED"


def test_skip_ci_starts_nothing_and_asks_for_skipped_statuses(stepline, make_repo):
    repo = make_repo("app")
    commit_and_push(repo, "docs", message="Fix typo [skip ci]")
    run_id = stepline.deliver("push", push_payload(repo, "docs"))["run_id"]
    stepline.run_jobs()
    run = stepline.run(run_id)
    assert run["status"] == "SKIPPED" and run["steps"] == ["build"] and run["execution_arn"] is None
    assert stepline.executions() == []
    assert stepline.status_jobs() == [("report_run_skipped", (run_id, "[skip ci] in the commit message"))]


def test_deleted_branch_cancels_its_open_runs(stepline, make_repo):
    repo = make_repo("app")
    sha = commit_and_push(repo, "gone")
    other = commit_and_push(repo, "stays")
    run_id = stepline.deliver("push", push_payload(repo, "gone"))["run_id"]
    kept = stepline.deliver("push", push_payload(repo, "stays"))["run_id"]
    stepline.run_jobs()
    response = stepline.deliver("push", delete_payload("gone", sha, clone_url=repo.url))
    assert response["action"] == "cancel" and other
    stepline.run_jobs()
    run = stepline.run(run_id)
    assert run["status"] == "ABORTED" and run["status_reason"] == "refs/heads/gone was deleted"
    assert stepline.execution(run_id)["status"] == "ABORTED"
    assert stepline.run(kept)["status"] == "RUNNING"
    assert ("report_run_cancelled", (run_id, "refs/heads/gone was deleted")) in stepline.status_jobs()


def test_fifty_concurrent_redeliveries_start_exactly_one_execution(stepline, make_repo):
    repo = make_repo("app")
    commit_and_push(repo, "race")
    payload = push_payload(repo, "race")
    answers: list[Any] = []
    barrier = threading.Barrier(50)

    app = create_app(stepline.config)

    def send() -> None:
        client = app.test_client()
        barrier.wait()
        answers.append(deliver(client, "push", payload, delivery_id="same-delivery"))

    threads = [threading.Thread(target=send) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(a.status_code for a in answers) == [200] * 49 + [202]
    assert len({a.json["run_id"] for a in answers}) == 1
    stepline.run_jobs()
    run_id = answers[0].json["run_id"]
    # a retried job (the run record reset as if it crashed right after StartExecution) starts nothing new
    stepline.index.update(run_id, status="QUEUED")
    Queue("runs", connection=stepline.redis).enqueue("service.runs.start_run", run_id)
    stepline.run_jobs()
    assert len(stepline.executions()) == 1 and len(stepline.index.list_runs()) == 1
    assert stepline.run(run_id)["status"] == "RUNNING"


def test_invalid_in_repo_pipeline_starts_nothing_and_keeps_the_report(stepline, make_repo):
    repo = make_repo("app")
    broken = {"StartAt": "Build", "States": {"Build": {"Type": "Pass", "Next": "Nowhere"}}}
    commit_and_push(repo, "broken", {".stepline/pipeline.asl.json": json.dumps(broken)})
    run_id = stepline.deliver("push", push_payload(repo, "broken"))["run_id"]
    stepline.run_jobs()
    run = stepline.run(run_id)
    assert run["status"] == "INVALID" and "Nowhere" in run["status_reason"]
    assert run["validation"] and all({"code", "message", "location"} <= set(d) for d in run["validation"])
    assert stepline.executions() == [] and stepline.status_jobs() == [("report_run_invalid", (run_id,))]


def test_pipeline_is_read_through_the_github_contents_api_at_the_commit(stepline, fake_github):
    fake_github.add_repo("octo/web")
    sha = "c" * 40
    yaml_pipeline = (
        "StartAt: Build\nStates:\n  Build:\n    Type: Task\n    Resource: ${activity:gpu}\n"
        "    Parameters: {step: render, commands: [make render], run.$: $$.Execution.Input}\n    End: true\n"
    )
    fake_github.add_file("octo/web", sha, ".stepline/pipeline.asl.yaml", yaml_pipeline)
    payload = {
        "ref": "refs/heads/main", "before": ZERO, "after": sha,
        "head_commit": {"id": sha, "message": "Render", "author": {"name": "Ada"}},
        "repository": repository("octo/web", "https://github.example/octo/web.git"),
    }  # fmt: skip
    run_id = stepline.deliver("push", payload)["run_id"]
    stepline.run_jobs()
    run = stepline.run(run_id)
    assert run["status"] == "RUNNING" and run["steps"] == ["render"]
    assert run["pipeline_path"] == ".stepline/pipeline.asl.yaml"
    asked = [r.query.get("ref") for r in fake_github.requests("GET", "/contents/.stepline/")]
    assert [sha] in asked
    activities = [a["name"] for a in stepline.sfn.list_activities()["activities"]]
    assert "stepline-gpu" in activities


def test_push_gets_pending_statuses_on_github_through_the_reporter(stepline, make_repo, fake_github):
    fake_github.add_repo("octo/app")
    repo = make_repo("app")
    sha = commit_and_push(repo, "feature/status")
    stepline.deliver("push", push_payload(repo, "feature/status"))
    stepline.run_jobs()
    worker = SimpleWorker([Queue("statuses", connection=stepline.redis)], connection=stepline.redis)
    worker.work(burst=True)
    latest = fake_github.latest_statuses("octo/app", sha)
    assert latest and all(status["state"] == "pending" for status in latest.values())


def test_github_failing_to_serve_the_pipeline_fails_the_job_and_finally_the_run(stepline, fake_github):
    fake_github.add_repo("octo/web")
    sha = "d" * 40
    payload = {
        "ref": "refs/heads/main", "before": ZERO, "after": sha,
        "head_commit": {"id": sha, "message": "x", "author": {"name": "Ada"}},
        "repository": repository("octo/web", "https://github.example/octo/web.git"),
    }  # fmt: skip
    run_id = stepline.deliver("push", payload)["run_id"]
    fake_github.fail_next(100, status=500)
    stepline.run_jobs()  # the webhook's job has retries left: the run waits for the retry
    assert stepline.run(run_id)["status"] == "QUEUED"
    Queue("runs", connection=stepline.redis).enqueue("service.runs.start_run", run_id)  # no retry left
    stepline.run_jobs()
    run = stepline.run(run_id)
    assert run["status"] == "ERRORED" and "cannot read the pipeline" in run["status_reason"]
    assert stepline.executions() == []
    assert stepline.status_jobs()[-1] == ("report_run_cancelled", (run_id, run["status_reason"]))


def test_a_start_that_fails_unexpectedly_ends_the_run_with_an_error_status(
    service_config, redis_client, make_repo
):
    # Step Functions unreachable: nothing start_run expects, so the last attempt must still end the run
    config = dataclasses.replace(
        service_config, sfn_endpoint_url=f"http://127.0.0.1:{free_port()}", allow_local_repositories=True
    )
    stepline = Stepline(config, redis_client)
    repo = make_repo("app")
    commit_and_push(repo, "main")
    run_id = stepline.deliver("push", push_payload(repo, "main"))["run_id"]
    stepline.run_jobs()
    assert stepline.run(run_id)["status"] == "QUEUED"  # the job has retries left
    Queue("runs", connection=stepline.redis).enqueue("service.runs.start_run", run_id)  # no retry left
    stepline.run_jobs()
    run = stepline.run(run_id)
    assert run["status"] == "ERRORED" and "EndpointConnectionError" in run["status_reason"], run
    assert stepline.status_jobs()[-1] == ("report_run_cancelled", (run_id, run["status_reason"]))
