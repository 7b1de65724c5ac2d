"""`--only`: every example pipeline, restricted to any one of its steps, still passes the server's checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from service.pipeline_source import parse_pipeline
from statemachines.contract import pipeline_steps
from stepline.errors import UnknownStep
from stepline.only_step import find_step, only_step

PIPELINES = sorted((Path(__file__).resolve().parents[2] / "statemachines" / "pipelines").iterdir())
CASES = [
    (path, spec.step)
    for path in PIPELINES
    for spec in pipeline_steps(parse_pipeline(path.name, path.read_text()).definition, include_dynamic=True)
]


@pytest.mark.parametrize(("path", "step"), CASES, ids=[f"{p.name}:{s}" for p, s in CASES])
def test_only_one_step_keeps_a_valid_pipeline_with_that_step_alone(path: Path, step: str) -> None:
    definition = parse_pipeline(path.name, path.read_text()).definition
    restricted = only_step(definition, find_step(definition, step))
    checked = parse_pipeline(path.name, json.dumps(restricted))  # raises InvalidPipelineError otherwise
    assert [spec.step for spec in pipeline_steps(checked.definition, include_dynamic=True)] == [step]


def test_a_step_of_a_family_selects_the_family_and_an_unknown_step_names_the_steps() -> None:
    matrix = PIPELINES[[p.name for p in PIPELINES].index("matrix.asl.json")]
    definition = parse_pipeline(matrix.name, matrix.read_text()).definition
    assert find_step(definition, "test-py3.12").step == "test-py{}"
    with pytest.raises(UnknownStep) as refused:
        find_step(definition, "lint")
    assert refused.value.known == ["test-py{}"]
