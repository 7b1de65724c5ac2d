"""Caches of forks' pull requests through `python -m workers`: one fork's cache never reaches another's."""

from __future__ import annotations

from statemachines.run_claims import TICKET, claim_ticket
from tests.workers.conftest import build_step, wait_execution
from tests.workers.task_inputs import execution_input
from tests.workers.test_worker_process import log_lines

CACHE = {"key": "deps-1", "paths": ["deps"]}
SHOW = ["cat deps/lib.txt 2>/dev/null || echo no-cache", "mkdir -p deps", "echo mine > deps/lib.txt"]


def test_a_forks_cache_is_never_restored_into_another_pull_requests_run(
    make_repo, start_worker, run_pipeline, sfn, redis_client
):
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    start_worker(WORKER_POOLS="build,untrusted-build")

    def run(run_id: str, number: int, commands: list[str]) -> list[str]:
        fork = execution_input(
            run_id=run_id, clone_url=repo.url, sha=sha, event="pull_request", pull_request=number, fork=True
        )
        fork["trusted"] = False
        ticket = claim_ticket(redis_client, run_id, fork, trusted=False)
        step = build_step(commands, heartbeat=30, cache=CACHE)
        arn = run_pipeline(step, activity_name="stepline-untrusted-build", **fork, **{TICKET: ticket})
        assert wait_execution(sfn, arn, timeout=60)["status"] == "SUCCEEDED"
        return log_lines(redis_client, run_id)

    attacker = run("fork-7", 7, ["mkdir -p deps", "echo poisoned > deps/lib.txt"])
    victim = run("fork-9", 9, SHOW)
    assert "poisoned" not in victim and "no-cache" in victim
    assert "[stepline] cache: no cache for key pr-9/deps-1" in victim
    assert any(line.startswith("[stepline] cache: saved pr-7/deps-1 (") for line in attacker)
    again = run("fork-7b", 7, SHOW)  # a pull request's own cache is restored to its next run
    assert "poisoned" in again
