"""Deploy pipelines under stable names (`<prefix>-<pipeline>`): create or update activities and state machines.

What `python -m statemachines deploy` runs, against AWS or any endpoint speaking its API (the local
engine, moto). Every run converges: a resource that is missing is created, one that differs is
updated, one that matches is left alone, so running it twice changes nothing the second time.
The service's per-run deploy (content-addressed names) is statemachines/deploy.py.

Untrusted runs (a fork's pull request) reach their pools through `<prefix>-untrusted-<pool>` activities,
which the service's per-run deploy also creates; deploying them here lets their workers start (and their
IAM policies be checked) before the first untrusted run. The shipped state machines are trusted ones.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from statemachines.contract import activity_name, activity_pools, substitute_activities
from statemachines.deploy import DEFAULT_UNTRUSTED_POOLS, untrusted_pool_problems
from statemachines.errors import DeployError
from statemachines.step_defaults import fill_step_defaults

log = logging.getLogger(__name__)

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"


@dataclass(frozen=True)
class DeployAction:
    """What deploying one resource did (or, in a dry run, would do)."""

    kind: str  # "activity" or "state machine"
    name: str
    action: str  # CREATED, UPDATED or UNCHANGED
    arn: str


def deploy_pipelines(
    sfn: Any,
    pipelines: dict[str, dict[str, Any]],
    prefix: str,
    role_arn: str,
    dry_run: bool = False,
    untrusted_pools: tuple[str, ...] = DEFAULT_UNTRUSTED_POOLS,
) -> list[DeployAction]:
    """Ensure every activity the pipelines name and the untrusted activities, then one state machine per pipeline."""
    if not role_arn and not dry_run:
        raise DeployError(prefix, "a state machine role is required (--role-arn or STEPLINE_SFN_ROLE_ARN)")
    if problems := untrusted_pool_problems(untrusted_pools):
        raise DeployError(prefix, "; ".join(problems))
    pipelines = {name: fill_step_defaults(definition) for name, definition in pipelines.items()}
    pools = sorted(set().union(*(activity_pools(d) for d in pipelines.values())))
    try:
        existing = _list_names(sfn, "list_activities", "activities", "activityArn")
        actions = [_ensure_activity(sfn, activity_name(pool, prefix), existing, dry_run) for pool in pools]
        arns = {pool: action.arn for pool, action in zip(pools, actions, strict=True)}
        actions += [
            _ensure_activity(sfn, activity_name(pool, prefix, trusted=False), existing, dry_run)
            for pool in sorted(set(untrusted_pools))
        ]
        machines = _list_names(sfn, "list_state_machines", "stateMachines", "stateMachineArn")
        for pipeline, definition in pipelines.items():
            final = substitute_activities(definition, arns)
            name = f"{prefix}-{pipeline}"
            actions.append(_ensure_state_machine(sfn, name, final, role_arn, machines.get(name), dry_run))
    except (ClientError, BotoCoreError) as exc:
        raise DeployError(f"Step Functions in {sfn.meta.region_name}", str(exc)) from exc
    return actions


def plan_pipelines(
    pipelines: dict[str, dict[str, Any]],
    prefix: str,
    region: str,
    untrusted_pools: tuple[str, ...] = DEFAULT_UNTRUSTED_POOLS,
) -> list[DeployAction]:
    """What `deploy_pipelines` would create in an account holding none of it: a dry run without credentials."""
    if problems := untrusted_pool_problems(untrusted_pools):
        raise DeployError(prefix, "; ".join(problems))
    pools = sorted(set().union(*(activity_pools(d) for d in pipelines.values())))
    names = [activity_name(pool, prefix) for pool in pools]
    names += [activity_name(pool, prefix, trusted=False) for pool in sorted(set(untrusted_pools))]
    actions = [
        DeployAction("activity", name, CREATED, _would_be_arn(region, "activity", name)) for name in names
    ]
    for pipeline in pipelines:
        name = f"{prefix}-{pipeline}"
        actions.append(
            DeployAction("state machine", name, CREATED, _would_be_arn(region, "stateMachine", name))
        )
    return actions


def _list_names(sfn: Any, operation: str, key: str, arn_key: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for page in sfn.get_paginator(operation).paginate():
        names.update({item["name"]: item[arn_key] for item in page[key]})
    return names


def _ensure_activity(sfn: Any, name: str, existing: dict[str, str], dry_run: bool) -> DeployAction:
    if name in existing:
        return DeployAction("activity", name, UNCHANGED, existing[name])
    if dry_run:
        return DeployAction("activity", name, CREATED, _would_be_arn(sfn.meta.region_name, "activity", name))
    try:
        arn = sfn.create_activity(name=name)["activityArn"]
    except ClientError as exc:
        # AWS answers an existing name with its ARN; moto raises instead (a race with another deploy)
        if exc.response["Error"]["Code"] != "ActivityAlreadyExists":
            raise
        arn = _list_names(sfn, "list_activities", "activities", "activityArn")[name]
    log.info("activity %s created: %s", name, arn)
    return DeployAction("activity", name, CREATED, arn)


def _ensure_state_machine(
    sfn: Any, name: str, definition: dict[str, Any], role_arn: str, arn: str | None, dry_run: bool
) -> DeployAction:
    text = json.dumps(definition, indent=2)
    if arn is None:
        if not dry_run:
            arn = sfn.create_state_machine(name=name, definition=text, roleArn=role_arn, type="STANDARD")[
                "stateMachineArn"
            ]
            log.info("state machine %s created: %s", name, arn)
        return DeployAction(
            "state machine", name, CREATED, arn or _would_be_arn(sfn.meta.region_name, "stateMachine", name)
        )
    current = sfn.describe_state_machine(stateMachineArn=arn)
    # compare parsed JSON: AWS keeps the text as sent, so formatting alone is no change
    same_role = current["roleArn"] == role_arn or not role_arn
    if json.loads(current["definition"]) == definition and same_role:
        return DeployAction("state machine", name, UNCHANGED, arn)
    if not dry_run:
        sfn.update_state_machine(stateMachineArn=arn, definition=text, roleArn=role_arn or current["roleArn"])
        log.info("state machine %s updated: %s", name, arn)
    return DeployAction("state machine", name, UPDATED, arn)


def _would_be_arn(region: str, kind: str, name: str) -> str:
    # a dry run creates nothing, so the account is unknown: show the ARN's shape
    return f"arn:aws:states:{region}:<account>:{kind}:{name}"
