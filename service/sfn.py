"""The boto3 Step Functions client: the local engine when SFN_ENDPOINT_URL is set, AWS otherwise."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from service.config import ServiceConfig
from statemachines.deploy import LOCAL_ROLE_ARN

LOCAL_CREDENTIALS = {"aws_access_key_id": "stepline", "aws_secret_access_key": "stepline"}


def make_sfn_client(config: ServiceConfig) -> Any:
    """A Step Functions client with bounded timeouts and standard retries (throttling, 5xx)."""
    local = bool(config.sfn_endpoint_url)
    botocore_config = Config(
        region_name=config.aws_region,
        retries={"max_attempts": 5, "mode": "standard"},
        connect_timeout=3,
        read_timeout=10,
        # AWS prefixes some hosts (sync-states.) for StartSyncExecution: a local endpoint has no such host
        inject_host_prefix=not local,
    )
    session = boto3.session.Session()
    credentials = {} if not local or session.get_credentials() else LOCAL_CREDENTIALS
    return session.client(
        "stepfunctions", endpoint_url=config.sfn_endpoint_url or None, config=botocore_config, **credentials
    )


def role_arn(config: ServiceConfig) -> str:
    """The role pipelines run as: configured, or a placeholder the local engine accepts."""
    return config.sfn_role_arn or LOCAL_ROLE_ARN
