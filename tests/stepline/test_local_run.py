"""`stepline run` through real processes: the console script, a real git working copy, Redis, engine, worker, bubblewrap."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.harness.git_repos import GitRepo, git

pytestmark = pytest.mark.slow

STEPLINE = Path(sys.executable).with_name("stepline")  # installed by `make setup` (pip install -e .)
RUN_SECONDS = 120


def build_task(step: str, *commands: str, **fields: object) -> dict[str, object]:
    return {"Type": "Task", "Resource": "${activity:build}", "Parameters": {"step": step, "commands": list(commands)}, **fields}  # fmt: skip


# Parallel lint and test, then a Choice on the branch: release only from main
PIPELINE = {
    "StartAt": "Checks",
    "States": {
        "Checks": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "Lint", "States": {"Lint": build_task("lint", "cat message.txt", End=True)}},
                {"StartAt": "Test", "States": {"Test": build_task("test", "ls", "cat new.txt", End=True)}},
            ],
            "ResultPath": "$.steps.checks",
            "Next": "OnMain",
        },
        "OnMain": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.branch", "StringEquals": "main", "Next": "Release"}],
            "Default": "Done",
        },
        "Release": build_task("release", 'echo "releasing $STEPLINE_BRANCH"', ResultPath="$.r", Next="Done"),
        "Done": {"Type": "Succeed"},
    },
}


@pytest.fixture
def working_copy(make_repo: Callable[[str], GitRepo]) -> Path:
    """A repository with the pipeline committed, one committed file changed and one file never added."""
    repo = make_repo("app")
    pipeline = json.dumps(PIPELINE, indent=2)
    repo.commit({".stepline/pipeline.asl.json": pipeline, "message.txt": "as committed\n"})
    (repo.work / "message.txt").write_text("changed, not committed\n")
    (repo.work / "new.txt").write_text("never added\n")
    return repo.work


def stepline_run(
    directory: Path, cache: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    command = [str(STEPLINE), "run", str(directory), "--cache-dir", str(cache), *args]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=RUN_SECONDS,
        check=False,
        env={**os.environ, **(env or {})},
    )


def row(output: str, step: str) -> list[str]:
    """The summary row of a step, split on its column gaps."""
    for line in output.splitlines():
        if line.startswith(f"{step} ") and " | " not in line:
            return re.split(r"\s{2,}", line.strip())
    raise AssertionError(f"no summary row for {step}:\n{output}")


def repository_state(work: Path) -> tuple[str, str, str, str]:
    """What a local run must leave as it was: status, stash list, the index file and the object count."""
    index = hashlib.sha256((work / ".git" / "index").read_bytes()).hexdigest()
    return (
        git("status", "--porcelain", cwd=work),
        git("stash", "list", cwd=work),
        index,
        git("count-objects", cwd=work),
    )


def test_the_steps_see_uncommitted_changes_and_parallel_and_main_only_steps_run(
    working_copy: Path, tmp_path: Path
) -> None:
    before = repository_state(working_copy)
    done = stepline_run(working_copy, tmp_path / "cache", "--branch", "main")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    # each line of a step's live log carries its step's name
    assert any(line.startswith("lint ") and line.endswith("| changed, not committed") for line in lines)
    assert any(line.startswith("test ") and line.endswith("| never added") for line in lines)
    assert any(line.endswith("| releasing main") for line in lines)
    for step in ("lint", "test", "release"):
        assert row(done.stdout, step)[1:3] == ["succeeded", "1"]
    assert "pipeline SUCCEEDED" in done.stdout
    assert repository_state(working_copy) == before  # index, stash, objects and status untouched


def test_a_choice_on_the_branch_skips_the_main_only_step(
    working_copy: Path, tmp_path: Path, make_repo: Callable[[str], GitRepo]
) -> None:
    # run from another repository's git hook: its GIT_DIR and GIT_INDEX_FILE must not steer the snapshot
    other = make_repo("other")
    other.commit({"other.txt": "x"})
    hook_env = {"GIT_DIR": str(other.work / ".git"), "GIT_INDEX_FILE": str(other.work / ".git" / "index")}
    done = stepline_run(working_copy, tmp_path / "cache", "--branch", "feature/x", env=hook_env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert row(done.stdout, "release")[1] == "not run"
    assert row(done.stdout, "lint")[1] == "succeeded"
    assert "| changed, not committed" in done.stdout
    assert "releasing" not in done.stdout


def test_only_runs_one_step_and_passes_over_the_others(working_copy: Path, tmp_path: Path) -> None:
    done = stepline_run(working_copy, tmp_path / "cache", "--branch", "main", "--only", "test")
    assert done.returncode == 0, done.stdout + done.stderr
    assert row(done.stdout, "test")[1] == "succeeded"
    assert row(done.stdout, "lint")[1] == row(done.stdout, "release")[1] == "skipped (--only)"
    assert not [
        line for line in done.stdout.splitlines() if line.startswith(("lint ", "release ")) and " | " in line
    ]

    unknown = stepline_run(working_copy, tmp_path / "cache", "--only", "deploy")
    assert unknown.returncode == 2
    assert "no step 'deploy' (its steps: lint, test, release)" in unknown.stderr


def test_a_failing_step_fails_the_run_with_exit_status_1(
    make_repo: Callable[[str], GitRepo], tmp_path: Path
) -> None:
    repo = make_repo("failing")
    pipeline = {
        "StartAt": "Build",
        "States": {"Build": build_task("build", "echo before", "exit 3", End=True)},
    }
    repo.commit({".stepline/pipeline.asl.json": json.dumps(pipeline)})
    done = stepline_run(repo.work, tmp_path / "cache")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "build | before" in done.stdout
    assert row(done.stdout, "build")[1] == "failed (exit 3)"
    assert "pipeline FAILED: Stepline.StepFailed" in done.stdout


def test_an_invalid_pipeline_is_refused_as_the_server_refuses_it(
    make_repo: Callable[[str], GitRepo], tmp_path: Path
) -> None:
    repo = make_repo("invalid")
    repo.commit({".stepline/pipeline.asl.json": '{"StartAt": "Nowhere", "States": {}}'})
    done = stepline_run(repo.work, tmp_path / "cache")
    assert done.returncode == 1
    assert "invalid pipeline .stepline/pipeline.asl.json" in done.stdout
    assert "pipeline INVALID" in done.stdout


def test_not_a_working_copy_is_a_clear_error(tmp_path: Path) -> None:
    done = stepline_run(tmp_path, tmp_path / "cache")
    assert done.returncode == 2
    assert "is not a git working copy" in done.stderr
    assert "Traceback" not in done.stderr


def test_ctrl_c_stops_every_process_of_the_run(make_repo: Callable[[str], GitRepo], tmp_path: Path) -> None:
    repo = make_repo("slow")
    pipeline = {
        "StartAt": "Wait",
        "States": {"Wait": build_task("wait", "echo started", "sleep 600", End=True)},
    }
    repo.commit({".stepline/pipeline.asl.json": json.dumps(pipeline)})
    command = [str(STEPLINE), "run", str(repo.work), "--cache-dir", str(tmp_path / "cache")]
    run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert run.stdout is not None
    output = []
    for line in run.stdout:  # until the step runs
        output.append(line)
        if line.rstrip().endswith("| started"):
            break
    else:
        raise AssertionError("".join(output))
    # "started" is the first command's output: the second one's sandbox may not be up yet
    deadline = time.monotonic() + 30
    while len(started := descendants(run.pid)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    if len(started) < 4:  # redis-server, engine, worker and the step's sandbox at least
        run.kill()
        for pid in started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        raise AssertionError({pid: command_of(pid) for pid in started})
    run.send_signal(signal.SIGINT)
    rest, _ = run.communicate(timeout=60)
    assert run.returncode == 130, "".join(output) + rest
    assert "interrupted" in rest
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and [pid for pid in started if alive(pid)]:
        time.sleep(0.1)
    assert [pid for pid in started if alive(pid)] == []


def descendants(root: int) -> set[int]:
    """Every process below `root`, from /proc (a child in a session of its own is still a descendant)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry.name)] = int(fields[1])
    found, frontier = set(), {root}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def command_of(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended; only its parent's wait is missing


GATED = {
    "StartAt": "Build",
    "States": {
        "Build": build_task("build", "echo built", Next="Approve"),
        "Approve": {
            "Type": "Task",
            "Resource": "${activity:approval}",
            "Parameters": {"step": "approve-deploy", "message": "Deploy?"},
            "Next": "Deploy",
        },
        "Deploy": {
            "Type": "Task",
            "Resource": "${activity:deploy}",
            "Parameters": {"step": "deploy", "commands": ["echo deployed"]},
            "End": True,
        },
    },
}


def test_approvals_are_rejected_unless_approve_is_given(
    make_repo: Callable[[str], GitRepo], tmp_path: Path
) -> None:
    repo = make_repo("gated")
    repo.commit({".stepline/pipeline.asl.json": json.dumps(GATED)})
    rejected = stepline_run(repo.work, tmp_path / "cache")
    assert rejected.returncode == 1, rejected.stdout + rejected.stderr
    assert row(rejected.stdout, "approve-deploy")[1] == "rejected (no --approve)"
    assert row(rejected.stdout, "deploy")[1] == "not run"
    assert "pipeline FAILED: Stepline.Rejected" in rejected.stdout

    approved = stepline_run(repo.work, tmp_path / "cache", "--approve")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert row(approved.stdout, "approve-deploy")[1].startswith("approved by ")
    assert row(approved.stdout, "deploy")[1] == "succeeded"  # the deploy pool is served too
    assert "deploy         | deployed" in approved.stdout


def test_untrusted_is_checked_as_a_forks_pull_request_is(
    make_repo: Callable[[str], GitRepo], tmp_path: Path
) -> None:
    repo = make_repo("gated")
    repo.commit({".stepline/pipeline.asl.json": json.dumps(GATED)})
    done = stepline_run(repo.work, tmp_path / "cache", "--untrusted")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "untrusted" in done.stdout
    assert "state Deploy uses pool 'deploy', which untrusted runs may not use" in done.stdout
    assert "pipeline INVALID" in done.stdout


def test_a_pull_request_run_and_an_untrusted_one_get_the_servers_input_and_sandbox(
    make_repo: Callable[[str], GitRepo], tmp_path: Path
) -> None:
    repo = make_repo("pr")
    commands = [
        'echo "event=$STEPLINE_EVENT pr=$STEPLINE_PR_NUMBER base=$STEPLINE_PR_BASE_REF trusted=$STEPLINE_TRUSTED"',
        "echo \"interfaces: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\\n' ' ')\"",
    ]
    pipeline = {"StartAt": "Show", "States": {"Show": build_task("show", *commands, End=True)}}
    repo.commit({".stepline/pipeline.asl.json": json.dumps(pipeline)})
    trusted = stepline_run(repo.work, tmp_path / "cache", "--event", "pull_request", "--branch", "topic")
    assert trusted.returncode == 0, trusted.stdout + trusted.stderr
    assert "| event=pull_request pr=1 base=main trusted=true" in trusted.stdout
    untrusted = stepline_run(repo.work, tmp_path / "cache", "--untrusted", "--branch", "topic")
    assert untrusted.returncode == 0, untrusted.stdout + untrusted.stderr
    assert "| event=pull_request pr=1 base=main trusted=false" in untrusted.stdout
    only_loopback = re.compile(r"^show +\| interfaces: lo $", re.MULTILINE)
    assert only_loopback.search(untrusted.stdout)  # no network but its own loopback
    assert re.search(r"^show +\| interfaces: ", trusted.stdout, re.MULTILINE)
    assert not only_loopback.search(trusted.stdout)  # the machine's network, as a trusted step on the server


def test_the_console_script_is_installed() -> None:
    assert STEPLINE.exists(), "run `make setup`: it installs the project (pip install -e .) and `stepline`"
    assert os.access(STEPLINE, os.X_OK)


def test_no_bubblewrap_is_a_clear_error(working_copy: Path, tmp_path: Path) -> None:
    """A machine without bwrap: one line saying what to install, not the worker's settings problem."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("git", "redis-server", "setpriv", "env", "prlimit"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    done = stepline_run(working_copy, tmp_path / "cache", env={"PATH": str(bin_dir)})
    assert done.returncode == 2, done.stdout + done.stderr
    assert "bubblewrap, the sandbox every step runs in, is not installed" in done.stderr
    assert "WORKER_SANDBOX" not in done.stderr and "Traceback" not in done.stderr
