"""Settings of `python -m statemachines` (the deploy command), read from the environment in this one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from statemachines.settings import DEFAULT_REGION, EnvReader


@dataclass(frozen=True)
class DeployConfig:
    """Where and how pipelines are deployed; command-line options override each field."""

    sfn_endpoint_url: str = ""  # empty: real AWS through boto3's own endpoint resolution
    region: str = DEFAULT_REGION
    role_arn: str = ""
    prefix: str = "stepline"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DeployConfig:
        env = EnvReader("statemachines", os.environ if environ is None else environ)
        config = cls(
            sfn_endpoint_url=env.url("SFN_ENDPOINT_URL"),
            region=env.region(),
            role_arn=env.text("STEPLINE_SFN_ROLE_ARN"),
            prefix=env.text("STEPLINE_STATE_MACHINE_PREFIX", cls.prefix),
            log_level=env.log_level(cls.log_level),
        )
        env.check()
        return config
