"""`python -m statemachines check` finds build-output mistakes before deploy, each at its state."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from statemachines.contract import parse_step_task
from statemachines.errors import ContractError
from statemachines.pipeline_check import check_definition

ROOT = Path(__file__).resolve().parents[2]


def step(name: str, **params: Any) -> dict[str, Any]:
    return {
        "Type": "Task", "Resource": "${activity:build}",
        "Parameters": {"step": name, "commands": ["make"], "run.$": "$$.Execution.Input", **params},
    }  # fmt: skip


def pipeline(deploy: dict[str, Any]) -> dict[str, Any]:
    """build, then a Map of test-py{} iterations, then `deploy` (the state under test)."""
    tests = step("test", needs=["build"])
    tests["Parameters"].pop("step")
    tests["Parameters"]["step.$"] = "States.Format('test-py{}', $.version)"
    return {
        "StartAt": "Build",
        "States": {
            "Build": {**step("build", artifacts=["dist/*.whl"]), "Next": "Tests"},
            "Tests": {
                "Type": "Map", "ItemsPath": "$.versions", "ResultPath": None, "Next": "Deploy",
                "ItemProcessor": {"StartAt": "Test", "States": {"Test": {**tests, "End": True}}},
            },
            "Deploy": {**deploy, "End": True},
        },
    }  # fmt: skip


def problems_of(deploy: dict[str, Any]) -> list[str]:
    return [str(p) for p in check_definition(pipeline(deploy)) if p.severity == "ERROR"]


def test_needs_must_name_a_step_or_match_one():
    assert problems_of(step("deploy", needs=["build", "test-py*", "test-py3.12", "*"])) == []
    found = problems_of(step("deploy", needs=["nope", "lint-*"]))
    assert found == [
        "/States/Deploy: error: 'needs' entry 0 ('nope') names no step of this pipeline "
        "(its steps: build, test-py{}, deploy)",
        "/States/Deploy: error: 'needs' entry 1 ('lint-*') names no step of this pipeline "
        "(its steps: build, test-py{}, deploy)",
    ]


def test_every_bad_declaration_is_reported_at_once_where_it_is():
    deploy = step(
        "deploy",
        artifacts=["/etc/passwd", "../secrets", "~/.ssh/id_rsa", "ok/*"],
        artifacts_when="sometimes",
        cache={"key": "pip-{env:TOKEN}", "restore_keys": ["pip-{hash:../x}"], "paths": [".venv"]},
    )
    found = problems_of(deploy)
    assert all(p.startswith("/States/Deploy: error: ") for p in found), found
    text = "\n".join(found)
    assert "'cache.key' has an unknown placeholder {env:TOKEN}" in text
    assert "'artifacts_when' must be one of success, failure, always, not 'sometimes'" in text
    assert "'artifacts' entry 0: pattern '/etc/passwd' must be relative to the work tree" in text
    assert "'artifacts' entry 1: pattern '../secrets' must be relative to the work tree" in text
    assert "'artifacts' entry 2: pattern '~/.ssh/id_rsa' names HOME" in text
    assert len(found) == 5, found  # ok/* is fine; the restore key's problem follows the key's
    bad_glob = problems_of(step("deploy", cache={"key": "pip-{hash:/etc/*}", "paths": [".venv"]}))
    assert bad_glob == [
        "/States/Deploy: error: 'cache.key': the {hash:} glob '/etc/*' must be relative to the work tree, without '..'"
    ]


def test_the_worker_applies_the_same_checks():
    """A task input whose declarations the check refuses is refused by the worker too (artifact patterns
    excepted: the worker refuses those in the step's log, and still runs the step)."""
    run = {"run_id": "r", "repository": "o/a", "clone_url": "https://github.com/o/a.git", "sha": "a" * 40}
    for bad in ({"artifacts_when": "sometimes"}, {"cache": {"key": "k-{env:X}", "paths": ["v"]}}):
        text = json.dumps({"step": "s", "commands": ["true"], "run": run, **bad})
        with pytest.raises(ContractError, match=r"'artifacts_when' must be|unknown placeholder"):
            parse_step_task(text)


def test_the_command_line_check_says_it(tmp_path):
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(pipeline(step("deploy", needs=["nope"]))))
    done = subprocess.run(
        [sys.executable, "-m", "statemachines", "check", str(path)], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode != 0
    assert "/States/Deploy: error: 'needs' entry 0 ('nope') names no step" in done.stdout + done.stderr
