"""GitHub App auth: a JWT buys an installation token from the fake's token endpoint; tokens are shared and refreshed."""

from __future__ import annotations

import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from service.github_client import InstallationTokens
from tests.service.reporting_support import Reporting, reporting_config

APP_ID = "12345"


@pytest.fixture(scope="module")
def app_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def app_reporting(service_config, redis_client, fake_github, app_key):
    pem = app_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    config = reporting_config(
        service_config,
        github_token="",
        github_app_id=APP_ID,
        github_app_private_key=pem,
        github_app_installation_id=7,
        github_reporting="statuses",  # the token's story; check runs: tests/service/test_check_runs.py
    )
    return Reporting(config, redis_client, fake_github)


def _token_requests(fake_github, installation: int):
    return fake_github.requests("POST", f"/app/installations/{installation}/access_tokens")


def test_statuses_are_posted_with_an_installation_token_bought_with_a_jwt(
    app_reporting, fake_github, app_key
):
    run = app_reporting.new_run(steps=("build", "test"), installation_id=42)
    app_reporting.enqueue("report_run_started", run["run_id"])
    app_reporting.drain()

    token_requests = _token_requests(fake_github, 42)
    assert len(token_requests) == 1  # one token for every job (each a separate rq job): cached in Redis
    bearer = token_requests[0].headers["authorization"].split()[1]
    claims = jwt.decode(bearer, app_key.public_key(), algorithms=["RS256"])
    assert claims["iss"] == APP_ID and claims["exp"] - claims["iat"] <= 11 * 60
    token = fake_github.state.installation_tokens[0]
    posts = fake_github.requests("POST", "/statuses/")
    assert len(posts) == 3 and {p.headers["authorization"] for p in posts} == {f"token {token}"}


def test_a_run_without_an_installation_uses_the_configured_one(app_reporting, fake_github):
    run = app_reporting.new_run(steps=())
    app_reporting.enqueue("report_run_started", run["run_id"])
    app_reporting.drain()

    assert len(_token_requests(fake_github, 7)) == 1
    assert app_reporting.latest(run)["stepline/ci"]["state"] == "pending"


def test_the_token_is_refreshed_before_its_hour_runs_out(app_reporting, fake_github):
    tokens = InstallationTokens(app_reporting.config, app_reporting.redis)
    first = tokens.token(42)
    assert tokens.token(42) == first
    later = InstallationTokens(app_reporting.config, app_reporting.redis, clock=lambda: time.time() + 56 * 60)
    second = later.token(42)

    assert second != first
    assert fake_github.state.installation_tokens == [first, second]
    assert tokens.token(42) == second  # every job now uses the new one


def test_a_refused_token_is_replaced_and_the_status_retried(app_reporting, fake_github):
    run = app_reporting.new_run(steps=(), installation_id=42)
    InstallationTokens(app_reporting.config, app_reporting.redis).token(42)
    fake_github.fail_next(1, status=401)  # the cached token was revoked
    app_reporting.enqueue("report_run_started", run["run_id"])
    app_reporting.drain()

    assert len(fake_github.state.installation_tokens) == 2
    posts = fake_github.requests("POST", "/statuses/")
    assert posts[-1].headers["authorization"] == f"token {fake_github.state.installation_tokens[1]}"
    assert app_reporting.latest(run)["stepline/ci"]["state"] == "pending"
