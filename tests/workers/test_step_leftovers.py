"""Through `python -m workers`: nothing a step started outlives it, not even a process in a session of its
own, so its artifacts are collected (and its cache packed) with no process of the step left to swap a
file for a link between the worker's check and its read."""

from __future__ import annotations

from statemachines.artifacts import ArtifactStore
from statemachines.blob_store import DirectoryStore
from tests.workers.conftest import build_step, step_pids, wait_execution
from tests.workers.test_build_outputs_worker import vouched

# swaps the wheel for a link to a file of the machine, and back, as fast as it can
SWAPPER = (
    "while :; do ln -sfn /etc/hostname dist/app.whl; echo wheel > dist/t; mv -f dist/t dist/app.whl; done"
)


def test_a_steps_setsid_daemon_is_gone_before_its_artifacts_are_collected(
    make_repo, start_worker, run_pipeline, sfn, redis_client, tmp_path
):
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    start_worker()
    commands = [
        "mkdir -p dist && echo wheel > dist/app.whl",
        f"setsid sh -c '{SWAPPER}' > /dev/null 2>&1 < /dev/null &",
        "setsid sleep 300 &",
        "sleep 0.5",
    ]
    step = build_step(commands, heartbeat=30, artifacts=["dist/app.whl"])
    arn = run_pipeline(step, **vouched(redis_client, repo, sha))
    assert wait_execution(sfn, arn, timeout=60)["status"] == "SUCCEEDED"
    assert step_pids("run-1:test:1") == [] and step_pids("run-1:test:1", "sh") == []
    artifacts = ArtifactStore(redis_client, DirectoryStore(tmp_path / "blobs"))
    kept = artifacts.listing("run-1")["test"]
    # the daemon died with the step: what was there then is what was kept (the wheel, or a refused link)
    for item in kept["files"]:
        with artifacts.open(item["key"]) as blob:
            assert blob.read() == b"wheel\n"
