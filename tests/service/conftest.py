"""Fixtures of the service's tests: the processes and a TCP gate for runs end to end, a GitHub App's reporter."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.service.reporting_support import Reporting, app_config
from tests.service.run_stack import Gate, Stack, start_stack


@pytest.fixture
def gate() -> Iterator[Gate]:
    found = Gate()
    yield found
    found.opened.set()  # a step still waiting ends, so its worker stops promptly
    found.server.close()


@pytest.fixture
def run_stack(service_config, redis_url, redis_client, fake_github, processes, tmp_path) -> Stack:
    """Engine, jobs process and one build worker (real sandbox) over the test Redis; see run_stack.py."""
    return start_stack(service_config, redis_url, redis_client, fake_github, processes, tmp_path)


@pytest.fixture(scope="session")
def app_pem() -> str:
    """A GitHub App's private key, PEM; made once, as a 2048-bit RSA key takes a while."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def checks(service_config, redis_client, fake_github, app_pem) -> Reporting:
    """The reporter as a GitHub App (it posts check runs), over the real Redis and the fake GitHub."""
    return Reporting(app_config(service_config, app_pem), redis_client, fake_github)
