"""`python -m workers` against the real engine, Redis and git: pass, fail, time out, stop, lose, shut down."""

from __future__ import annotations

import json
import os
import signal
import socket
import time

import boto3
import pytest
from botocore.config import Config
from rq import Queue

from statemachines.run_stops import mark_stopped
from statemachines.step_logs import StepLogReader
from statemachines.worker_presence import served
from tests.harness.ports import free_port
from tests.harness.processes import python_module
from tests.workers.conftest import (
    ROLE_ARN,
    SECRET_VALUE,
    build_step,
    history,
    step_pids,
    wait_execution,
    wait_for,
)
from tests.workers.task_inputs import execution_input


def statuses(redis_client) -> list[tuple]:
    """The status jobs the worker enqueued for the reporter: (run_id, step, state, description)."""
    jobs = Queue("statuses", connection=redis_client).get_jobs()
    assert all(job.func_name == "service.reporter.report_step" for job in jobs)
    return [tuple(job.args[:4]) for job in jobs]


def outcomes(redis_client) -> list[str]:
    """What each status job says the update means (statemachines/outcomes.py: a check run's conclusion)."""
    return [job.args[5] for job in Queue("statuses", connection=redis_client).get_jobs()]


def log_lines(redis_client, run_id="run-1", step="test", attempt=None) -> list[str]:
    lines, _, _ = StepLogReader(redis_client).read(run_id, step, attempt, limit=1_000_000)
    return lines


def test_a_step_that_passes(make_repo, start_worker, run_pipeline, sfn, redis_client):
    repo = make_repo("app")
    sha = repo.commit({"hello.txt": "hello from the repo\n"})
    repo.push("main")
    start_worker()
    arn = run_pipeline(build_step(["cat hello.txt", 'echo "sha=$STEPLINE_SHA"']), clone_url=repo.url, sha=sha)
    done = wait_execution(sfn, arn)
    assert done["status"] == "SUCCEEDED", done
    result = json.loads(done["output"])["steps"]["result"]
    assert result["step"] == "test" and result["status"] == "succeeded" and result["exit_code"] == 0
    assert result["log"] == "run-1:test:1" and result["duration_seconds"] > 0
    lines = log_lines(redis_client)
    assert "hello from the repo" in lines and f"sha={sha}" in lines
    assert StepLogReader(redis_client).meta("run-1", "test")["status"] == "succeeded"
    states = [s[2] for s in statuses(redis_client)]
    assert states == ["pending", "success"]
    assert outcomes(redis_client) == ["running", "passed"]
    started = [e for e in history(sfn, arn) if e["type"] == "ActivityStarted"]
    assert started[0]["activityStartedEventDetails"]["workerName"].count("/") == 2  # host/pid/slot


@pytest.fixture
def pushed(make_repo):
    """A repository with one commit on main: (repo, sha)."""
    repo = make_repo("app")
    sha = repo.commit({"README.md": "app\n"})
    repo.push("main")
    return repo, sha


def failure_of(sfn, arn) -> dict:
    done = wait_execution(sfn, arn)
    assert done["status"] == "FAILED", done
    return {"error": done.get("error"), "cause": done.get("cause") or ""}


def test_a_step_that_fails(pushed, start_worker, run_pipeline, sfn, redis_client):
    repo, sha = pushed
    start_worker()
    arn = run_pipeline(
        build_step(["echo compiling", "echo 'error: it broke' >&2; exit 4", "echo never"]),
        clone_url=repo.url,
        sha=sha,
    )
    failure = failure_of(sfn, arn)
    assert failure["error"] == "Stepline.StepFailed"
    assert (
        "exit 4" in failure["cause"]
        and "error: it broke" in failure["cause"]
        and "status 4" in failure["cause"]
    )
    assert "never" not in log_lines(redis_client)
    assert StepLogReader(redis_client).meta("run-1", "test")["exit_code"] == 4
    (_, _, state, description) = statuses(redis_client)[-1]
    assert state == "failure" and "exited with status 4" in description


def test_a_step_that_times_out(pushed, start_worker, run_pipeline, sfn, redis_client):
    repo, sha = pushed
    start_worker()
    started = time.monotonic()
    arn = run_pipeline(build_step(["echo working; sleep 60"], timeout_seconds=1), clone_url=repo.url, sha=sha)
    failure = failure_of(sfn, arn)
    # a hang detector: the 60 s sleep was cut, not waited out
    assert failure["error"] == "Stepline.StepTimedOut" and time.monotonic() - started < 45
    assert statuses(redis_client)[-1][2] == "failure" and outcomes(redis_client)[-1] == "timed_out"


def test_malformed_task_inputs_fail_cleanly_and_the_worker_goes_on(pushed, start_worker, run_pipeline, sfn):
    repo, sha = pushed
    worker = start_worker()
    bad = [
        (build_step([]), "'commands'"),
        (build_step(["true"], env={"STEPLINE_SHA": "forged"}), "env.STEPLINE_SHA"),
        (build_step(["true"], timeout_seconds="soon"), "timeout_seconds"),
        (build_step(["true"], step="bad:name"), "'step'"),
        (build_step(["echo a\u0000b"]), "'commands'"),  # no process can take a NUL in its argv
    ]
    arns = [run_pipeline(definition, clone_url=repo.url, sha=sha) for definition, _ in bad]
    arns.append(run_pipeline(build_step(["true"]), clone_url=repo.url, sha="not-a-sha"))
    for arn, expected in zip(arns, [why for _, why in bad] + ["run.sha"], strict=True):
        failure = failure_of(sfn, arn)
        assert failure["error"] == "Stepline.InvalidTaskInput" and expected in failure["cause"], failure
    good = run_pipeline(build_step(["true"]), clone_url=repo.url, sha=sha)
    assert wait_execution(sfn, good)["status"] == "SUCCEEDED"
    worker.check_alive()


def test_a_checkout_that_fails(pushed, start_worker, run_pipeline, sfn, redis_client):
    repo, _ = pushed
    start_worker()
    arn = run_pipeline(build_step(["true"]), clone_url=repo.url, sha="f" * 40)
    assert failure_of(sfn, arn)["error"] == "Stepline.CheckoutFailed"
    assert statuses(redis_client)[-1][2] == "error"


def test_event_data_never_executes_and_forks_get_no_secrets(
    pushed, start_worker, run_pipeline, sfn, redis_client, tmp_path
):
    repo, sha = pushed
    start_worker(GIT_TOKEN="ghp_worker-clone-token")
    evil = "$(echo INJECTED)`echo INJECTED`"  # executed, it would print branch=INJECTEDINJECTED
    commands = ['echo "branch=$STEPLINE_BRANCH"', 'echo "key=${DEPLOY_KEY:-none}"', "env | sort"]
    trusted = run_pipeline(build_step(commands), clone_url=repo.url, sha=sha, branch=evil, message=evil)
    pull = {"number": 5, "base_ref": "main", "head_ref": evil, "head_repository": "fork/app", "draft": False}
    fork = run_pipeline(
        build_step(commands, step="fork"),
        activity_name="stepline-untrusted-build",  # the service's choice for a fork's run
        clone_url=repo.url,
        sha=sha,
        run_id="run-2",
        trusted=False,
        fork=True,
        event="pull_request",
        pull_request=pull,
        ref="refs/pull/5/head",
    )
    assert wait_execution(sfn, trusted)["status"] == "SUCCEEDED"
    assert wait_execution(sfn, fork)["status"] == "SUCCEEDED"
    assert f"branch={evil}" in log_lines(redis_client)
    assert "INJECTED" not in " ".join(log_lines(redis_client)).replace(evil, "")
    assert "key=***" in log_lines(redis_client)  # the trusted run had it, and the log masks it
    assert "key=none" in log_lines(redis_client, "run-2", "fork")
    assert "STEPLINE_TRUSTED=false" in log_lines(redis_client, "run-2", "fork")
    everything = json.dumps([log_lines(redis_client), log_lines(redis_client, "run-2", "fork")])
    assert SECRET_VALUE not in everything
    assert "ghp_worker-clone-token" not in everything and "GIT_CONFIG" not in everything
    assert "GIT_TOKEN" not in everything and "GITHUB_TOKEN" not in everything
    assert "REDIS_URL" not in everything  # nothing of the worker's own environment


def test_stopping_the_execution_kills_the_step_at_once(
    pushed, start_worker, run_pipeline, sfn, redis_client, tmp_path
):
    repo, sha = pushed
    worker = start_worker()
    arn = run_pipeline(build_step(["sleep 60 & wait"]), clone_url=repo.url, sha=sha)
    (pid,) = wait_for(lambda: step_pids("run-1:test:1", under=worker.process.pid), what="step started")
    sfn.stop_execution(executionArn=arn, error="Cancelled", cause="a newer push")
    # a hang detector: killed by the worker, long before the 60 s sleep would end
    wait_for(lambda: not _running(pid), timeout=30, what="the step's process killed")
    wait_for(lambda: StepLogReader(redis_client).meta("run-1", "test")["finished"], what="log finished")
    assert StepLogReader(redis_client).meta("run-1", "test")["status"] == "stopped"
    assert statuses(redis_client)[-1][2] == "error"


def test_a_worker_shutting_down_fails_its_task_at_once(pushed, start_worker, run_pipeline, sfn, tmp_path):
    repo, sha = pushed
    worker = start_worker()
    arn = run_pipeline(build_step(["sleep 60 & wait"]), clone_url=repo.url, sha=sha)
    (pid,) = wait_for(lambda: step_pids("run-1:test:1", under=worker.process.pid), what="step started")
    started = time.monotonic()
    assert worker.stop(timeout=10) == 0
    failure = failure_of(sfn, arn)
    # a hang detector: failed by the worker (not by a timeout), long before the 60 s sleep would end
    assert failure["error"] == "Stepline.WorkerShutdown" and time.monotonic() - started < 45
    assert not _running(pid)


def test_a_lost_worker_is_replaced_after_the_heartbeat_timeout(
    pushed, start_worker, run_pipeline, sfn, redis_client, tmp_path
):
    repo, sha = pushed
    first = start_worker("first", WORKER_SLOTS="1")
    step = ['if [ "$STEPLINE_ATTEMPT" = 1 ]; then sleep 60; fi', "echo finished"]
    arn = run_pipeline(build_step(step, heartbeat=2), clone_url=repo.url, sha=sha)
    (orphan,) = wait_for(lambda: step_pids("run-1:test:1"), what="attempt 1 started")
    try:
        first.kill()  # SIGKILL: no chance to report; only the heartbeat timeout tells the engine
        start_worker("second", WORKER_SLOTS="1")
        # the sandbox dies with its worker, and a worker's start-up sweep kills what a lost one left
        wait_for(lambda: not _running(orphan), timeout=10, what="the orphan killed")
        done = wait_execution(sfn, arn, timeout=30)
    finally:
        if _running(orphan):
            os.kill(orphan, signal.SIGKILL)
    assert done["status"] == "SUCCEEDED"
    events = history(sfn, arn)
    assert any(e["type"] == "ActivityTimedOut" for e in events)
    workers = [
        e["activityStartedEventDetails"]["workerName"] for e in events if e["type"] == "ActivityStarted"
    ]
    assert len(workers) >= 2 and workers[0].split("/")[1] != workers[-1].split("/")[1]  # another pid
    log_id = json.loads(done["output"])["steps"]["result"]["log"]
    assert log_id.startswith("run-1:test:") and log_id != "run-1:test:1"
    assert "finished" in log_lines(redis_client, attempt=int(log_id.rsplit(":", 1)[1]))


def test_steps_on_one_repository_run_concurrently(make_repo, start_worker, run_pipeline, sfn, redis_client):
    repo = make_repo("app")
    shas = [repo.commit({"n": str(i)}) for i in range(4)]
    repo.push("main")
    start_worker()  # two processes of two slots each, sharing one WORKER_DIR: its mirror and its locks
    start_worker()
    arns = [
        run_pipeline(build_step(["sleep 3; cat n"]), clone_url=repo.url, sha=sha, run_id=f"run-{i}")
        for i, sha in enumerate(shas)
    ]
    assert [wait_execution(sfn, arn)["status"] for arn in arns] == ["SUCCEEDED"] * 4
    # all four were running at one instant (not a timing: the logs say when each began and ended)
    metas = [StepLogReader(redis_client).meta(f"run-{i}", "test") for i in range(4)]
    assert max(m["started_ms"] for m in metas) < min(m["finished_ms"] for m in metas), metas
    assert [log_lines(redis_client, f"run-{i}")[-1] for i in range(4)] == ["0", "1", "2", "3"]


def test_a_100_mb_log_keeps_the_worker_and_redis_bounded(
    pushed, start_worker, run_pipeline, sfn, redis_client
):
    repo, sha = pushed
    worker = start_worker()
    command = "head -c 100000000 /dev/zero | tr '\\0' x | fold -w 99"
    arn = run_pipeline(build_step([command]), clone_url=repo.url, sha=sha)
    assert wait_execution(sfn, arn, timeout=60)["status"] == "SUCCEEDED"
    peak_kib = _peak_rss_kib(worker.process.pid)
    print(f"worker peak RSS after a 100 MB step: {peak_kib / 1024:.0f} MiB")
    assert peak_kib < 200 * 1024, f"worker peak RSS {peak_kib} KiB"
    meta = StepLogReader(redis_client).meta("run-1", "test")
    assert meta["bytes"] > 100_000_000 and meta["cut_bytes"] > 99_000_000
    # the finished log leaves Redis once the worker has archived it, just after it answered the task
    wait_for(lambda: not redis_client.exists("stepline:log:run-1:test:1"), timeout=60, what="log archived")
    assert redis_client.memory_usage("stepline:log:run-1:test:1:meta") < 4096
    assert log_lines(redis_client)[0].startswith("[stepline]")


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_worker_started_before_the_engine_backs_off_then_serves(
    pushed, processes, worker_env, redis_url, make_repo
):
    repo, sha = pushed
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    env = {**worker_env, "SFN_ENDPOINT_URL": endpoint}
    worker = processes("early-worker", python_module("workers"), env)
    wait_for(lambda: "poll failed, backing off" in worker.log(), what="a failed poll")
    engine_env = {"ENGINE_PORT": str(port), "REDIS_URL": redis_url, "ENGINE_POLL_SECONDS": "5"}
    processes("late-engine", python_module("statemachines.engine"), engine_env).wait_http(endpoint + "/")
    sfn = boto3.client(
        "stepfunctions",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="t",
        aws_secret_access_key="t",
        config=Config(inject_host_prefix=False),
    )
    activity = sfn.create_activity(name="stepline-build")["activityArn"]
    text = json.dumps(build_step(["true"])).replace('"ACTIVITY"', json.dumps(activity))
    machine = sfn.create_state_machine(name="late", definition=text, roleArn=ROLE_ARN)["stateMachineArn"]
    run = json.dumps(execution_input(clone_url=repo.url, sha=sha))
    arn = sfn.start_execution(stateMachineArn=machine, input=run)["executionArn"]
    assert wait_execution(sfn, arn, timeout=40)["status"] == "SUCCEEDED"
    worker.check_alive()


@pytest.mark.parametrize("engine_poll_seconds", ["30"])  # the idle slot's poll stays open throughout
def test_shutdown_grace_finishes_running_steps_and_hands_back_new_tasks(
    pushed, start_worker, run_pipeline, sfn, tmp_path
):
    repo, sha = pushed
    worker = start_worker(
        WORKER_SHUTDOWN_GRACE_SECONDS="10", WORKER_POOLS="build"
    )  # the idle slot polls build
    running = run_pipeline(build_step(["sleep 2; echo done"]), clone_url=repo.url, sha=sha)
    wait_for(lambda: step_pids("run-1:test:1"), what="the first step started")
    worker.signal(signal.SIGTERM)  # the other slot's poll is still open at the engine
    wait_for(lambda: "stopping with 1 tasks running" in worker.log(), what="the worker stopping")
    late = run_pipeline(
        build_step(["echo too late"], step="late"), clone_url=repo.url, sha=sha, run_id="run-2"
    )
    assert failure_of(sfn, late)["error"] == "Stepline.WorkerShutdown"
    assert wait_execution(sfn, running)["status"] == "SUCCEEDED"
    assert worker.process.wait(timeout=10) == 0


# an idle poll is held 60 s: a slot held by one would keep a step waiting far past the deadline below
@pytest.mark.parametrize("engine_poll_seconds", ["60"])
def test_slots_are_shared_by_pools_so_a_parallel_of_mixed_pools_runs_at_once(
    pushed, start_worker, sfn, redis_client
):
    repo, sha = pushed
    start_worker(
        WORKER_SLOTS="3", WORKER_POOLS="build,deploy,untrusted-build", WORKER_POLL_READ_TIMEOUT_SECONDS="70"
    )
    gate = socket.socket()
    gate.bind(("127.0.0.1", 0))
    port = gate.getsockname()[1]
    # each step waits until the test opens the gate: it opens only once all three are running at once
    wait = f"until (echo > /dev/tcp/127.0.0.1/{port}) 2>/dev/null; do sleep 0.1; done; echo through"
    branches = []
    for name, pool in (("one", "build"), ("two", "build"), ("three", "deploy")):
        activity = sfn.create_activity(name=f"stepline-{pool}")["activityArn"]
        step = build_step([wait], step=name)["States"]["Step"] | {"Resource": activity, "End": True}
        step.pop("ResultPath")
        branches.append({"StartAt": name, "States": {name: step}})
    definition = {
        "StartAt": "All",
        "States": {"All": {"Type": "Parallel", "Branches": branches, "End": True}},
    }
    machine = sfn.create_state_machine(name="mixed", definition=json.dumps(definition), roleArn=ROLE_ARN)
    run = json.dumps(execution_input(clone_url=repo.url, sha=sha))
    arn = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], input=run)["executionArn"]
    try:
        wait_for(lambda: len(steps_running("run-1")) == 3, timeout=40, what="three steps running at once")
        gate.listen(8)
        assert wait_execution(sfn, arn, timeout=60)["status"] == "SUCCEEDED"
    finally:
        gate.close()
    assert all("through" in log_lines(redis_client, step=name) for name in ("one", "two", "three"))


def steps_running(run_id: str) -> set[str]:
    return {name for name in ("one", "two", "three") if step_pids(f"{run_id}:{name}:1", "bash")}


def test_a_run_the_service_stops_stops_its_running_step_without_waiting_for_a_heartbeat(
    pushed, start_worker, run_pipeline, sfn, redis_client
):
    repo, sha = pushed
    worker = start_worker(HEARTBEAT_SECONDS="60")  # the next heartbeat is a minute away
    arn = run_pipeline(build_step(["sleep 100 & wait"], heartbeat=110), clone_url=repo.url, sha=sha)
    # its own step: a test running beside it may have a `sleep` of run-1:test:1 as well, and a stop
    # marked before this step began would (rightly) not stop it
    (pid,) = wait_for(lambda: step_pids("run-1:test:1", under=worker.process.pid), what="step started")
    mark_stopped(redis_client, "run-1")  # what the service does when it cancels or supersedes a run
    sfn.stop_execution(executionArn=arn, error="Stepline.Cancelled", cause="cancelled by alice")
    wait_for(lambda: not _running(pid), timeout=20, what="the step stopped (long before a heartbeat)")
    # the next heartbeat is ~36 s away (heartbeat=110 / 3): a log finished before it was stopped by the run's stop
    try:
        wait_for(
            lambda: StepLogReader(redis_client).meta("run-1", "test")["finished"],
            timeout=30,
            what="log finished",
        )
    except (
        TimeoutError
    ) as exc:  # what the worker was doing meanwhile (a flake seen only in full, loaded runs)
        meta = StepLogReader(redis_client).meta("run-1", "test")
        raise AssertionError(f"{exc}; meta={meta}\n{worker.log()[-6000:]}") from exc
    assert StepLogReader(redis_client).meta("run-1", "test")["status"] == "stopped"


def test_a_worker_says_which_activities_it_serves_while_it_runs(start_worker, redis_client):
    assert not served(redis_client, "stepline-build")
    worker = start_worker(WORKER_POOLS="build,untrusted-build")
    wait_for(lambda: served(redis_client, "stepline-build"), what="the worker's presence")
    assert served(redis_client, "arn:aws:states:us-east-1:123456789012:activity:stepline-untrusted-build")
    assert not served(redis_client, "stepline-deploy")
    assert worker.stop(timeout=10) == 0
    assert not served(redis_client, "stepline-build")  # a stopped worker serves nothing
