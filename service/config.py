"""The web and jobs processes' settings, read from the environment in this one place."""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from service.schedules import REPOSITORY, Schedule, parse_schedules
from statemachines.blob_store import BlobSettings, read_blob_settings
from statemachines.deploy import DEFAULT_UNTRUSTED_POOLS, untrusted_pool_problems
from statemachines.settings import DEFAULT_REGION, EnvReader, check_redis

# GitHub's pull_request.author_association values
AUTHOR_ASSOCIATIONS = (
    "OWNER", "MEMBER", "COLLABORATOR", "CONTRIBUTOR", "FIRST_TIME_CONTRIBUTOR", "FIRST_TIMER", "MANNEQUIN", "NONE",
)  # fmt: skip


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
    aws_region: str = DEFAULT_REGION
    log_level: str = "INFO"
    webhook_max_bytes: int = 25 * 1024 * 1024
    proxy_hops: int = 0  # reverse proxies whose X-Forwarded-For / -Proto are believed
    allow_local_repositories: bool = False
    build_tags: bool = False
    build_draft_pull_requests: bool = False
    never_supersede_branches: tuple[str, ...] = ("main", "master")
    # trust (service/triggers.py decides, service/runs.py deploys): empty = every same-repository PR is trusted
    trusted_pr_author_associations: tuple[str, ...] = ()
    untrusted_pools: tuple[str, ...] = DEFAULT_UNTRUSTED_POOLS  # what an untrusted run's Tasks may use
    sfn_role_arn: str = ""
    state_machine_prefix: str = "stepline"
    secret_key: str = ""
    users: tuple[tuple[str, str], ...] = ()  # (name, werkzeug password hash)
    admin_token: str = ""
    read_requires_login: bool = False
    github_web_url: str = "https://github.com"
    approval_poller: bool = True
    # GitHub reporting (service/reporter.py, publisher.py, reconcile.py)
    github_app_id: str = ""
    github_app_private_key: str = ""  # PEM text
    github_app_installation_id: int = 0  # used when a run does not carry its webhook's installation id
    status_prefix: str = "stepline"
    github_reporting: str = "checks"  # or statuses, both: service/github_reporting.py
    status_retry_intervals: tuple[int, ...] = (2, 4, 8, 16, 32, 64, 128, 300)
    reconcile_interval: int = 30
    run_retention_days: int = 90  # 0: keep runs forever (service/retention.py)
    schedules: tuple[Schedule, ...] = ()  # service/schedules.py; fired by service/scheduler.py
    schedule_tick_seconds: int = 15
    schedule_repositories: tuple[str, ...] = ()  # their .stepline/schedules.yaml counts
    blob: BlobSettings = field(default_factory=BlobSettings)  # finished logs, artifacts, caches
    artifact_retention_days: int = 30  # 0: keep forever (service/output_retention.py)
    cache_retention_days: int = 7  # since a cache was last used

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, check_services: bool = True, process: str = "web"
    ) -> ServiceConfig:
        env = EnvReader(process, os.environ if environ is None else environ)
        port = env.integer("PORT", cls.port, 1, 65535)
        config = cls(
            redis_url=env.text("REDIS_URL", "redis://127.0.0.1:6379/0"),
            host=env.text("WEB_HOST", cls.host),
            port=port,
            web_workers=env.integer("WEB_CONCURRENCY", cls.web_workers, 1, 64),
            web_threads=env.integer("WEB_THREADS", cls.web_threads, 1, 256),
            webhook_secret=env.text("GITHUB_WEBHOOK_SECRET"),
            insecure_no_webhook_secret=env.flag("STEPLINE_INSECURE_ACCEPT_UNSIGNED_WEBHOOKS"),
            github_token=env.text("GITHUB_TOKEN"),
            github_api_url=env.url("GITHUB_API_URL", cls.github_api_url),
            public_url=env.url("STEPLINE_PUBLIC_URL", f"http://127.0.0.1:{port}"),
            sfn_endpoint_url=env.url("SFN_ENDPOINT_URL"),
            aws_region=env.region(),
            log_level=env.log_level(cls.log_level),
            webhook_max_bytes=env.integer("STEPLINE_WEBHOOK_MAX_BYTES", cls.webhook_max_bytes, 1024, 1 << 30),
            proxy_hops=env.integer("STEPLINE_PROXY_HOPS", cls.proxy_hops, 0, 5),
            allow_local_repositories=env.flag("STEPLINE_ALLOW_LOCAL_REPOSITORIES"),
            build_tags=env.flag("STEPLINE_BUILD_TAGS"),
            build_draft_pull_requests=env.flag("STEPLINE_BUILD_DRAFT_PULL_REQUESTS"),
            never_supersede_branches=tuple(
                env.items("STEPLINE_NEVER_SUPERSEDE_BRANCHES", ",".join(cls.never_supersede_branches))
            ),
            trusted_pr_author_associations=tuple(
                item.upper() for item in env.items("STEPLINE_TRUSTED_PR_AUTHOR_ASSOCIATIONS")
            ),
            untrusted_pools=tuple(env.items("STEPLINE_UNTRUSTED_POOLS", ",".join(cls.untrusted_pools))),
            sfn_role_arn=env.text("STEPLINE_SFN_ROLE_ARN"),
            state_machine_prefix=env.text("STEPLINE_STATE_MACHINE_PREFIX", cls.state_machine_prefix),
            # unset: a random key per start (sign-ins do not survive a restart of the web process)
            secret_key=env.text("SECRET_KEY") or secrets.token_hex(32),
            users=_parse_users(env, "STEPLINE_USERS"),
            admin_token=env.text("STEPLINE_ADMIN_TOKEN"),
            read_requires_login=env.flag("STEPLINE_READ_REQUIRES_LOGIN"),
            github_web_url=env.url("GITHUB_WEB_URL", cls.github_web_url),
            approval_poller=env.flag("STEPLINE_APPROVAL_POLLER", cls.approval_poller),
            github_app_id=env.text("GITHUB_APP_ID"),
            github_app_private_key=_private_key(
                env, env.text("GITHUB_APP_PRIVATE_KEY"), env.text("GITHUB_APP_PRIVATE_KEY_FILE")
            ),
            github_app_installation_id=env.integer("GITHUB_APP_INSTALLATION_ID", 0, 0),
            status_prefix=env.text("STEPLINE_STATUS_PREFIX", cls.status_prefix).strip("/"),
            github_reporting=env.text("STEPLINE_GITHUB_REPORTING", cls.github_reporting).strip().lower(),
            status_retry_intervals=_intervals(
                env, "STEPLINE_STATUS_RETRY_INTERVALS", cls.status_retry_intervals
            ),
            reconcile_interval=env.integer(
                "STEPLINE_RECONCILE_INTERVAL_SECONDS", cls.reconcile_interval, 1, 3600
            ),
            run_retention_days=env.integer("STEPLINE_RUN_RETENTION_DAYS", cls.run_retention_days, 0, 36500),
            schedules=_schedules(env),
            schedule_tick_seconds=env.integer(
                "STEPLINE_SCHEDULE_TICK_SECONDS", cls.schedule_tick_seconds, 1, 60
            ),
            schedule_repositories=_repositories(env, "STEPLINE_SCHEDULE_REPOSITORIES"),
            blob=read_blob_settings(env, env.region()),
            artifact_retention_days=env.integer("STEPLINE_ARTIFACT_RETENTION_DAYS", 30, 0, 36500),
            cache_retention_days=env.integer("STEPLINE_CACHE_RETENTION_DAYS", 7, 0, 36500),
        )
        if not config.webhook_secret and not config.insecure_no_webhook_secret:
            env.problems.append(
                "GITHUB_WEBHOOK_SECRET is not set (webhooks cannot be verified; for local development only, "
                "set STEPLINE_INSECURE_ACCEPT_UNSIGNED_WEBHOOKS=true)"
            )
        _check_reporting(env, config)
        _check_trust(env, config)
        if check_services:
            check_redis(env, "REDIS_URL", config.redis_url)
        env.check()
        return config


def _parse_users(env: EnvReader, name: str) -> tuple[tuple[str, str], ...]:
    """`alice:<hash>,bob:<hash>` with werkzeug password hashes (pbkdf2 or scrypt) -> ((name, hash), ...)."""
    users = []
    for item in env.items(name):
        user, _, hashed = item.partition(":")
        if not user.strip() or not hashed.startswith(("pbkdf2:", "scrypt:")):
            env.problems.append(
                f"{name}: {user.strip() or item[:12]!r} needs a password hash (pbkdf2:... or scrypt:..., "
                "from `python -m service.dashboard.auth hash`)"
            )
            continue
        users.append((user.strip(), hashed))
    return tuple(users)


def _schedules(env: EnvReader) -> tuple[Schedule, ...]:
    schedules, problems = parse_schedules(env.text("STEPLINE_SCHEDULES"))
    env.problems.extend(problems)
    return schedules


def _repositories(env: EnvReader, name: str) -> tuple[str, ...]:
    found = tuple(env.items(name))
    env.problems.extend(
        f"{name}: {item[:100]!r} is not 'owner/name'" for item in found if not REPOSITORY.match(item)
    )
    return found


def _private_key(env: EnvReader, text: str, path: str) -> str:
    """The GitHub App key: PEM text (`\\n` escapes allowed, as .env files need) or read from a file."""
    if not path:
        return text.replace("\\n", "\n")
    try:
        with open(path, encoding="utf-8") as key_file:
            return key_file.read()
    except OSError as exc:
        env.problems.append(f"GITHUB_APP_PRIVATE_KEY_FILE={path!r} cannot be read: {exc}")
        return ""


def _intervals(env: EnvReader, name: str, default: tuple[int, ...]) -> tuple[int, ...]:
    """Comma-separated whole seconds between retries, e.g. `2,4,8` (one retry per entry)."""
    shown = ",".join(str(value) for value in default)
    try:
        values = tuple(int(item) for item in env.items(name, shown))
    except ValueError:
        values = ()
    if not values or any(value < 0 or value > 3600 for value in values):
        env.problems.append(
            f"{name} must list whole seconds from 0 to 3600 separated by commas, e.g. {shown}"
        )
        return default
    return values


def _check_reporting(env: EnvReader, config: ServiceConfig) -> None:
    if bool(config.github_app_id) != bool(config.github_app_private_key):
        env.problems.append(
            "GITHUB_APP_ID and GITHUB_APP_PRIVATE_KEY (or _FILE) are set together or not at all"
        )
    if config.github_reporting not in ("checks", "statuses", "both"):
        env.problems.append(
            f"STEPLINE_GITHUB_REPORTING={config.github_reporting!r} is not one of checks, statuses, both"
        )
    if not re.fullmatch(r"[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*", config.status_prefix):
        env.problems.append(
            f"STEPLINE_STATUS_PREFIX={config.status_prefix!r} must be letters, digits, '.', '_', '-' and '/'"
        )


def _check_trust(env: EnvReader, config: ServiceConfig) -> None:
    unknown = set(config.trusted_pr_author_associations) - set(AUTHOR_ASSOCIATIONS)
    if unknown:
        env.problems.append(
            f"STEPLINE_TRUSTED_PR_AUTHOR_ASSOCIATIONS: {', '.join(sorted(unknown))} is not one of GitHub's "
            f"author associations ({', '.join(AUTHOR_ASSOCIATIONS)})"
        )
    env.problems.extend(
        f"STEPLINE_UNTRUSTED_POOLS={','.join(config.untrusted_pools)}: {problem}"
        for problem in untrusted_pool_problems(config.untrusted_pools)
    )
    # `<prefix>-untrusted-<pool>` must never also be a trusted activity `<other prefix>-<pool>`
    if "untrusted" in config.state_machine_prefix.split("-"):
        env.problems.append(
            f"STEPLINE_STATE_MACHINE_PREFIX={config.state_machine_prefix!r} must not contain the word "
            "'untrusted' (its activities would be taken for another prefix's untrusted ones)"
        )


@dataclass(frozen=True)
class DevelopmentDefaults:
    """What development commands (send_webhook, run_client) need of the web process's settings, never failing."""

    web_url: str
    webhook_secret: str
    admin_token: str = ""  # service/run_client.py signs in with it

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DevelopmentDefaults:
        env = EnvReader("send_webhook", os.environ if environ is None else environ)
        port = env.integer("PORT", ServiceConfig.port, 1, 65535)
        return cls(
            f"http://127.0.0.1:{port}", env.text("GITHUB_WEBHOOK_SECRET"), env.text("STEPLINE_ADMIN_TOKEN")
        )
