"""Fixtures for pipeline tests: the local engine and moto in server mode, each as a boto3 Step Functions client."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from tests.harness.ports import free_port
from tests.harness.processes import PROJECT, ManagedProcess, python_module, start_engine

REGION = "us-east-1"
ROLE_ARN = "arn:aws:iam::123456789012:role/stepline-test"
TEMPLATE = PROJECT / "statemachines" / "aws" / "stepline.yaml"  # the AWS world's CloudFormation template
_prefixes = itertools.count(1)


def sfn_client(endpoint_url: str, config: Config | None = None) -> Any:
    """A boto3 Step Functions client as the service makes one, with dummy credentials."""
    return boto3.client(
        "stepfunctions",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # neither server checks signatures here
        config=config,
    )


@pytest.fixture
def prefix() -> str:
    """A name prefix of its own per test, so tests sharing one server never see each other's resources."""
    return f"t{next(_prefixes)}"


@pytest.fixture
def engine_sfn(processes: Callable[..., ManagedProcess], redis_url: str) -> Any:
    """The local engine (`python -m statemachines.engine`) on a free port, over HTTP."""
    return sfn_client(start_engine(processes, redis_url, ENGINE_POLL_SECONDS="1"))


@pytest.fixture(scope="session")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """moto in server mode with state machine execution on: a second implementation of the AWS API."""
    port = free_port()
    logs = tmp_path_factory.mktemp("moto")
    server = ManagedProcess(
        "moto", python_module("moto.server", "-H", "127.0.0.1", "-p", str(port)), {}, logs
    )
    server.start().wait_http(f"http://127.0.0.1:{port}/moto-api/")
    # without this moto only records executions; with it moto's ASL interpreter runs them
    config = {"stepfunctions": {"execute_state_machine": True}}
    requests.post(f"http://127.0.0.1:{port}/moto-api/config", json=config, timeout=5).raise_for_status()
    yield f"http://127.0.0.1:{port}"
    server.stop(timeout=5)


@pytest.fixture
def moto_sfn(moto_url: str) -> Any:
    return sfn_client(moto_url)
