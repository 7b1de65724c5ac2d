"""EngineConfig.from_env: defaults, parsing, and one error naming every bad setting."""

from __future__ import annotations

import subprocess
import sys

import pytest

from statemachines.engine.config import EngineConfig
from statemachines.errors import ConfigError

from .conftest import ROOT


def test_defaults():
    config = EngineConfig.from_env({})
    assert (config.host, config.port, config.region, config.account_id) == (
        "127.0.0.1",
        8083,
        "us-east-1",
        "123456789012",
    )
    assert config.access_keys == {} and config.poll_seconds == 55
    assert config.processes == 1


def test_access_keys_and_overrides():
    env = {
        "ENGINE_ACCESS_KEYS": "AKID:s1, AKID2:s2",
        "ENGINE_PORT": "9000",
        "AWS_REGION": "eu-west-1",
        "ENGINE_ID": "e1",
        "ENGINE_PROCESSES": "4",
    }
    config = EngineConfig.from_env(env)
    assert config.access_keys == {"AKID": "s1", "AKID2": "s2"}
    assert (config.port, config.region, config.engine_id) == (9000, "eu-west-1", "e1")
    assert config.processes == 4


@pytest.mark.parametrize("value", ["0", "65", "two", "-1"])
def test_engine_processes_must_be_a_small_positive_number(value):
    with pytest.raises(ConfigError, match="ENGINE_PROCESSES"):
        EngineConfig.from_env({"ENGINE_PROCESSES": value})


def test_every_problem_is_reported_at_once():
    env = {
        "ENGINE_PORT": "http",
        "REDIS_URL": "mysql://x",
        "ENGINE_ACCESS_KEYS": "nosecret",
        "LOG_LEVEL": "LOUD",
    }
    with pytest.raises(ConfigError) as excinfo:
        EngineConfig.from_env(env)
    assert len(excinfo.value.problems) == 4
    for name in ("ENGINE_PORT", "REDIS_URL", "ENGINE_ACCESS_KEYS", "LOG_LEVEL"):
        assert name in str(excinfo.value)


def test_bad_environment_stops_the_process_with_one_message():
    result = subprocess.run(
        [sys.executable, "-m", "statemachines.engine", "--check-config"],
        cwd=ROOT,
        env={"ENGINE_PORT": "nope", "PATH": "/usr/bin"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "ENGINE_PORT" in result.stderr and "Traceback" not in result.stderr


def _engine(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "statemachines.engine"], cwd=ROOT, env={"PATH": "/usr/bin", **env},
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip


def test_unreachable_redis_stops_the_engine_with_one_message():
    result = _engine({"ENGINE_PORT": "0", "REDIS_URL": "redis://127.0.0.1:1/0"})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "REDIS_URL=redis://127.0.0.1:1/0 is unreachable" in result.stderr


def test_a_taken_port_stops_the_engine_with_one_message(redis_url):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _engine({"ENGINE_PORT": str(port), "REDIS_URL": redis_url})
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
