"""The one way Stepline builds a boto3 Step Functions client: for the local engine or for AWS.

Credentials, in order: the keys a process is configured with; else boto3's own chain (environment,
profile or SSO, instance or task role); else, only for a local engine (SFN_ENDPOINT_URL), a placeholder
pair, since the engine checks no signature unless it is given access keys.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

LOCAL_CREDENTIALS = {"aws_access_key_id": "stepline", "aws_secret_access_key": "stepline"}


def make_sfn_client(
    region: str,
    endpoint_url: str = "",
    *,
    read_timeout: float = 10,
    connect_timeout: float = 3,
    attempts: int = 6,
    connections: int = 10,
    access_key_id: str = "",
    secret_access_key: str = "",
    user_agent: str | None = None,
) -> Any:
    """A client with bounded timeouts and standard retries (throttling, 5xx): `attempts` calls at most."""
    local = bool(endpoint_url)
    session = boto3.session.Session()
    credentials: dict[str, str] = {}
    if access_key_id:
        credentials = {"aws_access_key_id": access_key_id, "aws_secret_access_key": secret_access_key}
    elif local and session.get_credentials() is None:
        credentials = LOCAL_CREDENTIALS
    config = Config(
        region_name=region,
        connect_timeout=connect_timeout,
        read_timeout=read_timeout,
        retries={"total_max_attempts": attempts, "mode": "standard"},
        max_pool_connections=connections,
        # AWS prefixes some hosts (sync-states.) for StartSyncExecution: a local endpoint has no such host
        inject_host_prefix=not local,
        user_agent_extra=user_agent,
    )
    return session.client("stepfunctions", endpoint_url=endpoint_url or None, config=config, **credentials)
