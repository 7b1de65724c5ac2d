"""The web and jobs settings of trust: what untrusted runs may use is checked once, at start-up."""

from __future__ import annotations

import subprocess

import pytest

from service.config import ServiceConfig
from statemachines.errors import ConfigError
from tests.harness.processes import PROJECT, python_module

BASE = {"GITHUB_WEBHOOK_SECRET": "s"}


def test_untrusted_runs_use_the_build_pool_and_every_same_repository_pull_request_is_trusted_by_default():
    config = ServiceConfig.from_env(BASE, check_services=False)
    assert config.untrusted_pools == ("build",) and config.trusted_pr_author_associations == ()


def test_trust_settings_are_read():
    config = ServiceConfig.from_env(
        BASE
        | {
            "STEPLINE_UNTRUSTED_POOLS": "build, gpu",
            "STEPLINE_TRUSTED_PR_AUTHOR_ASSOCIATIONS": "owner,MEMBER",
        },
        check_services=False,
    )
    assert config.untrusted_pools == ("build", "gpu")
    assert config.trusted_pr_author_associations == ("OWNER", "MEMBER")
    # empty: untrusted runs may use no pool at all (their Tasks are refused)
    assert (
        ServiceConfig.from_env(BASE | {"STEPLINE_UNTRUSTED_POOLS": ""}, check_services=False).untrusted_pools
        == ()
    )


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"STEPLINE_UNTRUSTED_POOLS": "build,deploy"}, "STEPLINE_UNTRUSTED_POOLS=build,deploy: untrusted runs may never use deploy"),
        ({"STEPLINE_UNTRUSTED_POOLS": "approval"}, "untrusted runs may never use approval"),
        ({"STEPLINE_UNTRUSTED_POOLS": "untrusted-build"}, "not pool names: untrusted-build"),
        ({"STEPLINE_TRUSTED_PR_AUTHOR_ASSOCIATIONS": "OWNER,MAINTAINER"}, "MAINTAINER is not one of GitHub's author associations"),
        ({"STEPLINE_STATE_MACHINE_PREFIX": "ci-untrusted"}, "must not contain the word 'untrusted'"),
    ],
)  # fmt: skip
def test_trust_settings_that_would_open_a_hole_are_refused(settings, problem):
    with pytest.raises(ConfigError) as failure:
        ServiceConfig.from_env(BASE | settings, check_services=False)
    assert problem in str(failure.value)


@pytest.mark.parametrize("module", ["service", "service.jobs"])
def test_web_and_jobs_refuse_to_start_when_untrusted_runs_may_use_deploy(module, redis_url):
    env = {
        "PATH": "/usr/bin:/bin",
        "REDIS_URL": redis_url,
        "STEPLINE_UNTRUSTED_POOLS": "build,deploy",
        **BASE,
    }
    result = subprocess.run(
        python_module(module), cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2, result.stderr
    assert "STEPLINE_UNTRUSTED_POOLS=build,deploy: untrusted runs may never use deploy" in result.stderr
