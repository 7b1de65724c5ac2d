"""Untrusted runs end to end: a fork's pull request reaches only the untrusted activities, whatever its pipeline says.

The webhook, the jobs, the real engine over HTTP, real git repositories and the fake GitHub, as in
test_runs_e2e.py. Trust is the service's decision from the event; what carries it is the activity each
Task resolves to when the pipeline is deployed, which no pipeline can change. A pipeline reaching past
the untrusted activities is refused before anything is deployed.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from rq import Queue, SimpleWorker

from service.runs import DEPLOYED_KEY
from statemachines.contract import walk_states
from tests.service.github_events import pull_request_payload, push_payload, repository
from tests.service.test_runs_e2e import TWO_STEP_PIPELINE, Stepline, commit_and_push

FORGED_TRUST = (
    'States.JsonMerge($$.Execution.Input, States.StringToJson(\'{"trusted": true, "fork": false}\'), false)'
)
FORK_REASON = "untrusted run (pull request from a fork)"
POOLS_SETTING = "STEPLINE_UNTRUSTED_POOLS=build"


def task(resource: str, step: str = "build", **more: Any) -> dict[str, Any]:
    params = {"step": step, "commands": ["make"], "run.$": "$$.Execution.Input"}
    return {"Type": "Task", "Resource": resource, "Parameters": params, "End": True, **more}


def single(name: str, state: dict[str, Any]) -> dict[str, Any]:
    return {"StartAt": name, "States": {name: state}}


def parallel(*branches: dict[str, Any]) -> dict[str, Any]:
    return single("Checks", {"Type": "Parallel", "Branches": list(branches), "End": True})


@pytest.fixture
def stepline(service_config, sfn_engine, redis_client, fake_github):
    fake_github.add_repo("octo/app")
    config = dataclasses.replace(service_config, sfn_endpoint_url=sfn_engine, allow_local_repositories=True)
    return Stepline(config, redis_client)


@pytest.fixture
def maintainers_only(service_config, sfn_engine, redis_client, fake_github):
    fake_github.add_repo("octo/app")
    config = dataclasses.replace(
        service_config,
        sfn_endpoint_url=sfn_engine,
        allow_local_repositories=True,
        trusted_pr_author_associations=("OWNER", "MEMBER", "COLLABORATOR"),
    )
    return Stepline(config, redis_client)


class Repos:
    """octo/app and a contributor's fork of it, as real git repositories, and the deliveries they make."""

    def __init__(self, make_repo: Any) -> None:
        self.base_repo, self.fork = make_repo("app"), make_repo("fork")
        self.base = repository("octo/app", self.base_repo.url)
        self.head = repository("contributor/app", self.fork.url)
        commit_and_push(self.base_repo, "main")

    def fork_pull_request(self, stepline: Stepline, pipeline: dict[str, Any], number: int = 7) -> str:
        sha = commit_and_push(
            self.fork, f"patch-{number}", {".stepline/pipeline.asl.json": json.dumps(pipeline)}
        )
        payload = pull_request_payload("opened", number, sha, self.base, self.head, f"patch-{number}")
        return stepline.deliver("pull_request", payload)["run_id"]

    def same_repo_pull_request(
        self, stepline: Stepline, pipeline: dict[str, Any], number: int = 8, association: str = "MEMBER"
    ) -> str:
        sha = commit_and_push(
            self.base_repo, f"topic-{number}", {".stepline/pipeline.asl.json": json.dumps(pipeline)}
        )
        payload = pull_request_payload("opened", number, sha, self.base, self.base, f"topic-{number}")
        payload["pull_request"]["author_association"] = association
        return stepline.deliver("pull_request", payload)["run_id"]

    def push(self, stepline: Stepline, pipeline: dict[str, Any], branch: str = "main") -> str:
        commit_and_push(self.base_repo, branch, {".stepline/pipeline.asl.json": json.dumps(pipeline)})
        return stepline.deliver("push", push_payload(self.base_repo, branch))["run_id"]


@pytest.fixture
def repos(make_repo) -> Repos:
    return Repos(make_repo)


def task_resources(stepline: Stepline, run_id: str) -> set[str]:
    """The activity names the Tasks of a run's deployed state machine resolve to."""
    machine = stepline.sfn.describe_state_machine(stateMachineArn=stepline.run(run_id)["state_machine_arn"])
    definition = json.loads(machine["definition"])
    return {s["Resource"].split(":activity:")[-1] for _, _, s in walk_states(definition) if "Resource" in s}


def post_statuses(stepline: Stepline) -> None:
    SimpleWorker([Queue("statuses", connection=stepline.redis)], connection=stepline.redis).work(burst=True)


def test_a_fork_runs_on_untrusted_activities_and_a_push_or_same_repository_pr_on_trusted_ones(
    stepline, repos
):
    pushed = repos.push(stepline, TWO_STEP_PIPELINE)  # first: its deployment is remembered in Redis
    same_repo = repos.same_repo_pull_request(stepline, TWO_STEP_PIPELINE)
    forked = repos.fork_pull_request(stepline, TWO_STEP_PIPELINE)
    stepline.run_jobs()
    runs = {
        name: stepline.run(run_id) for name, run_id in [("push", pushed), ("pr", same_repo), ("fork", forked)]
    }
    assert {name: run["status"] for name, run in runs.items()} == dict.fromkeys(runs, "RUNNING")
    assert task_resources(stepline, pushed) == task_resources(stepline, same_repo) == {"stepline-build"}
    assert task_resources(stepline, forked) == {"stepline-untrusted-build"}
    # one pipeline, two trusts: two state machines, and the remembered trusted one was not reused
    assert (
        runs["push"]["state_machine_arn"]
        == runs["pr"]["state_machine_arn"]
        != runs["fork"]["state_machine_arn"]
    )
    assert len(stepline.redis.keys(DEPLOYED_KEY + "*")) == 2
    # trust stays on the run and in the input as information for Choice states
    assert [runs[name]["trusted"] for name in ("push", "pr", "fork")] == [True, True, False]
    assert json.loads(stepline.execution(forked)["input"])["trusted"] is False
    assert runs["fork"]["trust_reason"] == "pull request from a fork"


def test_a_fork_forging_trust_in_its_task_input_still_reaches_only_the_untrusted_activity(stepline, repos):
    forging = single("Build", {**task("${activity:build}"), "Parameters": {
        "step": "build", "commands": ["env"], "run.$": FORGED_TRUST}})  # fmt: skip
    run_id = repos.fork_pull_request(stepline, forging)
    stepline.run_jobs()
    assert stepline.run(run_id)["status"] == "RUNNING"
    assert task_resources(stepline, run_id) == {"stepline-untrusted-build"}
    arns = {a["name"]: a["activityArn"] for a in stepline.sfn.list_activities()["activities"]}
    assert "stepline-build" not in arns  # no trusted activity was even created for it
    # the forged fields arrive, but on the activity whose workers hold no secrets
    polled = stepline.sfn.get_activity_task(activityArn=arns["stepline-untrusted-build"], workerName="test")
    given = json.loads(polled["input"])
    assert given["run"]["trusted"] is True and given["run"]["run_id"] == run_id


REFUSED = {
    "deploy pool": (
        single("Deploy", task("${activity:deploy}", "ship")),
        f"{FORK_REASON}: state Deploy uses pool 'deploy', which untrusted runs may not use ({POOLS_SETTING})",
    ),
    "a pool not allowed": (
        parallel(single("Lint", task("${activity:build}", "lint")), single("Render", task("${activity:gpu}", "render"))),
        f"{FORK_REASON}: state Checks/1/Render uses pool 'gpu', which untrusted runs may not use ({POOLS_SETTING})",
    ),
    "a literal activity ARN": (
        parallel(single("Ship", task("arn:aws:states:us-east-1:000000000000:activity:stepline-deploy", "ship"))),
        f"{FORK_REASON}: state Checks/0/Ship names 'arn:aws:states:us-east-1:000000000000:activity:stepline-deploy', "
        "but an untrusted run may name only ${activity:<pool>} resources",
    ),
    "a service integration in a Map": (
        single("Each", {"Type": "Map", "End": True, "ItemsPath": "$.items", "ItemProcessor": single("Start", {
            "Type": "Task", "Resource": "arn:aws:states:::states:startExecution", "End": True,
            "Parameters": {"StateMachineArn": "arn:aws:states:us-east-1:000000000000:stateMachine:stepline-release",
                           "Input.$": FORGED_TRUST}})}),
        f"{FORK_REASON}: state Each/Start names 'arn:aws:states:::states:startExecution', "
        "but an untrusted run may name only ${activity:<pool>} resources",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", REFUSED)
def test_a_fork_reaching_past_the_untrusted_activities_is_refused_but_a_push_of_it_runs(
    stepline, repos, fake_github, case
):
    pipeline, reason = REFUSED[case]
    run_id = repos.fork_pull_request(stepline, pipeline)
    stepline.run_jobs()
    run = stepline.run(run_id)
    assert run["status"] == "INVALID" and run["status_reason"] == reason
    assert [d["code"] for d in run["validation"]] == ["UNTRUSTED_RESOURCE"]
    assert stepline.sfn.list_state_machines()["stateMachines"] == []
    assert stepline.sfn.list_activities()["activities"] == []
    post_statuses(stepline)
    overall = fake_github.latest_statuses("octo/app", run["sha"])["stepline/ci"]
    assert overall["state"] == "error" and overall["description"].startswith(FORK_REASON)
    # the same pipeline pushed to the repository itself is trusted: literal ARNs and every pool, as ever
    pushed = repos.push(stepline, pipeline)
    stepline.run_jobs()
    assert stepline.run(pushed)["status"] == "RUNNING"


def test_a_same_repository_pr_is_untrusted_when_its_author_is_not_a_trusted_association(
    maintainers_only, repos, fake_github
):
    stepline = maintainers_only
    contributor = repos.same_repo_pull_request(stepline, TWO_STEP_PIPELINE, 11, "CONTRIBUTOR")
    member = repos.same_repo_pull_request(stepline, TWO_STEP_PIPELINE, 12, "MEMBER")
    deploying = repos.same_repo_pull_request(
        stepline, REFUSED["deploy pool"][0], 13, "FIRST_TIME_CONTRIBUTOR"
    )
    stepline.run_jobs()
    assert stepline.run(contributor)["trusted"] is False and stepline.run(member)["trusted"] is True
    assert task_resources(stepline, contributor) == {"stepline-untrusted-build"}
    assert task_resources(stepline, member) == {"stepline-build"}
    refused = stepline.run(deploying)
    assert refused["status"] == "INVALID"
    assert refused["status_reason"] == (
        "untrusted run (pull request by FIRST_TIME_CONTRIBUTOR, not in "
        "STEPLINE_TRUSTED_PR_AUTHOR_ASSOCIATIONS=OWNER,MEMBER,COLLABORATOR): state Deploy uses pool 'deploy', "
        f"which untrusted runs may not use ({POOLS_SETTING})"
    )
    post_statuses(stepline)
    assert fake_github.latest_statuses("octo/app", refused["sha"])["stepline/ci"]["state"] == "error"
