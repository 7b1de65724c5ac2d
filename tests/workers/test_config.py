"""The worker's settings: every problem named at once, and `python -m workers` refusing bad ones."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from statemachines.errors import ConfigError
from tests.harness.processes import PROJECT, python_module
from workers.config import WorkerConfig


def test_defaults_and_overrides(tmp_path, redis_url):
    secrets = tmp_path / "secrets"
    secrets.write_text("# comment\n\nDEPLOY_KEY=abc=def\nOTHER= spaced \n")
    config = WorkerConfig.from_env(
        {
            "REDIS_URL": redis_url,
            "WORKER_POOLS": "build, build-large",
            "WORKER_SLOTS": "4",
            "WORKER_DIR": str(tmp_path / "w"),
            "WORKER_SECRETS_FILE": str(secrets),
            "GITHUB_TOKEN": "ghp_x",
            "HEARTBEAT_SECONDS": "2.5",
        }
    )
    assert config.pools == ("build", "build-large") and config.slots == 4
    assert config.secrets.for_step("any/repo", "build") == {"DEPLOY_KEY": "abc=def", "OTHER": " spaced "}
    assert config.git_token == "ghp_x" and config.heartbeat_seconds == 2.5
    assert "ghp_x" not in repr(config) and "abc=def" not in repr(config)
    assert config.work_dir.is_dir() and not config.allow_file_urls


def test_every_problem_is_named_at_once(tmp_path):
    secrets = tmp_path / "secrets"
    secrets.write_text("STEPLINE_SHA=forged\nnot a line\n")
    with pytest.raises(ConfigError) as failure:
        WorkerConfig.from_env(
            {
                "REDIS_URL": "redis://127.0.0.1:1/0",
                "WORKER_POOLS": "approval,Bad_Pool",
                "WORKER_SLOTS": "many",
                "HEARTBEAT_SECONDS": "-1",
                "WORKER_SECRETS_FILE": str(secrets),
                "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "perhaps",
            }
        )
    text = str(failure.value)
    for name in (
        "WORKER_POOLS: 'approval'",
        "'Bad_Pool'",
        "WORKER_SLOTS",
        "HEARTBEAT_SECONDS",
        "line 1",
        "line 2",
    ):
        assert name in text
    assert "STEPLINE_ALLOW_LOCAL_REPOSITORIES" in text and "REDIS_URL" in text
    assert "forged" not in text  # a secrets file's content is never echoed


def test_python_m_workers_with_bad_settings_prints_one_message_and_exits(tmp_path: Path):
    env = {
        "PATH": "/usr/bin:/bin",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "WORKER_SLOTS": "0",
        "WORKER_DIR": str(tmp_path),
    }
    done = subprocess.run(
        python_module("workers"), cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith("worker: invalid configuration (2 problem(s)):")
    assert "WORKER_SLOTS=0" in done.stderr and "REDIS_URL" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_command_line_values_are_checked_like_the_environment(tmp_path: Path, redis_url):
    env = {"PATH": "/usr/bin:/bin", "REDIS_URL": redis_url, "WORKER_DIR": str(tmp_path)}
    args = [*python_module("workers"), "--slots", "0", "--pools", "build,approval"]
    done = subprocess.run(args, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "WORKER_SLOTS=0" in done.stderr and "'approval'" in done.stderr


def test_aws_needs_a_socket_timeout_above_the_long_poll(redis_url, tmp_path):
    with pytest.raises(ConfigError, match="above 60"):
        WorkerConfig.from_env(
            {"REDIS_URL": redis_url, "WORKER_DIR": str(tmp_path), "WORKER_POLL_READ_TIMEOUT_SECONDS": "30"}
        )


def test_an_activity_prefix_naming_untrusted_is_refused(tmp_path):
    env = {"REDIS_URL": "redis://x", "WORKER_DIR": str(tmp_path / "w"), "ACTIVITY_PREFIX": "ci-untrusted"}
    with pytest.raises(ConfigError) as refused:
        WorkerConfig.from_env(env, check_services=False)
    assert "may not contain the word untrusted" in str(refused.value)
