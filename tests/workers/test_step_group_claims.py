"""Step concurrency groups through `python -m workers`: a pipeline that writes its own `run` (no claim
vouches for it) names any repository it likes; its step must never hold that repository's group."""

from __future__ import annotations

from tests.workers.conftest import build_step, wait_execution, wait_for
from tests.workers.test_worker_process import log_lines

VICTIM = "stepline:step-concurrency:victim/app:deploy-production"


def test_a_step_of_an_unvouched_run_never_holds_another_repositorys_group(
    make_repo, start_worker, run_pipeline, sfn, redis_client
):
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    start_worker()
    step = build_step(
        ["echo holding", "sleep 4"],
        heartbeat=30,
        concurrency="deploy-production",
    )
    # the run as the pipeline wrote it: another repository's name, no ticket
    arn = run_pipeline(step, clone_url=repo.url, sha=sha, run_id="forged-1", repository="victim/app")
    wait_for(lambda: "holding" in log_lines(redis_client, "forged-1"), timeout=60, what="the step runs")
    held = {key.decode() for key in redis_client.keys("stepline:step-concurrency:*")}
    assert VICTIM not in held
    assert "stepline:step-concurrency:unvouched:victim/app:deploy-production" in held
    assert wait_execution(sfn, arn, timeout=60)["status"] == "SUCCEEDED"
