"""Reading definitions from JSON or YAML text, and AWS's InvalidDefinition message."""

from __future__ import annotations

import pytest

from statemachines.engine.asl.definition import format_definition_error, load_definition, parse_definition
from statemachines.engine.asl.errors import Diagnostic, InvalidDefinitionError

JSON_TEXT = '{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}'
YAML_TEXT = """
Comment: a pipeline in YAML
StartAt: A
States:
  A:
    Type: Pass
    Result: {ok: true}
    End: true
"""


def test_json_and_yaml_parse_to_the_same_shape():
    assert parse_definition(JSON_TEXT) == {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}}
    assert parse_definition(YAML_TEXT)["States"]["A"]["Result"] == {"ok": True}


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "MISSING_DESCRIPTION"),
        ("   ", "MISSING_DESCRIPTION"),
        ('{"StartAt": ', "INVALID_JSON_DESCRIPTION"),
        ("[1, 2]", "INVALID_JSON_DESCRIPTION"),
        ("just words", "INVALID_JSON_DESCRIPTION"),
        ('{"a": NaN}', "INVALID_JSON_DESCRIPTION"),
        ("key: [unclosed", "INVALID_JSON_DESCRIPTION"),
    ],
)
def test_unparseable_text(text, code):
    with pytest.raises(InvalidDefinitionError) as info:
        parse_definition(text)
    assert [d.code for d in info.value.diagnostics] == [code]


def test_load_validates_and_reports_every_error():
    text = '{"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B", "Foo": 1}}}'
    with pytest.raises(InvalidDefinitionError) as info:
        load_definition(text)
    codes = sorted(d.code for d in info.value.diagnostics)
    assert codes == ["MISSING_END_STATE", "MISSING_TRANSITION_TARGET", "SCHEMA_VALIDATION_FAILED"]


def test_load_returns_the_document():
    assert load_definition(YAML_TEXT)["StartAt"] == "A"


def test_load_knows_the_machine_type():
    text = (
        '{"StartAt": "A", "States": {"A": {"Type": "Task", "End": true, '
        '"Resource": "arn:aws:states:us-east-1:111111111111:activity:x"}}}'
    )
    assert load_definition(text)["StartAt"] == "A"
    with pytest.raises(InvalidDefinitionError):
        load_definition(text, "EXPRESS")


def test_aws_message_format():
    diagnostics = [
        Diagnostic(
            "SCHEMA_VALIDATION_FAILED",
            "The field 'RoleArn' is required but was missing",
            "/States/S/Credentials",
        ),
        Diagnostic("NO_DOLLAR", "a warning", "/States/S", "WARNING"),
    ]
    assert format_definition_error(diagnostics) == (
        "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: The field 'RoleArn' is required but was "
        "missing at /States/S/Credentials'"
    )


def test_several_errors_are_joined():
    diagnostics = [Diagnostic("A_CODE", "one", "/x"), Diagnostic("B_CODE", "two", "/y")]
    assert (
        format_definition_error(diagnostics)
        == "Invalid State Machine Definition: 'A_CODE: one at /x, B_CODE: two at /y'"
    )
