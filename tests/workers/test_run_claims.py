"""A task is the run it names only when the service vouches for it: repository secrets, logs and statuses."""

from __future__ import annotations

import pytest

from statemachines.run_claims import TICKET, claim_ticket, run_record_key
from statemachines.step_logs import StepLogReader
from tests.workers.conftest import SECRET_VALUE, build_step, wait_execution
from tests.workers.task_inputs import execution_input
from tests.workers.test_worker_process import failure_of, log_lines, statuses

PRINT = ['echo "app=${APP_KEY:-none} shared=${DEPLOY_KEY:-none}"', "cat $STEPLINE_EVENT_PATH | tr -d ' \\n'"]


@pytest.fixture
def pushed(make_repo, start_worker, tmp_path):
    """A repository with one commit, and a worker whose secrets file scopes APP_KEY to octo/app: (repo, sha)."""
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    secrets = tmp_path / "scoped-secrets"
    secrets.write_text(f"DEPLOY_KEY={SECRET_VALUE}\n[octo/app]\nAPP_KEY=app-only-value\n")
    start_worker(WORKER_SECRETS_FILE=str(secrets))
    return repo, sha


def test_a_vouched_run_gets_its_repositorys_secrets_and_no_step_sees_the_ticket(
    pushed, run_pipeline, sfn, redis_client
):
    repo, sha = pushed
    run = execution_input(clone_url=repo.url, sha=sha)
    ticket = claim_ticket(redis_client, "run-1", run, trusted=True)
    arn = run_pipeline(build_step(PRINT), **{**run, TICKET: ticket})
    assert wait_execution(sfn, arn)["status"] == "SUCCEEDED"
    lines = log_lines(redis_client)
    assert "app=*** shared=***" in lines  # both given (and masked in the log)
    assert ticket not in " ".join(lines) and TICKET not in " ".join(lines)


def test_a_run_the_service_did_not_start_gets_no_repositorys_secrets(pushed, run_pipeline, sfn, redis_client):
    repo, sha = pushed
    arn = run_pipeline(build_step(PRINT), clone_url=repo.url, sha=sha)
    assert wait_execution(sfn, arn)["status"] == "SUCCEEDED"
    assert "app=none shared=***" in log_lines(redis_client)


def test_a_task_naming_another_run_is_refused_without_touching_that_run(
    pushed, run_pipeline, sfn, redis_client
):
    repo, sha = pushed
    victim = execution_input(run_id="victim", clone_url=repo.url, sha=sha)
    ticket = claim_ticket(redis_client, "victim", victim, trusted=True)
    attempts = [
        {**victim},  # no ticket: the attacker read the run id off the dashboard
        {**victim, TICKET: "guessed"},
        {**victim, TICKET: ticket, "repository": "octo/other"},
    ]
    for forged in attempts:
        arn = run_pipeline(build_step(PRINT), **forged)
        failure = failure_of(sfn, arn)
        assert failure["error"] == "Stepline.InvalidTaskInput" and "victim" in failure["cause"]
    untrusted = run_pipeline(
        build_step(PRINT), activity_name="stepline-untrusted-build", **{**victim, TICKET: ticket}
    )
    assert "started trusted" in failure_of(sfn, untrusted)["cause"]
    assert StepLogReader(redis_client).meta("victim", "test") is None
    assert statuses(redis_client) == []


def test_a_task_naming_a_recorded_run_that_no_claim_vouches_for_is_refused(
    pushed, run_pipeline, sfn, redis_client
):
    """A run the service recorded but never started (skipped, invalid), or whose claim expired first."""
    repo, sha = pushed
    redis_client.hset(run_record_key("old-run"), mapping={"run_id": '"old-run"', "status": '"SUCCEEDED"'})
    arn = run_pipeline(build_step(PRINT), **execution_input(run_id="old-run", clone_url=repo.url, sha=sha))
    failure = failure_of(sfn, arn)
    assert failure["error"] == "Stepline.InvalidTaskInput" and "no claim vouches for" in failure["cause"]
    assert StepLogReader(redis_client).meta("old-run", "test") is None
    assert statuses(redis_client) == []


def test_a_forks_task_naming_another_pull_request_or_branch_is_refused(
    pushed, run_pipeline, sfn, redis_client
):
    # a fork's pipeline can build its own `run` from $$.Execution.Input (the ticket included) and change
    # the rest: the pull request names the step groups it may take, the ref its cache keys' {branch}
    repo, sha = pushed
    fork = execution_input(
        run_id="fork-9",
        clone_url=repo.url,
        sha=sha,
        event="pull_request",
        pull_request=9,
        fork=True,
        trusted=False,
    )
    ticket = claim_ticket(redis_client, "fork-9", fork, trusted=False)
    for forged in ({"pull_request": 7}, {"branch": "release"}, {"ref": "refs/heads/release"}):
        arn = run_pipeline(
            build_step(PRINT), activity_name="stepline-untrusted-build", **{**fork, TICKET: ticket, **forged}
        )
        failure = failure_of(sfn, arn)
        assert failure["error"] == "Stepline.InvalidTaskInput" and "fork-9" in failure["cause"], forged
    honest = run_pipeline(
        build_step(PRINT), activity_name="stepline-untrusted-build", **{**fork, TICKET: ticket}
    )
    assert wait_execution(sfn, honest)["status"] == "SUCCEEDED"
