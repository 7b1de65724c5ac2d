"""Per-state-type validation: what a Task, Wait, Choice, Parallel, Map or Fail state must hold."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .fields import (
    ACTIVITY_ARN,
    BRANCH_FIELDS,
    DISTRIBUTED_FIELDS,
    MAX_SECONDS,
    PROCESSOR_CONFIG_FIELDS,
    PROCESSOR_FIELDS,
    is_recognized_resource,
)
from .jsonata_query import is_template
from .validation_rules import check_choice_rules

if TYPE_CHECKING:
    from .validation import Checker

SCHEMA = "SCHEMA_VALIDATION_FAILED"
TRANSITION = "MISSING_TRANSITION_TARGET"


def _check_task(
    checker: Checker, state: dict[str, Any], states: dict[str, Any], location: str, language: str
) -> None:
    checker.required(state, ("Resource",), location)
    resource = state.get("Resource")
    if "Resource" in state and not isinstance(resource, str):
        checker.error(SCHEMA, "The field 'Resource' must be a string", f"{location}/Resource")
    elif isinstance(resource, str) and "${" not in resource:  # deviation: deploy-time placeholders pass
        if checker.machine_type == "EXPRESS" and ACTIVITY_ARN.match(resource):
            checker.error(
                SCHEMA, "Express state machine does not support Activity ARN", f"{location}/Resource"
            )
        elif checker.machine_type == "EXPRESS" and re.search(r"\.(sync(:2)?|waitForTaskToken)$", resource):
            pattern = resource.rsplit(".", 1)[1]
            checker.error(
                SCHEMA,
                f"Express state machine does not support '.{pattern}' service integration.",
                f"{location}/Resource",
            )
        elif not is_recognized_resource(resource):
            shown = re.sub(r"^arn:aws[a-z-]*:", "arn:<partition>:", resource)
            checker.error(
                SCHEMA,
                f"The resource provided {shown} is not recognized. The value is not a valid resource ARN, "
                "or the resource is not available in this region.",
                f"{location}/Resource",
            )
    checker.exclusive(state, ("TimeoutSeconds", "TimeoutSecondsPath"), location)
    checker.exclusive(state, ("HeartbeatSeconds", "HeartbeatSecondsPath"), location)
    checker.integer(state, "TimeoutSeconds", language, location, least=1, most=MAX_SECONDS)
    checker.integer(state, "HeartbeatSeconds", language, location, least=1, most=MAX_SECONDS)
    timeout, heartbeat = state.get("TimeoutSeconds"), state.get("HeartbeatSeconds")
    if isinstance(timeout, int) and isinstance(heartbeat, int) and heartbeat >= timeout:
        checker.error(
            SCHEMA, "HeartbeatSeconds must be smaller than TimeoutSeconds", f"{location}/HeartbeatSeconds"
        )
    for field in ("TimeoutSecondsPath", "HeartbeatSecondsPath"):
        if field in state:
            checker.path(state[field], f"{location}/{field}", reference=True, nullable=False)
    credentials = state.get("Credentials")
    if "Credentials" in state:
        if not isinstance(credentials, dict):
            checker.error(SCHEMA, "The field 'Credentials' must be an object", f"{location}/Credentials")
        elif "RoleArn" not in credentials and "RoleArn.$" not in credentials:
            checker.error(
                SCHEMA, "The field 'RoleArn' is required but was missing", f"{location}/Credentials"
            )


def _check_pass(
    checker: Checker, state: dict[str, Any], states: dict[str, Any], location: str, language: str
) -> None:
    return  # Result is any JSON; the I/O fields are checked in _check_io


def _check_wait(
    checker: Checker, state: dict[str, Any], states: dict[str, Any], location: str, language: str
) -> None:
    present = [f for f in ("Seconds", "SecondsPath", "Timestamp", "TimestampPath") if f in state]
    if len(present) != 1:
        checker.error(
            SCHEMA, "Exactly one of Seconds, SecondsPath, Timestamp, TimestampPath is required", location
        )
    checker.integer(state, "Seconds", language, location, least=0, most=MAX_SECONDS)
    for field in ("SecondsPath", "TimestampPath"):
        if field in state:
            checker.path(state[field], f"{location}/{field}", reference=True, nullable=False)
    timestamp = state.get("Timestamp")
    if "Timestamp" in state and not (language == "JSONata" and is_template(timestamp)):
        from .choice_rules import parse_timestamp  # choice_rules owns the RFC 3339 parser

        if parse_timestamp(timestamp) is None:
            checker.error(
                SCHEMA, "The field 'Timestamp' must be an RFC 3339 timestamp", f"{location}/Timestamp"
            )
    elif "Timestamp" in state:
        checker.jsonata(timestamp, f"{location}/Timestamp")


def _check_choice(
    checker: Checker, state: dict[str, Any], states: dict[str, Any], location: str, language: str
) -> None:
    checker.required(state, ("Choices",), location)
    if "Default" in state:
        checker.transition(state["Default"], states, f"{location}/Default")
    if "Choices" in state:
        check_choice_rules(checker, state["Choices"], states, language, f"{location}/Choices")


def _check_parallel(
    checker: Checker, state: dict[str, Any], states: dict[str, Any], location: str, language: str
) -> None:
    checker.required(state, ("Branches",), location)
    branches = state.get("Branches")
    if "Branches" in state and (not isinstance(branches, list) or not branches):
        checker.error(SCHEMA, "The field 'Branches' must be a non-empty array", f"{location}/Branches")
        return
    for index, branch in enumerate(branches or []):
        where = f"{location}/Branches[{index}]"
        if not isinstance(branch, dict):
            checker.error(SCHEMA, "A branch must be a JSON object", where)
            continue
        checker.unknown_fields(branch, BRANCH_FIELDS, where)
        checker.scope(branch, where, branch.get("QueryLanguage", language))


def _check_map(
    checker: Checker, state: dict[str, Any], states: dict[str, Any], location: str, language: str
) -> None:
    field = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
    checker.exclusive(state, ("ItemProcessor", "Iterator"), location)
    checker.required(state, (field,), location)
    processor = state.get(field)
    if field in state:
        where = f"{location}/{field}"
        if not isinstance(processor, dict):
            checker.error(SCHEMA, f"The field '{field}' must be an object", where)
        else:
            checker.unknown_fields(processor, PROCESSOR_FIELDS, where)
            config = processor.get("ProcessorConfig", {})
            if not isinstance(config, dict):
                checker.error(
                    SCHEMA, "The field 'ProcessorConfig' must be an object", f"{where}/ProcessorConfig"
                )
            else:
                checker.unknown_fields(config, PROCESSOR_CONFIG_FIELDS, f"{where}/ProcessorConfig")
                if config.get("Mode", "INLINE") not in ("INLINE", "DISTRIBUTED"):
                    checker.error(
                        SCHEMA,
                        "The field 'Mode' must be INLINE or DISTRIBUTED",
                        f"{where}/ProcessorConfig/Mode",
                    )
                if config.get("ExecutionType", "STANDARD") not in ("STANDARD", "EXPRESS"):
                    checker.error(
                        SCHEMA,
                        "The field 'ExecutionType' must be STANDARD or EXPRESS",
                        f"{where}/ProcessorConfig/ExecutionType",
                    )
            checker.scope(processor, where, processor.get("QueryLanguage", language))
    for name, least in (("MaxConcurrency", 0), ("ToleratedFailureCount", 0)):
        checker.integer(state, name, language, location, least=least)
    percentage = state.get("ToleratedFailurePercentage")
    if "ToleratedFailurePercentage" in state and not (language == "JSONata" and is_template(percentage)):
        if (
            isinstance(percentage, bool)
            or not isinstance(percentage, int | float)
            or not 0 <= percentage <= 100
        ):
            checker.error(
                SCHEMA,
                "The field 'ToleratedFailurePercentage' must be a number from 0 to 100",
                f"{location}/ToleratedFailurePercentage",
            )
    checker.exclusive(state, ("MaxConcurrency", "MaxConcurrencyPath"), location)
    checker.exclusive(state, ("ToleratedFailureCount", "ToleratedFailureCountPath"), location)
    checker.exclusive(state, ("ToleratedFailurePercentage", "ToleratedFailurePercentagePath"), location)
    if "ItemsPath" in state:
        checker.path(state["ItemsPath"], f"{location}/ItemsPath", reference=True, nullable=False)
    items = state.get("Items")
    # "Items (Optional, JSONata only): a JSON array or a JSONata expression that must evaluate to an array"
    if "Items" in state and not isinstance(items, list) and not is_template(items):
        checker.error(
            SCHEMA, "The field 'Items' must be a JSON array or a JSONata expression", f"{location}/Items"
        )
    for name in ("MaxConcurrencyPath", "ToleratedFailureCountPath", "ToleratedFailurePercentagePath"):
        if name in state:
            checker.path(state[name], f"{location}/{name}", reference=True, nullable=False)
    for field, allowed in DISTRIBUTED_FIELDS.items():
        if field in state and not isinstance(state[field], dict):
            checker.error(SCHEMA, f"The field '{field}' must be an object", f"{location}/{field}")
        elif field in state:
            checker.unknown_fields(state[field], allowed, f"{location}/{field}")
    if "Label" in state and (not isinstance(state["Label"], str) or len(state["Label"]) > 40):
        checker.error(
            SCHEMA, "The field 'Label' must be a string of at most 40 characters", f"{location}/Label"
        )


def _check_succeed(
    checker: Checker, state: dict[str, Any], states: dict[str, Any], location: str, language: str
) -> None:
    return


def _check_fail(
    checker: Checker, state: dict[str, Any], states: dict[str, Any], location: str, language: str
) -> None:
    checker.exclusive(state, ("Error", "ErrorPath"), location)
    checker.exclusive(state, ("Cause", "CausePath"), location)
    for field in ("Error", "Cause"):
        if field in state and not isinstance(state[field], str):
            checker.error(SCHEMA, f"The field '{field}' must be a string", f"{location}/{field}")
        elif field in state and language == "JSONata":
            checker.jsonata(state[field], f"{location}/{field}")
    for field in ("ErrorPath", "CausePath"):
        if field in state:
            checker.expression(state[field], f"{location}/{field}")


STATE_CHECKS = {
    "Task": _check_task,
    "Pass": _check_pass,
    "Wait": _check_wait,
    "Choice": _check_choice,
    "Parallel": _check_parallel,
    "Map": _check_map,
    "Succeed": _check_succeed,
    "Fail": _check_fail,
}
