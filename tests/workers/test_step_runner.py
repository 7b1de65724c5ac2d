"""Running steps for real: process groups, clean environments, streamed and bounded output, timeouts."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest

from statemachines.contract import parse_step_task
from statemachines.step_logs import StepLogReader, StepLogWriter
from tests.workers.task_inputs import task_input
from workers.errors import StepFailed, StepTimedOut, TaskStopped, WorkerShutdown
from workers.process_group import SHUTDOWN, STOPPED, Cancellation, ProcessGroup, kill_orphans
from workers.step_environment import build_environment
from workers.step_runner import StepRunner
from workers.workspace import Workspace


@pytest.fixture
def writer(redis_client) -> StepLogWriter:
    return StepLogWriter.start(redis_client, "run-1", "test", max_bytes=64 * 1024)


def lines_of(redis_client) -> list[str]:
    lines, _, _ = StepLogReader(redis_client).read("run-1", "test", limit=1_000_000)
    return lines


def run(writer, commands, cwd: Path, env=None, timeout=30.0, cancellation=None, masked=()):
    runner = StepRunner(writer, cancellation or Cancellation(), masked)
    return runner.run(commands, cwd, env or {"PATH": "/usr/bin:/bin"}, timeout)


def test_commands_run_in_order_with_output_in_order(writer, redis_client, tmp_path):
    run(writer, ["echo out; echo err >&2; echo out2", "pwd"], tmp_path)
    writer.flush()
    assert lines_of(redis_client) == [
        "$ echo out; echo err >&2; echo out2",
        "out",
        "err",
        "out2",
        "$ pwd",
        str(tmp_path),
    ]


def test_a_failing_command_stops_the_step(writer, redis_client, tmp_path):
    with pytest.raises(StepFailed) as failure:
        run(writer, ["echo before", "echo boom; exit 3", "echo never"], tmp_path)
    assert failure.value.exit_code == 3 and failure.value.error_name == "Stepline.StepFailed"
    assert "echo boom; exit 3" in failure.value.cause and "boom" in failure.value.cause
    assert "never" not in lines_of(redis_client)


def test_pipefail_is_on(writer, tmp_path):
    with pytest.raises(StepFailed):
        run(writer, ["false | cat"], tmp_path)


def test_a_step_timeout_kills_the_whole_group(writer, tmp_path):
    marker = tmp_path / "child.pid"
    started = time.monotonic()
    with pytest.raises(StepTimedOut) as failure:
        run(writer, [f"sleep 30 & echo $! > {marker}; wait"], tmp_path, timeout=1)
    assert time.monotonic() - started < 20  # a hang detector: the 30 s sleep was cut, not waited out
    assert failure.value.error_name == "Stepline.StepTimedOut"
    child = int(marker.read_text())
    time.sleep(0.1)
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


@pytest.mark.parametrize(("reason", "error"), [(STOPPED, TaskStopped), (SHUTDOWN, WorkerShutdown)])
def test_a_cancelled_step_is_killed_at_once(writer, tmp_path, reason, error):
    cancellation = Cancellation()
    threading.Timer(0.3, cancellation.cancel, args=(reason,)).start()
    started = time.monotonic()
    with pytest.raises(error):
        run(writer, ["sleep 30"], tmp_path, cancellation=cancellation)
    assert time.monotonic() - started < 20  # a hang detector: the 30 s sleep was cut, not waited out


def test_background_children_do_not_outlive_the_step(writer, tmp_path):
    marker = tmp_path / "bg.pid"
    run(writer, [f"(sleep 30 & echo $! > {marker})"], tmp_path)
    time.sleep(0.1)
    child = int(marker.read_text())
    assert not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]


def test_secrets_are_masked_in_the_log(writer, redis_client, tmp_path):
    run(
        writer,
        ['echo "token is $TOKEN"'],
        tmp_path,
        env={"PATH": "/usr/bin:/bin", "TOKEN": "hunter22"},
        masked=["hunter22"],
    )
    writer.flush()
    assert "token is ***" in lines_of(redis_client)


def test_event_data_is_never_executed(writer, redis_client, tmp_path, redis_url):
    pwned = tmp_path / "pwned"
    evil = f"$(touch {pwned})`touch {pwned}`;touch {pwned}"
    text = task_input(
        commands=['echo "branch=$STEPLINE_BRANCH"', 'echo "msg=$STEPLINE_MESSAGE"'],
        run={"branch": evil, "message": evil, "ref": "refs/heads/" + evil},
    )
    task = parse_step_task(text)
    places = Workspace(tmp_path / "w").create(task.run)
    places.source.mkdir()
    env = build_environment(task, places, "/usr/bin:/bin", {}, {}, True)
    run(writer, task.commands, places.source, env=env)
    writer.flush()
    assert f"branch={evil}" in lines_of(redis_client) and f"msg={evil}" in lines_of(redis_client)
    assert not pwned.exists()


def test_the_environment_is_clean_and_secrets_go_to_trusted_runs_only(tmp_path):
    os.environ["STEPLINE_TEST_LEAK"] = "leaked"  # the worker's own environment must not reach steps
    try:
        secrets = {"DEPLOY_KEY": "k3y"}
        trusted = parse_step_task(task_input(run={"trusted": True}, env={"GOFLAGS": "-mod=vendor"}))
        fork = parse_step_task(task_input(run={"trusted": False, "fork": True}))
        lying_fork = parse_step_task(task_input(run={"trusted": True, "fork": False}))
        places = Workspace(tmp_path / "w").create(trusted.run)
        env = build_environment(trusted, places, "/usr/bin:/bin", secrets, {}, True)
        assert env["DEPLOY_KEY"] == "k3y" and env["GOFLAGS"] == "-mod=vendor"
        assert env["STEPLINE_SHA"] == trusted.source.sha and env["HOME"] == str(places.home)
        assert "STEPLINE_TEST_LEAK" not in env and env["STEPLINE_TRUSTED"] == "true"
        # trust is the activity's word: what the input says (a pipeline writes it) changes nothing
        for untrusted in (fork, lying_fork):
            env = build_environment(untrusted, places, "/usr/bin:/bin", secrets, {}, False)
            assert "DEPLOY_KEY" not in env and env["STEPLINE_TRUSTED"] == "false"
    finally:
        del os.environ["STEPLINE_TEST_LEAK"]


def test_huge_output_keeps_memory_and_redis_bounded(writer, redis_client, tmp_path):
    # 5 MB in lines of 100 bytes, then one 5 MB line without a newline (test_worker_process: 100 MB)
    command = (
        "head -c 5000000 /dev/zero | tr '\\0' x | fold -w 99; echo; head -c 5000000 /dev/zero | tr '\\0' y"
    )
    run(writer, [command], tmp_path, timeout=120)
    writer.finish("succeeded", 0)
    assert writer.bytes > 5_000_000
    assert redis_client.memory_usage(f"stepline:log:{writer.log_id}") < 512 * 1024
    lines = lines_of(redis_client)
    assert lines[0].startswith("[stepline]") and "cut" in lines[0]
    assert lines[-1].startswith("yyyy") and lines[-1].endswith("more bytes of this line cut]")


def test_orphans_are_killed_only_when_their_marker_matches(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "STEPLINE_LOG_ID": "run-9:test:1"}
    group = ProcessGroup(["sleep", "30"], tmp_path, env, stdout=subprocess.DEVNULL)
    try:
        # until it has exec'd, a forked child shows its parent's environment, without the marker
        deadline = time.monotonic() + 30
        while not Path(f"/proc/{group.pgid}/cmdline").read_bytes().startswith(b"sleep"):
            assert time.monotonic() < deadline, "sleep never started"
            time.sleep(0.01)
        assert kill_orphans(group.pgid, "STEPLINE_LOG_ID=run-9:test:2") == 0
        assert group.process.poll() is None
        assert kill_orphans(group.pgid, "STEPLINE_LOG_ID=run-9:test:1") == 1
        assert group.process.wait(timeout=5) == -signal.SIGKILL
    finally:
        group.kill()


def test_a_command_killed_by_a_signal_says_so(writer, tmp_path):
    with pytest.raises(StepFailed) as failure:
        run(writer, ["kill -9 $$"], tmp_path)
    assert "signal 9 (SIGKILL)" in failure.value.reason and failure.value.exit_code == -9
