"""One Step Functions client factory, one rule for credentials: configured keys, boto3's chain, local placeholder."""

from __future__ import annotations

import pytest

from statemachines.sfn_client import LOCAL_CREDENTIALS, make_sfn_client


@pytest.fixture
def no_ambient_credentials(monkeypatch, tmp_path):
    """boto3's chain finds nothing: no keys in the environment, no ~/.aws, no instance role."""
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    for name in ("AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)


def access_key(client) -> str | None:
    credentials = client._request_signer._credentials
    return credentials.access_key if credentials else None


def test_a_local_engine_without_credentials_gets_the_placeholder(no_ambient_credentials):
    client = make_sfn_client("eu-west-1", "http://127.0.0.1:1")
    assert access_key(client) == LOCAL_CREDENTIALS["aws_access_key_id"]
    assert client.meta.config.inject_host_prefix is False


def test_aws_without_credentials_gets_none(no_ambient_credentials):
    assert access_key(make_sfn_client("eu-west-1")) is None


def test_configured_keys_win_over_the_chain(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "from-env")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    client = make_sfn_client("eu-west-1", "http://127.0.0.1:1", access_key_id="mine", secret_access_key="s")
    assert access_key(client) == "mine"
    assert access_key(make_sfn_client("eu-west-1", "http://127.0.0.1:1")) == "from-env"


def test_limits_reach_botocore():
    client = make_sfn_client("eu-west-1", read_timeout=70, attempts=2, connections=3, user_agent="x")
    config = client.meta.config
    assert (config.read_timeout, config.max_pool_connections, config.retries["total_max_attempts"]) == (
        70,
        3,
        2,
    )
    assert config.region_name == "eu-west-1" and config.inject_host_prefix is True
