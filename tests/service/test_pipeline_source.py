"""Parsing and validating a repository's pipeline: every problem named, nothing hostile expanded."""

from __future__ import annotations

import json

import pytest

from service.errors import InvalidPipelineError
from service.pipeline_source import DEFAULT_PATH, parse_pipeline

BUILD = {"Type": "Task", "Resource": "${activity:build}", "End": True,
         "Parameters": {"step": "build", "commands": ["make"], "run.$": "$$.Execution.Input"}}  # fmt: skip


def test_the_default_pipeline_is_valid_and_owns_the_build_step():
    pipeline = parse_pipeline("default", DEFAULT_PATH.read_text())
    assert pipeline.steps == ["build"] and pipeline.name == "ci"


def test_yaml_pipelines_parse_like_json():
    text = "StartAt: B\nStates:\n  B:\n    Type: Task\n    Resource: ${activity:build}\n    End: true\n" \
        "    Parameters: {step: build, commands: [make], run.$: $$.Execution.Input}\n"  # fmt: skip
    assert parse_pipeline(".stepline/pipeline.asl.yaml", text).steps == ["build"]


@pytest.mark.parametrize(
    ("path", "text", "needle"),
    [
        (".stepline/pipeline.asl.json", "{not json", "cannot parse"),
        (".stepline/pipeline.asl.json", "[]", "object"),
        (".stepline/pipeline.asl.yaml", "a: &x [1]\nb: *x\n", "aliases"),
        (".stepline/pipeline.asl.json", json.dumps({"StartAt": "B", "States": {"B": {**BUILD, "Resource": "${activity:Bad Pool}"}}}), "activity"),
        (".stepline/pipeline.asl.json", json.dumps({"StartAt": "Nope", "States": {"B": BUILD}}), "Nope"),
        (".stepline/pipeline.asl.json", " " * (1024 * 1024 + 1), "1 MiB"),
        # substituted nowhere but in a Resource: elsewhere it once made every start of the run crash
        (".stepline/pipeline.asl.json", json.dumps({"StartAt": "B", "States": {"B": {**BUILD, "Parameters": {
            **BUILD["Parameters"], "target": "${activity:deploy}"}}}}), "may only be a Task's Resource"),
    ],
)  # fmt: skip
def test_invalid_pipelines_name_the_problem(path, text, needle):
    with pytest.raises(InvalidPipelineError) as caught:
        parse_pipeline(path, text)
    assert caught.value.diagnostics and any(needle in d["message"] for d in caught.value.diagnostics)
    assert all({"code", "message", "location"} <= set(d) for d in caught.value.diagnostics)
