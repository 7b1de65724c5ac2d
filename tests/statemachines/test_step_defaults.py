"""A build step is two lines: the defaults every deploy fills in, and `python -m statemachines check`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from service.pipeline_source import parse_pipeline as parse_repository_pipeline
from statemachines.aws_deploy import deploy_pipelines
from statemachines.catalog import parse_pipeline, shipped_pipelines
from statemachines.contract import APPROVAL_POOL, check_pipeline, pool_of, walk_states
from statemachines.deploy import ensure_pipeline
from statemachines.step_defaults import fill_step_defaults
from tests.harness.processes import PROJECT
from tests.statemachines.conftest import ROLE_ARN

SHORT = {"Type": "Task", "Resource": "${activity:build}", "End": True,
         "Parameters": {"step": "test", "commands": ["make test"]}}  # fmt: skip
LOST_WORKER = {"ErrorEquals": ["States.HeartbeatTimeout", "Stepline.WorkerShutdown"], "MaxAttempts": 2,
               "IntervalSeconds": 1}  # fmt: skip


def short_pipeline(**fields) -> dict:
    return {"StartAt": "Test", "States": {"Test": {**SHORT, **fields}}}


def test_a_two_line_build_step_gets_the_documented_filled_in_form():
    filled = fill_step_defaults(short_pipeline())["States"]["Test"]
    assert filled["Parameters"] == {"step": "test", "commands": ["make test"], "run.$": "$$.Execution.Input"}
    assert (filled["HeartbeatSeconds"], filled["TimeoutSeconds"]) == (60, 5400)
    assert filled["Retry"] == [LOST_WORKER]
    assert check_pipeline(fill_step_defaults(short_pipeline())) == []
    assert "HeartbeatSeconds" not in SHORT, "the input is not changed"


def test_what_the_author_wrote_is_kept_and_completed():
    flaky = {"ErrorEquals": ["Stepline.StepFailed"], "MaxAttempts": 1}
    state = fill_step_defaults(
        short_pipeline(
            TimeoutSeconds=40, Retry=[flaky], Parameters={**SHORT["Parameters"], "timeout_seconds": 60}
        )
    )["States"]["Test"]
    assert state["TimeoutSeconds"] == 40 and state["HeartbeatSeconds"] == 20
    assert state["Retry"] == [LOST_WORKER, flaky]
    # a step's own limit plus room for the queue; a retrier naming the lost worker is left alone
    state = fill_step_defaults(
        short_pipeline(
            Parameters={**SHORT["Parameters"], "timeout_seconds": 600},
            Retry=[{"ErrorEquals": ["States.ALL"]}],
        )
    )["States"]["Test"]
    assert state["TimeoutSeconds"] == 2400 and state["Retry"] == [{"ErrorEquals": ["States.ALL"]}]


def test_approval_steps_get_only_the_run_input():
    approval = {**SHORT, "Resource": "${activity:approval}", "Parameters": {"step": "ok", "message": "Go?"}}
    state = fill_step_defaults({"StartAt": "A", "States": {"A": approval}})["States"]["A"]
    assert state["Parameters"]["run.$"] == "$$.Execution.Input"
    assert not {"HeartbeatSeconds", "TimeoutSeconds", "Retry"} & set(state)


@pytest.mark.parametrize("name", sorted(shipped_pipelines()))
def test_the_shipped_build_steps_are_short(name):
    path = shipped_pipelines()[name]
    raw = parse_pipeline(path.read_text(), str(path))
    for state_path, _, state in walk_states(raw):
        if state.get("Type") == "Task" and pool_of(state) not in (None, APPROVAL_POOL):
            assert not {"HeartbeatSeconds", "TimeoutSeconds"} & set(state), state_path
            assert "run.$" not in state["Parameters"], state_path


def test_the_service_runs_a_short_pipeline_without_warnings():
    pipeline = parse_repository_pipeline(".stepline/pipeline.asl.json", json.dumps(short_pipeline()))
    assert pipeline.warnings == ()
    assert pipeline.definition["States"]["Test"]["HeartbeatSeconds"] == 60


def test_both_deploys_send_the_filled_in_form(engine_sfn, moto_sfn, prefix):
    arn = ensure_pipeline(engine_sfn, short_pipeline(), "short", prefix=prefix)
    sent = json.loads(engine_sfn.describe_state_machine(stateMachineArn=arn)["definition"])["States"]["Test"]
    [action] = [a for a in deploy_pipelines(moto_sfn, {"short": short_pipeline()}, prefix, ROLE_ARN)
                if a.kind == "state machine"]  # fmt: skip
    on_aws = json.loads(moto_sfn.describe_state_machine(stateMachineArn=action.arn)["definition"])["States"][
        "Test"
    ]
    for state in (sent, on_aws):
        assert state["HeartbeatSeconds"] == 60 and state["Retry"] == [LOST_WORKER]
        assert state["Parameters"]["run.$"] == "$$.Execution.Input"


def check(*files: Path, home: Path) -> subprocess.CompletedProcess[str]:
    """`python -m statemachines check` as a user runs it: no AWS settings, an empty HOME."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8"}
    return subprocess.run(
        [sys.executable, "-m", "statemachines", "check", *map(str, files)],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def test_check_passes_the_shipped_pipelines_offline(tmp_path):
    result = check(*shipped_pipelines().values(), home=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_check_prints_every_problem_with_its_location(tmp_path):
    broken = {
        "StartAt": "Checks",
        "States": {
            "Checks": {"Type": "Parallel", "Next": "Nowhere", "Branches": [
                {"StartAt": "Lint", "States": {"Lint": {**SHORT, "Parameters": {"step": "lint"}}}},
            ]},
        },
    }  # fmt: skip
    bad = tmp_path / "pipeline.asl.json"
    bad.write_text(json.dumps(broken))
    good = tmp_path / "good.asl.yaml"
    good.write_text("StartAt: T\nStates:\n  T:\n    Type: Task\n    Resource: ${activity:build}\n    End: true\n"
                    "    Parameters: {step: t, commands: [make]}\n")  # fmt: skip
    result = check(bad, good, home=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"{bad}:/States/Checks/Next: error: Missing 'Next' target: Nowhere" in lines
    lint = "/States/Checks/Branches/0/States/Lint"
    assert f"{bad}:{lint}: error: a build step needs a non-empty list of commands" in lines
    assert not any(line.startswith(str(good)) for line in lines)
    unreadable = check(tmp_path / "missing.asl.json", home=tmp_path)
    assert unreadable.returncode == 1 and "cannot read" in unreadable.stdout
