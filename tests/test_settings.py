"""Settings: every variable the code reads is documented, and problems are reported at once.

That only config modules read the environment is ruff's rule (TID251, banned os.environ and os.getenv in
pyproject.toml); here: that its exemptions stay config modules, and that what is read is documented.
"""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

from service.config import ServiceConfig
from statemachines.errors import ConfigError

PROJECT = Path(__file__).resolve().parents[1]
SOURCE_DIRS = ("service", "workers", "statemachines", "stepline")
READER_METHODS = {"text", "required", "integer", "number", "flag", "url", "items", "get", "getenv"}


def _python_files() -> list[Path]:
    return [p for d in SOURCE_DIRS for p in (PROJECT / d).rglob("*.py")]


def _variables_read(path: Path) -> set[str]:
    """Names passed as the first argument to an environment reader call (env.text("PORT"), os.getenv(...))."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in READER_METHODS
        ):
            arg = node.args[0] if node.args else None
            if (
                isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and re.fullmatch(r"[A-Z][A-Z0-9_]+", arg.value)
            ):
                names.add(arg.value)
    return names


def test_every_variable_read_is_documented_in_env_example():
    """Every name an environment reader is asked for, in any module (EnvReader is handed to a few
    outside the config modules, such as the blob store's settings), has a line in .env.example."""
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]+)=", (PROJECT / ".env.example").read_text(), re.MULTILINE))
    read = set().union(*(_variables_read(p) for p in _python_files()))
    assert {"PORT", "REDIS_URL", "GITHUB_WEBHOOK_SECRET", "STEPLINE_BLOB_STORE"} <= read
    assert read - documented == set(), "document these in .env.example"


def test_only_config_modules_may_read_the_environment():
    """ruff bans os.environ and os.getenv (TID251); the source modules exempt from it are config modules."""
    ignores = tomllib.loads((PROJECT / "pyproject.toml").read_text())["tool"]["ruff"]["lint"][
        "per-file-ignores"
    ]
    exempt = {pattern for pattern, rules in ignores.items() if "TID251" in rules}
    in_source = {pattern for pattern in exempt if pattern.split("/")[0] in SOURCE_DIRS}
    assert "service/config.py" in in_source
    assert {pattern for pattern in in_source if not pattern.endswith("/config.py")} == set()
    assert exempt - in_source <= {"tests/**", "bench/**"}  # test and benchmark harnesses start processes


def test_all_problems_are_reported_at_once():
    with pytest.raises(ConfigError) as failure:
        ServiceConfig.from_env(
            {"PORT": "eighty", "LOG_LEVEL": "LOUD", "GITHUB_API_URL": "ftp://x"}, check_services=False
        )
    message = str(failure.value)
    assert "PORT='eighty' is not a whole number" in message
    assert "LOG_LEVEL" in message and "GITHUB_API_URL" in message and "GITHUB_WEBHOOK_SECRET" in message


def test_insecure_development_setting_allows_no_secret():
    config = ServiceConfig.from_env(
        {"STEPLINE_INSECURE_ACCEPT_UNSIGNED_WEBHOOKS": "true"}, check_services=False
    )
    assert config.insecure_no_webhook_secret and config.webhook_secret == ""


def test_unreachable_redis_is_a_configuration_problem():
    with pytest.raises(ConfigError, match=re.escape("REDIS_URL=redis://127.0.0.1:1/0 is unreachable")):
        ServiceConfig.from_env({"GITHUB_WEBHOOK_SECRET": "s", "REDIS_URL": "redis://127.0.0.1:1/0"})


@pytest.mark.parametrize(
    ("environ", "region"),
    [({}, "us-east-1"), ({"AWS_DEFAULT_REGION": "eu-west-1"}, "eu-west-1"),
     ({"AWS_REGION": "ap-south-1", "AWS_DEFAULT_REGION": "eu-west-1"}, "ap-south-1"), ({"AWS_REGION": " "}, "us-east-1")],
)  # fmt: skip
def test_every_process_reads_the_region_as_boto3_does(environ, region):
    from statemachines.config import DeployConfig
    from statemachines.engine.config import EngineConfig

    service = ServiceConfig.from_env({**environ, "GITHUB_WEBHOOK_SECRET": "s"}, check_services=False)
    assert service.aws_region == region
    assert DeployConfig.from_env(environ).region == region
    assert EngineConfig.from_env(environ).region == region


def test_a_bad_log_level_is_named_by_every_process():
    from statemachines.config import DeployConfig
    from statemachines.engine.config import EngineConfig

    for read in (DeployConfig.from_env, EngineConfig.from_env):
        with pytest.raises(ConfigError, match="LOG_LEVEL='LOUD'"):
            read({"LOG_LEVEL": "loud"})
