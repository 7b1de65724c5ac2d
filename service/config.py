"""The web and jobs processes' settings, read from the environment in this one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from statemachines.settings import EnvReader, check_redis


@dataclass(frozen=True)
class ServiceConfig:
    """Everything the web process and the rq jobs need; built once at start-up by from_env()."""

    redis_url: str
    host: str = "127.0.0.1"
    port: int = 8080
    web_workers: int = 2
    web_threads: int = 8
    webhook_secret: str = ""
    insecure_no_webhook_secret: bool = False
    github_token: str = ""
    github_api_url: str = "https://api.github.com"
    public_url: str = "http://127.0.0.1:8080"
    sfn_endpoint_url: str = ""
    aws_region: str = "us-east-1"
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, check_services: bool = True) -> ServiceConfig:
        env = EnvReader("web", os.environ if environ is None else environ)
        port = env.integer("PORT", 8080, 1, 65535)
        config = cls(
            redis_url=env.text("REDIS_URL", "redis://127.0.0.1:6379/0"),
            host=env.text("WEB_HOST", "127.0.0.1"),
            port=port,
            web_workers=env.integer("WEB_CONCURRENCY", 2, 1, 64),
            web_threads=env.integer("WEB_THREADS", 8, 1, 256),
            webhook_secret=env.text("GITHUB_WEBHOOK_SECRET"),
            insecure_no_webhook_secret=env.flag("STEPLINE_INSECURE_ACCEPT_UNSIGNED_WEBHOOKS"),
            github_token=env.text("GITHUB_TOKEN"),
            github_api_url=env.url("GITHUB_API_URL", "https://api.github.com"),
            public_url=env.url("STEPLINE_PUBLIC_URL", f"http://127.0.0.1:{port}"),
            sfn_endpoint_url=env.url("SFN_ENDPOINT_URL"),
            aws_region=env.text("AWS_REGION", env.text("AWS_DEFAULT_REGION", "us-east-1")),
            log_level=env.text("LOG_LEVEL", "INFO").upper(),
        )
        if not config.webhook_secret and not config.insecure_no_webhook_secret:
            env.problems.append(
                "GITHUB_WEBHOOK_SECRET is not set (webhooks cannot be verified; for local development only, "
                "set STEPLINE_INSECURE_ACCEPT_UNSIGNED_WEBHOOKS=true)"
            )
        if config.log_level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            env.problems.append(f"LOG_LEVEL={config.log_level!r} is not one of DEBUG, INFO, WARNING, ERROR")
        if check_services:
            check_redis(env, "REDIS_URL", config.redis_url)
        env.check()
        return config
