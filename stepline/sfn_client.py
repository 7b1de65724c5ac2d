"""The Step Functions client of a local run: boto3 on the run's own engine, signed with the run's own key."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from stepline.stack import LocalStack


def make_client(stack: LocalStack, read_timeout: float) -> Any:
    """A client of the stack's engine; `read_timeout` above the engine's long poll for GetActivityTask."""
    key_id, secret = stack.access_key
    config = Config(
        connect_timeout=5,
        read_timeout=read_timeout,
        retries={"total_max_attempts": 3, "mode": "standard"},
        inject_host_prefix=False,
        user_agent_extra="stepline-run",
    )
    return boto3.session.Session().client(
        "stepfunctions",
        endpoint_url=stack.engine_url,
        region_name=stack.region,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=config,
    )
