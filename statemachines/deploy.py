"""Deploying a pipeline: its activities, then a state machine named by a hash of its final definition.

`ensure_pipeline(sfn, definition, ...)` is idempotent and safe when several processes run it at once:
activities are created by name (CreateActivity is idempotent), and the state machine's name carries the
hash of the definition it holds, so two callers with one definition converge on one state machine and a
changed definition gets a new one (a running execution never sees its pipeline change under it).

An untrusted run's pipeline (`trusted=False`) is deployed with every `${activity:<pool>}` resolved to the
pool's untrusted activity (`<prefix>-untrusted-<pool>`): a different final definition, so a different
state machine. `untrusted_uses` names what such a pipeline may not reach; the service refuses the run
before deploying, and `final_definition` refuses it again, so no caller can deploy it by mistake.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Collection
from typing import Any

from statemachines.contract import (
    APPROVAL_POOL,
    PLACEHOLDER,
    activity_name,
    activity_pools,
    substitute_activities,
    walk_states,
)
from statemachines.errors import DeployError
from statemachines.step_defaults import fill_step_defaults

log = logging.getLogger(__name__)

# The local engine checks only the shape of a role ARN; AWS needs a real role (STEPLINE_SFN_ROLE_ARN).
LOCAL_ROLE_ARN = "arn:aws:iam::000000000000:role/stepline-local"
UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_-]")
ARN_IN_MESSAGE = re.compile(r"(arn:aws[a-z-]*:states:[^'\"\s]+)")
# Pools whose workers hold what a stranger's code must never reach (deploy credentials) or that a person
# answers (approval): no setting lets an untrusted run use them.
NEVER_UNTRUSTED_POOLS = ("deploy", APPROVAL_POOL)
DEFAULT_UNTRUSTED_POOLS = ("build",)
# Where a state names something to call: the Task's own Resource, and a distributed Map's reader and writer
RESOURCE_HOLDERS = ((), ("ItemReader",), ("ResultWriter",))


def untrusted_pool_problems(pools: Collection[str]) -> list[str]:
    """Why a list of pools cannot be the pools untrusted runs may use (empty when it can)."""
    problems = []
    if never := [pool for pool in pools if pool in NEVER_UNTRUSTED_POOLS]:
        problems.append(
            f"untrusted runs may never use {', '.join(never)} "
            f"(the {' and '.join(NEVER_UNTRUSTED_POOLS)} pools serve trusted runs only)"
        )
    if bad := [pool for pool in pools if not PLACEHOLDER.match(f"${{activity:{pool}}}")]:
        problems.append(f"not pool names: {', '.join(bad)} (a-z, 0-9 and '-', not starting untrusted-)")
    return problems


def untrusted_uses(definition: dict[str, Any], allowed_pools: Collection[str]) -> list[tuple[str, str, str]]:
    """(state path, field, resource) of every resource an untrusted run may not use, nested states included.

    An untrusted run may name only `${activity:<pool>}` of an allowed pool: a literal ARN (a trusted
    pool's activity, `arn:aws:states:::states:startExecution`, any service integration) would run
    outside the untrusted activities, where the worker or Step Functions itself would trust it.
    """
    allowed = set(allowed_pools) - set(NEVER_UNTRUSTED_POOLS)
    found = []
    for path, _, state in walk_states(definition):
        for holder in RESOURCE_HOLDERS:
            owner: Any = state
            for key in holder:
                owner = owner.get(key) if isinstance(owner, dict) else None
            if not isinstance(owner, dict) or "Resource" not in owner:
                continue
            resource = owner["Resource"]
            match = PLACEHOLDER.match(resource) if isinstance(resource, str) else None
            if match is None or match.group(1) not in allowed:
                found.append((path, "/".join((*holder, "Resource")), str(resource)))
    return found


def final_definition(
    sfn: Any, definition: dict[str, Any], prefix: str = "stepline", trusted: bool = True
) -> str:
    """The definition with activity ARNs in place of `${activity:pool}`, as canonical JSON text.

    Untrusted: the pools' untrusted activities, and a DeployError if the definition reaches anything else.
    Build steps get the defaults they leave out (statemachines/step_defaults.py), here as on AWS.
    """
    definition = fill_step_defaults(definition)
    pools = sorted(activity_pools(definition))
    if not trusted and (refused := untrusted_uses(definition, pools)):
        path, field, resource = refused[0]
        raise DeployError(f"{path}/{field}", f"an untrusted run may not use {resource!r}")
    arns = {pool: ensure_activity(sfn, activity_name(pool, prefix, trusted)) for pool in pools}
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
    trusted: bool = True,
) -> str:
    """The ARN of the state machine running `definition`, creating it and its activities when missing."""
    text = final_definition(sfn, definition, prefix, trusted)
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
