"""Static validation: every problem found at once, located by JSON path, with AWS's codes."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachines.engine.asl.validation import validate_definition

ACTIVITY = "arn:aws:states:us-east-1:111111111111:activity:build"


def machine(states, start="A", **top):
    return {"StartAt": start, "States": states, **top}


def errors(doc, machine_type="STANDARD"):
    return [(d.code, d.location) for d in validate_definition(doc, machine_type)]


def messages(doc):
    return [d.message for d in validate_definition(doc)]


PIPELINE = machine(
    {
        "A": {
            "Type": "Task",
            "Resource": ACTIVITY,
            "Parameters": {"repo.$": "$.repo", "cmd": "make", "sha.$": "States.Format('{}', $.sha)"},
            "ResultSelector": {"ok.$": "$.ok"},
            "ResultPath": "$.build",
            "TimeoutSeconds": 600,
            "HeartbeatSeconds": 60,
            "Retry": [
                {"ErrorEquals": ["States.HeartbeatTimeout"], "MaxAttempts": 2, "BackoffRate": 1.5},
                {"ErrorEquals": ["States.ALL"], "JitterStrategy": "FULL"},
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
            "Assign": {"attempt": 1, "sha.$": "$.sha"},
            "Next": "Branch",
        },
        "Branch": {
            "Type": "Choice",
            "Choices": [
                {
                    "And": [
                        {"Variable": "$.branch", "StringEquals": "main"},
                        {"Not": {"Variable": "$.pr", "IsPresent": True}},
                    ],
                    "Next": "Fanout",
                },
                {"Variable": "$.when", "TimestampLessThanPath": "$$.Execution.StartTime", "Next": "Wait"},
            ],
            "Default": "Done",
        },
        "Wait": {"Type": "Wait", "SecondsPath": "$.delay", "Next": "Done"},
        "Fanout": {
            "Type": "Parallel",
            "Branches": [
                {"StartAt": "P1", "States": {"P1": {"Type": "Pass", "Result": {"x": 1}, "End": True}}},
                {"StartAt": "P2", "States": {"P2": {"Type": "Succeed"}}},
            ],
            "Next": "Each",
        },
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {"item.$": "$$.Map.Item.Value"},
            "MaxConcurrency": 2,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "M",
                "States": {"M": {"Type": "Pass", "End": True}},
            },
            "Next": "Done",
        },
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "ErrorPath": "$.error.Error", "CausePath": "$.error.Cause"},
    },
    Comment="CI pipeline",
    TimeoutSeconds=3600,
)


def test_a_full_pipeline_is_valid():
    assert validate_definition(PIPELINE) == []


def test_a_jsonata_machine_is_valid():
    doc = machine(
        {
            "A": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Arguments": {"FunctionName": "f", "Payload": "{% $states.input %}"},
                "Output": "{% $states.result.Payload %}",
                "Assign": {"x": "{% $states.input.x %}"},
                "Catch": [
                    {"ErrorEquals": ["States.ALL"], "Output": "{% $states.errorOutput %}", "Next": "B"}
                ],
                "Next": "B",
            },
            "B": {
                "Type": "Choice",
                "Choices": [{"Condition": "{% $x > 1 %}", "Next": "C"}],
                "Default": "C",
            },
            "C": {
                "Type": "Map",
                "Items": "{% [1, 2] %}",
                "MaxConcurrency": "{% 1 %}",
                "ItemProcessor": {"StartAt": "D", "States": {"D": {"Type": "Pass", "End": True}}},
                "Next": "E",
            },
            "E": {"Type": "Wait", "Seconds": "{% 0 %}", "Next": "F"},
            "F": {"Type": "Fail", "Error": "{% 'E' %}", "Cause": "boom"},
        },
        QueryLanguage="JSONata",
    )
    assert validate_definition(doc) == []


def test_every_problem_is_reported_at_once():
    doc = machine(
        {
            "A": {"Type": "Pass", "Foo": 1, "Next": "Nowhere"},
            "B": {"Type": "Pass", "End": True},
            "C": {"Type": "Task", "End": True},
        },
        Bar=2,
    )
    found = errors(doc)
    assert ("SCHEMA_VALIDATION_FAILED", "/") in found  # Bar
    assert ("SCHEMA_VALIDATION_FAILED", "/States/A") in found  # Foo
    assert ("MISSING_TRANSITION_TARGET", "/States/A/Next") in found
    assert ("MISSING_TRANSITION_TARGET", "/States/B") in found  # unreachable
    assert ("SCHEMA_VALIDATION_FAILED", "/States/C") in found  # Resource missing
    assert 'The field "Foo" is not supported by Step Functions' in messages(doc)
    assert "Missing 'Next' target: Nowhere" in messages(doc)
    assert 'State "B" is not reachable.' in messages(doc)


@pytest.mark.parametrize(
    ("doc", "location"),
    [
        ({"States": {"A": {"Type": "Succeed"}}}, "/"),
        ({"StartAt": "A"}, "/"),
        (machine({"A": {"Type": "Succeed"}}, start="Z"), "/StartAt"),
        (machine({}), "/States"),
        (machine({"A": {"Type": "Nope"}}), "/States/A/Type"),
        (machine({"A": "not an object"}), "/States/A"),
        (machine({"A": {"Type": "Pass"}}), "/States/A"),
        (machine({"A": {"Type": "Pass", "End": True, "Next": "A"}}), "/States/A"),
        (machine({"A": {"Type": "Succeed"}}, QueryLanguage="XPath"), "/QueryLanguage"),
        (machine({"A": {"Type": "Succeed"}}, TimeoutSeconds=0), "/TimeoutSeconds"),
        (machine({"A" * 81: {"Type": "Succeed"}}, start="A" * 81), "/States/" + "A" * 81),
    ],
)
def test_structure_errors(doc, location):
    assert location in [loc for _, loc in errors(doc)]


@pytest.mark.parametrize(
    ("state", "location"),
    [
        ({"Type": "Pass", "InputPath": "not a path", "End": True}, "/States/A/InputPath"),
        ({"Type": "Pass", "OutputPath": "$.a[", "End": True}, "/States/A/OutputPath"),
        ({"Type": "Pass", "ResultPath": "$.a[*]", "End": True}, "/States/A/ResultPath"),
        ({"Type": "Pass", "ResultPath": "$$.Execution", "End": True}, "/States/A/ResultPath"),
        ({"Type": "Pass", "Parameters": {"x.$": "nope"}, "End": True}, "/States/A/Parameters/x.$"),
        (
            {"Type": "Pass", "Parameters": {"x": {"y.$": "States.Nope()"}}, "End": True},
            "/States/A/Parameters/x/y.$",
        ),
        (
            {"Type": "Pass", "Parameters": {"x.$": "States.MathAdd(1)"}, "End": True},
            "/States/A/Parameters/x.$",
        ),
        ({"Type": "Pass", "Assign": {"bad-name": 1}, "End": True}, "/States/A/Assign/bad-name"),
        ({"Type": "Pass", "Assign": {"states": 1}, "End": True}, "/States/A/Assign/states"),
        ({"Type": "Pass", "Assign": [1], "End": True}, "/States/A/Assign"),
        (
            {"Type": "Task", "Resource": ACTIVITY, "TimeoutSeconds": 0, "End": True},
            "/States/A/TimeoutSeconds",
        ),
        (
            {
                "Type": "Task",
                "Resource": ACTIVITY,
                "HeartbeatSeconds": 1,
                "HeartbeatSecondsPath": "$.h",
                "End": True,
            },
            "/States/A",
        ),
        ({"Type": "Task", "Resource": "arn:aws:states:::nope:run", "End": True}, "/States/A/Resource"),
        ({"Type": "Task", "Resource": 5, "End": True}, "/States/A/Resource"),
        ({"Type": "Wait", "End": True}, "/States/A"),
        ({"Type": "Wait", "Seconds": 1, "Timestamp": "2016-03-14T01:59:00Z", "End": True}, "/States/A"),
        ({"Type": "Wait", "Timestamp": "yesterday", "End": True}, "/States/A/Timestamp"),
        ({"Type": "Wait", "Seconds": -1, "End": True}, "/States/A/Seconds"),
        ({"Type": "Fail", "Error": "E", "ErrorPath": "$.e"}, "/States/A"),
        ({"Type": "Fail", "CausePath": "nope"}, "/States/A/CausePath"),
        ({"Type": "Succeed", "Next": "A"}, "/States/A"),
        ({"Type": "Parallel", "Branches": [], "End": True}, "/States/A/Branches"),
        ({"Type": "Map", "End": True}, "/States/A"),
        (
            {
                "Type": "Map",
                "ItemsPath": "$.x[*]",
                "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
                "End": True,
            },
            "/States/A/ItemsPath",
        ),
        (
            {
                "Type": "Map",
                "ToleratedFailurePercentage": 101,
                "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
                "End": True,
            },
            "/States/A/ToleratedFailurePercentage",
        ),
        (
            {
                "Type": "Map",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "FAST"},
                    "StartAt": "B",
                    "States": {"B": {"Type": "Succeed"}},
                },
                "End": True,
            },
            "/States/A/ItemProcessor/ProcessorConfig/Mode",
        ),
    ],
)
def test_state_field_errors(state, location):
    assert location in [loc for _, loc in errors(machine({"A": state}))]


@pytest.mark.parametrize(
    ("retry", "location"),
    [
        ([{"ErrorEquals": ["States.ALL", "X"]}], "/States/A/Retry[0]/ErrorEquals"),
        ([{"ErrorEquals": ["States.ALL"]}, {"ErrorEquals": ["X"]}], "/States/A/Retry[0]/ErrorEquals"),
        ([{"ErrorEquals": []}], "/States/A/Retry[0]/ErrorEquals"),
        ([{"ErrorEquals": ["X"], "BackoffRate": 0.5}], "/States/A/Retry[0]/BackoffRate"),
        ([{"ErrorEquals": ["X"], "MaxAttempts": -1}], "/States/A/Retry[0]/MaxAttempts"),
        ([{"ErrorEquals": ["X"], "IntervalSeconds": 0}], "/States/A/Retry[0]/IntervalSeconds"),
        ([{"ErrorEquals": ["X"], "JitterStrategy": "SOME"}], "/States/A/Retry[0]/JitterStrategy"),
        ([{"ErrorEquals": ["X"], "Next": "A"}], "/States/A/Retry[0]"),
        ({"ErrorEquals": ["X"]}, "/States/A/Retry"),
    ],
)
def test_retry_errors(retry, location):
    doc = machine({"A": {"Type": "Task", "Resource": ACTIVITY, "Retry": retry, "End": True}})
    assert location in [loc for _, loc in errors(doc)]


def test_catch_errors():
    doc = machine(
        {
            "A": {
                "Type": "Task",
                "Resource": ACTIVITY,
                "Catch": [{"ErrorEquals": ["X"]}, {"ErrorEquals": ["States.ALL"], "Next": "Ghost"}],
                "End": True,
            }
        }
    )
    found = errors(doc)
    assert ("SCHEMA_VALIDATION_FAILED", "/States/A/Catch[0]") in found
    assert ("MISSING_TRANSITION_TARGET", "/States/A/Catch[1]/Next") in found


def test_catch_target_makes_a_state_reachable():
    doc = machine(
        {
            "A": {
                "Type": "Task",
                "Resource": ACTIVITY,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "B"}],
                "End": True,
            },
            "B": {"Type": "Fail"},
        }
    )
    assert validate_definition(doc) == []


@pytest.mark.parametrize(
    ("rule", "location"),
    [
        ({"Variable": "$.a", "StringEquals": "x"}, "/States/A/Choices[0]"),  # no Next
        ({"Variable": "$.a", "StringEquals": "x", "Next": "Ghost"}, "/States/A/Choices[0]/Next"),
        ({"Variable": "$.a", "Next": "B"}, "/States/A/Choices[0]"),
        ({"Variable": "$.a", "StringEquals": "x", "NumericEquals": 1, "Next": "B"}, "/States/A/Choices[0]"),
        ({"Variable": "$.a", "NumericEquals": "1", "Next": "B"}, "/States/A/Choices[0]/NumericEquals"),
        ({"Variable": "$.a", "BooleanEquals": 1, "Next": "B"}, "/States/A/Choices[0]/BooleanEquals"),
        ({"Variable": "$.a", "TimestampEquals": "now", "Next": "B"}, "/States/A/Choices[0]/TimestampEquals"),
        ({"Variable": "$.a", "StringEqualsPath": "x", "Next": "B"}, "/States/A/Choices[0]/StringEqualsPath"),
        ({"Variable": "nope", "IsNull": True, "Next": "B"}, "/States/A/Choices[0]/Variable"),
        ({"And": [], "Next": "B"}, "/States/A/Choices[0]/And"),
        ({"Not": [{"Variable": "$.a", "IsNull": True}], "Next": "B"}, "/States/A/Choices[0]/Not"),
        ({"Or": [{"Variable": "$.a", "Next": "B"}], "Next": "B"}, "/States/A/Choices[0]/Or[0]"),
        ({"Condition": "{% true %}", "Next": "B"}, "/States/A/Choices[0]"),
    ],
)
def test_choice_rule_errors(rule, location):
    doc = machine({"A": {"Type": "Choice", "Choices": [rule], "Default": "B"}, "B": {"Type": "Succeed"}})
    assert location in [loc for _, loc in errors(doc)]


def test_choice_needs_choices_and_a_real_default():
    found = errors(machine({"A": {"Type": "Choice", "Choices": [], "Default": "Ghost"}}))
    assert ("SCHEMA_VALIDATION_FAILED", "/States/A/Choices") in found
    assert ("MISSING_TRANSITION_TARGET", "/States/A/Default") in found


@pytest.mark.parametrize(
    "state",
    [
        {"Type": "Pass", "InputPath": "$.a", "End": True},
        {"Type": "Pass", "Parameters": {"a": 1}, "End": True},
        {"Type": "Pass", "Result": 1, "End": True},
        {"Type": "Task", "Resource": ACTIVITY, "ResultSelector": {}, "End": True},
        {"Type": "Task", "Resource": ACTIVITY, "TimeoutSecondsPath": "$.t", "End": True},
        {"Type": "Wait", "SecondsPath": "$.s", "End": True},
        {"Type": "Fail", "ErrorPath": "$.e"},
        {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsNull": True, "Next": "A"}]},
    ],
)
def test_jsonpath_fields_are_rejected_under_jsonata(state):
    found = errors(machine({"A": state}, QueryLanguage="JSONata"))
    assert any(code == "SCHEMA_VALIDATION_FAILED" for code, _ in found)


@pytest.mark.parametrize(
    "state",
    [
        {"Type": "Pass", "Output": 1, "End": True},
        {"Type": "Task", "Resource": ACTIVITY, "Arguments": {}, "End": True},
        {
            "Type": "Map",
            "Items": [1],
            "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
            "End": True,
        },
        {"Type": "Choice", "Choices": [{"Condition": "{% true %}", "Next": "A"}]},
    ],
)
def test_jsonata_fields_are_rejected_under_jsonpath(state):
    found = errors(machine({"A": state}))
    assert any(code == "SCHEMA_VALIDATION_FAILED" for code, _ in found)


def test_a_state_may_opt_into_jsonata_but_not_back_out():
    mixed = machine({"A": {"Type": "Pass", "QueryLanguage": "JSONata", "Output": "{% 1 %}", "End": True}})
    assert validate_definition(mixed) == []
    back = machine({"A": {"Type": "Pass", "QueryLanguage": "JSONPath", "End": True}}, QueryLanguage="JSONata")
    assert ("SCHEMA_VALIDATION_FAILED", "/States/A/QueryLanguage") in errors(back)


def test_invalid_jsonata_is_reported_where_it_is():
    doc = machine(
        {"A": {"Type": "Pass", "Output": {"x": ["{% 1 + %}"]}, "End": True}}, QueryLanguage="JSONata"
    )
    assert ("SCHEMA_VALIDATION_FAILED", "/States/A/Output/x[0]") in errors(doc)


def test_nested_scopes_are_validated_and_next_may_not_cross_them():
    doc = machine(
        {
            "A": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "B"}}}],
                "Next": "B",
            },
            "B": {
                "Type": "Map",
                "Iterator": {
                    "StartAt": "M",
                    "States": {"M": {"Type": "Pass", "Next": "A"}, "Lost": {"Type": "Succeed"}},
                },
                "End": True,
            },
        }
    )
    found = errors(doc)
    assert ("MISSING_TRANSITION_TARGET", "/States/A/Branches[0]/States/P/Next") in found
    assert ("MISSING_TRANSITION_TARGET", "/States/B/Iterator/States/M/Next") in found
    assert ("MISSING_TRANSITION_TARGET", "/States/B/Iterator/States/Lost") in found


def test_distributed_map_fields_are_accepted():
    doc = machine(
        {
            "A": {
                "Type": "Map",
                "ItemReader": {
                    "Resource": "arn:aws:states:::s3:getObject",
                    "Parameters": {"Bucket": "b", "Key": "k"},
                },
                "ItemBatcher": {"MaxItemsPerBatch": 10},
                "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "b"}},
                "Label": "each",
                "ToleratedFailureCountPath": "$.n",
                "ToleratedFailurePercentage": 5,
                "MaxConcurrencyPath": "$.m",
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "EXPRESS"},
                    "StartAt": "B",
                    "States": {"B": {"Type": "Pass", "End": True}},
                },
                "End": True,
            }
        }
    )
    assert validate_definition(doc) == []


def test_resources_aws_rejects():
    dynamo = machine({"A": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:query", "End": True}})
    assert messages(dynamo) == [
        "The resource provided arn:<partition>:states:::dynamodb:query is not recognized. The value is not a "
        "valid resource ARN, or the resource is not available in this region."
    ]
    express = machine({"A": {"Type": "Task", "Resource": ACTIVITY, "End": True}})
    assert errors(express, "EXPRESS") == [("SCHEMA_VALIDATION_FAILED", "/States/A/Resource")]
    assert validate_definition(express, "STANDARD") == []


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:states:::lambda:invoke",
        "arn:aws:states:::lambda:invoke.waitForTaskToken",
        "arn:aws:states:::states:startExecution.sync:2",
        "arn:aws:states:::aws-sdk:dynamodb:query",
        "arn:aws:states:::dynamodb:putItem",
        "arn:aws:lambda:us-east-1:111111111111:function:build",
        "${BuildActivityArn}",
    ],
)
def test_resources_aws_accepts(resource):
    assert validate_definition(machine({"A": {"Type": "Task", "Resource": resource, "End": True}})) == []


def test_credentials_need_a_role():
    doc = machine({"A": {"Type": "Task", "Resource": ACTIVITY, "Credentials": {}, "End": True}})
    assert messages(doc) == ["The field 'RoleArn' is required but was missing"]


def test_validation_does_not_mutate_the_definition():
    before = copy.deepcopy(PIPELINE)
    validate_definition(PIPELINE)
    assert before == PIPELINE


def test_a_non_object_definition_is_one_error():
    assert errors([1, 2]) == [("SCHEMA_VALIDATION_FAILED", "/")]


def test_state_names_are_unique_across_the_whole_machine():
    doc = machine(
        {
            "A": {
                "Type": "Parallel",
                "Branches": [{"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}],
                "End": True,
            }
        }
    )
    assert ("DUPLICATE_STATE_NAME", "/States/A/Branches[0]/States/A") in errors(doc)


def test_a_scope_without_a_terminal_state_is_missing_end_state():
    doc = machine({"A": {"Type": "Pass", "Next": "B"}, "B": {"Type": "Pass", "Next": "A"}})
    assert ("MISSING_END_STATE", "/States") in errors(doc)


def test_a_path_without_dollar_key_is_a_warning_only():
    doc = machine({"A": {"Type": "Pass", "Parameters": {"repo": "$.repo"}, "End": True}})
    found = validate_definition(doc)
    assert [(d.code, d.severity, d.location) for d in found] == [
        ("NO_DOLLAR", "WARNING", "/States/A/Parameters/repo")
    ]


def test_jsonata_expressions_are_rejected_in_jsonpath_templates_but_not_in_assign():
    doc = machine(
        {"A": {"Type": "Pass", "Parameters": {"x": ["{% 1 %}"]}, "Assign": {"v": "{% 2 %}"}, "End": True}}
    )
    # a JSONPath Assign stores literals as they are (test_assign_validation.py)
    assert errors(doc) == [("SCHEMA_VALIDATION_FAILED", "/States/A/Parameters/x[0]")]


def test_express_rejects_sync_and_callback_integrations():
    doc = machine(
        {"A": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync", "End": True}}
    )
    assert errors(doc, "EXPRESS") == [("SCHEMA_VALIDATION_FAILED", "/States/A/Resource")]
    assert errors(doc, "STANDARD") == []


def test_heartbeat_must_be_below_timeout():
    doc = machine(
        {
            "A": {
                "Type": "Task",
                "Resource": ACTIVITY,
                "TimeoutSeconds": 60,
                "HeartbeatSeconds": 60,
                "End": True,
            }
        }
    )
    assert errors(doc) == [("SCHEMA_VALIDATION_FAILED", "/States/A/HeartbeatSeconds")]


def test_distributed_map_objects_are_checked():
    doc = machine(
        {
            "A": {
                "Type": "Map",
                "ItemBatcher": {"MaxItems": 3},
                "ItemReader": "s3",
                "ItemProcessor": {"StartAt": "B", "States": {"B": {"Type": "Succeed"}}},
                "End": True,
            }
        }
    )
    assert errors(doc) == [
        ("SCHEMA_VALIDATION_FAILED", "/States/A/ItemReader"),
        ("SCHEMA_VALIDATION_FAILED", "/States/A/ItemBatcher"),
    ]


def test_unicode_variable_names_are_allowed():
    assert (
        validate_definition(machine({"A": {"Type": "Pass", "Assign": {"größe": 1, "_x1": 2}, "End": True}}))
        == []
    )


FIELD_NAMES = [
    "Type",
    "Next",
    "End",
    "States",
    "StartAt",
    "Choices",
    "Variable",
    "StringEquals",
    "And",
    "Not",
    "Retry",
    "Catch",
    "ErrorEquals",
    "Branches",
    "ItemProcessor",
    "Parameters",
    "ResultPath",
    "InputPath",
    "Assign",
    "Resource",
    "Seconds",
    "Items",
    "Output",
    "Condition",
    "QueryLanguage",
    "a.$",
    "x",
]
VALUES = [
    "Pass",
    "Task",
    "Choice",
    "Map",
    "Parallel",
    "Wait",
    "Fail",
    "Succeed",
    "A",
    "$.a",
    "$$",
    "JSONata",
    "States.ALL",
    "States.Array(",
    "{% 1 %}",
    "{% ( %}",
    True,
    0,
    -1,
    None,
]
shapes = st.recursive(
    st.sampled_from(VALUES),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.sampled_from(FIELD_NAMES), children, max_size=5)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(shapes, st.sampled_from(["STANDARD", "EXPRESS"]))
def test_any_document_gives_diagnostics_never_an_exception(doc, machine_type):
    for diagnostic in validate_definition(doc, machine_type):
        assert diagnostic.code and diagnostic.location.startswith("/")


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELD_NAMES), shapes, max_size=6))
def test_any_state_body_gives_diagnostics_never_an_exception(state):
    validate_definition(machine({"A": state}))
    validate_definition(machine({"A": state}, QueryLanguage="JSONata"))


@pytest.mark.parametrize(
    "states",
    [
        {
            "A": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "IsPresent": True, "Next": []}],
                "Default": {},
            }
        },
        {"A": {"Type": "Pass", "Next": {}}},
        {
            "A": {
                "Type": "Task",
                "Resource": "arn:aws:states:us-east-1:1:activity:x",
                "End": True,
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": [1]}],
            }
        },
    ],
)
def test_a_transition_that_is_not_a_string_is_a_diagnostic(states):
    diagnostics = validate_definition({"StartAt": "A", "States": states})
    assert any("must be a state name" in d.message for d in diagnostics)


def _retry_task(**retrier):
    return {
        "Type": "Task",
        "Resource": ACTIVITY,
        "Retry": [{"ErrorEquals": ["States.ALL"], **retrier}],
        "End": True,
    }


@pytest.mark.parametrize(
    ("state", "location", "message"),
    [
        (_retry_task(MaxAttempts=100000000000), "/States/A/Retry[0]/MaxAttempts", "from 0 to 99999999"),
        (_retry_task(IntervalSeconds=100000000), "/States/A/Retry[0]/IntervalSeconds", "from 1 to 99999999"),
        (_retry_task(MaxDelaySeconds=31622401), "/States/A/Retry[0]/MaxDelaySeconds", "from 1 to 31622400"),
        (_retry_task(BackoffRate=float("inf")), "/States/A/Retry[0]/BackoffRate", "at least 1.0"),
        (_retry_task(BackoffRate=0.5), "/States/A/Retry[0]/BackoffRate", "at least 1.0"),
        (
            {"Type": "Task", "Resource": ACTIVITY, "TimeoutSeconds": 100000000, "End": True},
            "/States/A/TimeoutSeconds",
            "from 1 to 99999999",
        ),
        (
            {"Type": "Task", "Resource": ACTIVITY, "HeartbeatSeconds": 100000000, "End": True},
            "/States/A/HeartbeatSeconds",
            "from 1 to 99999999",
        ),
        ({"Type": "Wait", "Seconds": 100000000, "End": True}, "/States/A/Seconds", "from 0 to 99999999"),
    ],
)
def test_numeric_fields_beyond_aws_limits_are_refused_where_they_are(state, location, message):
    found = [d for d in validate_definition(machine({"A": state})) if d.location == location]
    assert [d.code for d in found] == ["SCHEMA_VALIDATION_FAILED"] and message in found[0].message


def test_numeric_fields_at_aws_limits_are_accepted():
    retrier = {"MaxAttempts": 99999999, "IntervalSeconds": 99999999, "MaxDelaySeconds": 31622400}
    task = {**_retry_task(**retrier), "TimeoutSeconds": 99999999, "HeartbeatSeconds": 99999998}
    wait = {"Type": "Wait", "Seconds": 99999999, "Next": "A"}
    assert errors(machine({"W": wait, "A": task}, start="W", TimeoutSeconds=99999999)) == []
    assert ("SCHEMA_VALIDATION_FAILED", "/TimeoutSeconds") in errors(
        machine({"A": task}, TimeoutSeconds=10**8)
    )
