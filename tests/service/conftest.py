"""Fixtures of the service's tests: processes and a TCP gate for runs end to end, a GitHub App reporter, schedules."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.job_context import JobContext, job_context, use_config
from service.schedules import Schedule
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


@pytest.fixture
def schedules_context(service_config, make_repo, fake_github) -> Callable[..., JobContext]:
    """The jobs' context with these operator schedules, over a real octo/app with one commit on main."""

    def make(*schedules: Schedule) -> JobContext:
        repo: Any = make_repo("app")
        repo.sha = repo.commit({"README": "x"}, "first")
        repo.push("main")
        fake_github.add_repo("octo/app", clone_url=repo.url)
        use_config(dataclasses.replace(service_config, allow_local_repositories=True, schedules=schedules))
        return job_context()

    return make
