"""`scripts/run` (what `make run` starts): one machine runs every shipped example pipeline to its end."""

from __future__ import annotations

import time

from statemachines.catalog import load_pipeline, shipped_pipelines
from statemachines.contract import APPROVAL_POOL, activity_pools


def test_the_worker_of_make_run_serves_every_pool_the_examples_use(
    processes, redis_url, sfn_engine, tmp_path
):
    env = {"REDIS_URL": redis_url, "SFN_ENDPOINT_URL": sfn_engine, "GITHUB_WEBHOOK_SECRET": "x"}
    env |= {"WORKER_POOLS": "", "WORKER_DIR": str(tmp_path)}
    run = processes("run", ["scripts/run", "worker"], env)
    deadline = time.monotonic() + 20
    while "slots on pools" not in run.log() and time.monotonic() < deadline:
        run.check_alive()
        time.sleep(0.1)
    served = set(run.log().split("slots on pools ", 1)[1].split()[0].split(","))
    # release.asl.json and approval.asl.yaml deploy on `deploy`: with no worker for it they never end
    used = {pool for name in shipped_pipelines() for pool in activity_pools(load_pipeline(name)[1])}
    assert used - {APPROVAL_POOL} <= served
