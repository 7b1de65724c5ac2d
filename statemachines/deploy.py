"""Deploying a pipeline: its activities, then a state machine named by a hash of its final definition.

`ensure_pipeline(sfn, definition, ...)` is idempotent and safe when several processes run it at once:
activities are created by name (CreateActivity is idempotent), and the state machine's name carries the
hash of the definition it holds, so two callers with one definition converge on one state machine and a
changed definition gets a new one (a running execution never sees its pipeline change under it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from typing import Any

from statemachines.contract import activity_name, activity_pools, substitute_activities
from statemachines.errors import DeployError

log = logging.getLogger(__name__)

# The local engine checks only the shape of a role ARN; AWS needs a real role (STEPLINE_SFN_ROLE_ARN).
LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/stepline-local"
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")
ARN_IN_MESSAGE = re.compile(r"(arn:aws[a-z-]*:states:[^'\"\s]+)")


def final_definition(sfn: Any, definition: dict[str, Any], prefix: str = "stepline") -> str:
    """The definition with activity ARNs in place of `${activity:pool}`, as canonical JSON text."""
    arns = {
        pool: ensure_activity(sfn, activity_name(pool, prefix)) for pool in sorted(activity_pools(definition))
    }
    # canonical text: the same pipeline always hashes to the same state machine name
    return json.dumps(substitute_activities(definition, arns), sort_keys=True, separators=(",", ":"))


def ensure_activity(sfn: Any, name: str) -> str:
    """The ARN of the activity `name`, created if missing (CreateActivity is idempotent by name on AWS)."""
    try:
        return sfn.create_activity(name=name)["activityArn"]
    except sfn.exceptions.ActivityAlreadyExists:
        # moto (and AWS when tags differ) refuse a second create: the existing activity is the one we want
        for page in sfn.get_paginator("list_activities").paginate():
            for activity in page["activities"]:
                if activity["name"] == name:
                    return activity["activityArn"]
        raise DeployError(name, "CreateActivity said it exists, but it is not listed") from None


def state_machine_name(prefix: str, pipeline: str, text: str) -> str:
    """`<prefix>-<pipeline>-<hash12>`, within AWS's 80 characters."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    head = f"{prefix}-{UNSAFE_NAME.sub('-', pipeline)}"[: 80 - len(digest) - 1]
    return f"{head}-{digest}"


def ensure_pipeline(
    sfn: Any,
    definition: dict[str, Any],
    pipeline: str = "ci",
    role_arn: str = LOCAL_ROLE_ARN,
    prefix: str = "stepline",
) -> str:
    """The ARN of the state machine running `definition`, creating it and its activities when missing."""
    text = final_definition(sfn, definition, prefix)
    name = state_machine_name(prefix, pipeline, text)
    try:
        arn = sfn.create_state_machine(name=name, definition=text, roleArn=role_arn, type="STANDARD")[
            "stateMachineArn"
        ]
        log.info("deployed pipeline %s as %s", pipeline, arn)
        return arn
    except sfn.exceptions.StateMachineAlreadyExists as exc:
        # another job won the race (or AWS is not idempotent here): fine if it holds this exact definition
        arn = _arn_from_error(exc) or _find_state_machine(sfn, name)
        return _check_same(sfn, name, arn, text)


def _arn_from_error(exc: Exception) -> str | None:
    match = ARN_IN_MESSAGE.search(str(exc))
    return match.group(1) if match else None


def _find_state_machine(sfn: Any, name: str) -> str:
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            if machine["name"] == name:
                return machine["stateMachineArn"]
    raise DeployError(name, "CreateStateMachine said it exists, but it is not listed")


def _check_same(sfn: Any, name: str, arn: str, text: str) -> str:
    described = sfn.describe_state_machine(stateMachineArn=arn)
    if json.loads(described["definition"]) != json.loads(text):
        raise DeployError(name, f"{arn} exists with a different definition")
    return arn
