"""The service's Step Functions client (statemachines/sfn_client.py) and the role its pipelines run as."""

from __future__ import annotations

from typing import Any

from service.config import ServiceConfig
from statemachines import sfn_client
from statemachines.deploy import LOCAL_ROLE_ARN


def make_sfn_client(config: ServiceConfig, read_timeout: float = 10) -> Any:
    """The local engine when SFN_ENDPOINT_URL is set, AWS otherwise; six tries for throttling and 5xx."""
    return sfn_client.make_sfn_client(
        config.aws_region, config.sfn_endpoint_url, read_timeout=read_timeout, attempts=6
    )


def role_arn(config: ServiceConfig) -> str:
    """The role pipelines run as: configured, or a placeholder the local engine accepts."""
    return config.sfn_role_arn or LOCAL_ROLE_ARN
