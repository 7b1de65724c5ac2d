"""A property-based fuzz of the engine's JSON API over HTTP: whatever a client sends to any operation, the
answer is never a 5xx, and the engine's log gets no traceback.

Requests are built from botocore's own model of each operation (so most reach the handlers, not only
the input checks), with values of the wrong type mixed in, definitions and inputs mutated from valid
ones, real ARNs of this test's resources, deep nesting, and bodies that are not JSON at all.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from botocore.model import Shape
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachines.engine.protocol import service_model
from tests.engine_service.conftest import ROLE_ARN, EngineProcess, create_machine, make_client

PASS = {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}
JSONATA = {
    "QueryLanguage": "JSONata",
    "StartAt": "P",
    "States": {"P": {"Type": "Pass", "Output": "{% $states.input %}", "End": True}},
}


def json_values(leaves: int = 12) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
        max_leaves=leaves,
    )


def mutated_definitions() -> st.SearchStrategy[str]:
    """Valid definitions with one field anywhere set to anything, as JSON text (or a deep or broken text)."""

    def mutate(base: dict[str, Any], path: list[str], value: Any) -> str:
        doc = json.loads(json.dumps(base))
        node = doc
        for key in path[:-1]:
            node = node.setdefault(key, {}) if isinstance(node, dict) else node
        if isinstance(node, dict):
            node[path[-1]] = value
        return json.dumps(doc)

    fields = st.sampled_from(
        [
            ["StartAt"],
            ["TimeoutSeconds"],
            ["QueryLanguage"],
            ["States", "P", "Type"],
            ["States", "P", "Next"],
            ["States", "P", "Parameters"],
            ["States", "P", "Output"],
            ["States", "P", "Retry"],
            ["States", "P", "InputPath"],
            ["States", "P", "Seconds"],
            ["States", "P", "Choices"],
            ["States", "P", "ItemProcessor"],
        ]
    )
    return (
        st.builds(mutate, st.sampled_from([PASS, JSONATA]), fields, json_values())
        | st.sampled_from(
            [
                json.dumps(PASS),
                "[" * 5000 + "]" * 5000,
                "{",
                "StartAt: P\nStates: {P: {Type: Pass, End: true}}",
            ]
        )
        | st.text(max_size=50)
    )


def from_shape(shape: Shape, pool: dict[str, list[str]], depth: int = 0) -> st.SearchStrategy[Any]:
    """Values for a botocore shape: mostly well-typed and often valid, one time in four of another type."""
    if depth > 3:
        return json_values(4)
    typed = _typed(shape, pool, depth)
    return typed if depth == 0 else st.one_of(typed, typed, typed, json_values(4))


def _typed(shape: Shape, pool: dict[str, list[str]], depth: int) -> st.SearchStrategy[Any]:
    kind = shape.type_name
    if kind == "structure":
        required = set(shape.metadata.get("required", []))
        members = {name: from_shape(member, pool, depth + 1) for name, member in shape.members.items()}
        return st.fixed_dictionaries(
            {name: members[name] for name in required},
            optional={name: strategy for name, strategy in members.items() if name not in required},
        )
    if kind == "list":
        return st.lists(from_shape(shape.member, pool, depth + 1), max_size=3)  # type: ignore[attr-defined]
    if kind == "map":
        return st.dictionaries(st.text(max_size=10), from_shape(shape.value, pool, depth + 1), max_size=3)  # type: ignore[attr-defined]
    if kind in ("integer", "long"):
        return st.integers(min_value=-5, max_value=1100) | st.integers(min_value=-(2**63), max_value=2**63)
    if kind in ("float", "timestamp"):
        return st.floats(allow_nan=False) | st.integers()
    if kind == "boolean":
        return st.booleans()
    enum = shape.metadata.get("enum")
    if enum:
        return st.sampled_from(list(enum)) | st.text(max_size=10)
    if shape.name == "Definition":
        return mutated_definitions()
    if shape.name in ("SensitiveData", "SensitiveDataJobInput"):
        return st.builds(json.dumps, json_values()) | st.just("[" * 5000 + "]" * 5000) | st.text(max_size=20)
    if "Arn" in shape.name:
        return st.sampled_from(pool["arns"]) | st.text(max_size=40)
    return st.sampled_from(pool["names"]) | st.text(min_size=1, max_size=40)


@pytest.fixture(scope="module")
def pool(engine: EngineProcess) -> dict[str, list[str]]:
    """Real resources, so that fuzzed calls reach the handlers behind the ARN checks."""
    sfn = make_client(engine.endpoint)
    machine = create_machine(sfn, "fuzz-machine", PASS["States"])
    activity = sfn.create_activity(name="fuzz-activity")["activityArn"]
    execution = sfn.start_execution(stateMachineArn=machine)["executionArn"]
    version = sfn.publish_state_machine_version(stateMachineArn=machine)["stateMachineVersionArn"]
    return {"arns": [machine, activity, execution, version, ROLE_ARN], "names": ["fuzz-machine", "x", ""]}


@pytest.fixture(scope="module")
def log_checked(engine: EngineProcess) -> Iterator[None]:
    before = engine.log_path.stat().st_size
    yield
    with engine.log_path.open("rb") as log:
        log.seek(before)
        added = log.read().decode(errors="replace")
    assert "Traceback" not in added, added[-4000:]


OPERATIONS = sorted(service_model().operation_names)


@st.composite
def requests_to_the_engine(draw: st.DrawFn, pool: dict[str, list[str]]) -> tuple[str, bytes]:
    operation = draw(st.sampled_from([*OPERATIONS, "NoSuchOperation"]))
    kind = draw(st.sampled_from(["shaped"] * 8 + ["json", "bytes"]))
    if kind == "bytes":
        return operation, draw(st.binary(max_size=200))
    if kind == "json" or operation == "NoSuchOperation":
        return operation, json.dumps(draw(json_values())).encode()
    shape = service_model().operation_model(operation).input_shape
    params = draw(from_shape(shape, pool)) if shape is not None else {}
    if operation in ("GetActivityTask", "StartSyncExecution") and isinstance(params, dict):
        params.pop("activityArn", None)  # a real long poll or a run to its end only wait
        params.pop("stateMachineArn", None)
    return operation, json.dumps(params).encode()


@pytest.mark.usefixtures("log_checked")
@settings(max_examples=600, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_no_request_gets_a_5xx(
    engine: EngineProcess, pool: dict[str, list[str]], data: st.DataObject
) -> None:
    operation, body = data.draw(requests_to_the_engine(pool))
    headers = {"X-Amz-Target": f"AWSStepFunctions.{operation}", "Content-Type": "application/x-amz-json-1.0"}
    answer = requests.post(engine.endpoint + "/", data=body, headers=headers, timeout=30)
    assert answer.status_code < 500, (operation, body[:300], answer.status_code, answer.text[:500])
    assert "Traceback" not in answer.text
