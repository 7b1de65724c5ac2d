"""The worker process's settings, read from the environment in this one place."""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from statemachines.blob_store import BlobSettings, read_blob_settings
from statemachines.contract import APPROVAL_POOL, PLACEHOLDER, UNTRUSTED
from statemachines.settings import DEFAULT_REGION, EnvReader, check_redis
from statemachines.step_logs import DEFAULT_MAX_BYTES, DEFAULT_RETENTION_SECONDS
from workers.errors import SandboxUnavailable
from workers.sandbox import BUBBLEWRAP, MODES, OFF, Sandbox
from workers.secrets import SecretScopes, read_secrets

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # its .env and data/ are never a step's to see
HOST_NAME = re.compile(r"^[A-Za-z0-9.-]+(:\d+)?$")


@dataclass(frozen=True)
class WorkerConfig:
    """Everything `python -m workers` needs; built once at start-up by from_env()."""

    redis_url: str
    sfn_endpoint_url: str = ""  # set: the local engine; empty: AWS
    aws_region: str = DEFAULT_REGION
    aws_access_key_id: str = field(default="", repr=False)
    aws_secret_access_key: str = field(default="", repr=False)
    # `build` serves trusted runs' build steps, `untrusted-build` untrusted runs' (pull requests from forks)
    pools: tuple[str, ...] = ("build", f"{UNTRUSTED}-build")
    slots: int = 4
    work_dir: Path = Path("data/worker")
    activity_prefix: str = "stepline"
    heartbeat_seconds: float = 10.0
    poll_read_timeout_seconds: float = 70.0  # above GetActivityTask's 60 s long poll
    step_timeout_seconds: int = 3600  # when a task names no timeout_seconds
    checkout_timeout_seconds: int = 600
    shutdown_grace_seconds: float = 0.0
    step_log_max_bytes: int = DEFAULT_MAX_BYTES
    step_log_retention_seconds: int = DEFAULT_RETENTION_SECONDS
    git_token: str = field(default="", repr=False)
    git_token_hosts: tuple[str, ...] = ("github.com",)
    allow_file_urls: bool = False
    secrets: SecretScopes = field(default_factory=SecretScopes, repr=False)
    secrets_file: str = ""
    sandbox: str = BUBBLEWRAP
    step_uid: int = 64000  # a user id no account of the machine has: the steps' own
    step_gid: int = 64000
    step_max_processes: int = 4096  # of the step user, all its running steps together
    step_path: str = "/usr/local/bin:/usr/bin:/bin"
    worker_name: str = field(default_factory=lambda: f"{socket.gethostname()[:48]}/{os.getpid()}")
    log_level: str = "INFO"
    blob: BlobSettings = field(default_factory=BlobSettings)  # finished logs, artifacts, caches
    artifact_max_bytes: int = 1 << 30  # all of one step's artifacts
    cache_max_bytes: int = 2 << 30  # one cache
    cache_repository_max_bytes: int = 10 << 30  # a repository's caches of one trust (LRU eviction)

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        check_services: bool = True,
        overrides: Mapping[str, str] | None = None,
    ) -> WorkerConfig:
        """Read and check every setting; raise ConfigError naming every problem at once.

        `overrides` (command-line values) are read and checked exactly like the environment.
        """
        base = os.environ if environ is None else environ
        env = EnvReader("worker", {**base, **(overrides or {})})
        config = cls(
            redis_url=env.text("REDIS_URL") or "redis://127.0.0.1:6379/0",
            sfn_endpoint_url=env.url("SFN_ENDPOINT_URL"),
            aws_region=env.region(),
            aws_access_key_id=env.text("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=env.text("AWS_SECRET_ACCESS_KEY"),
            pools=tuple(env.items("WORKER_POOLS", ",".join(cls.pools))),
            slots=env.integer("WORKER_SLOTS", cls.slots, 1, 64),
            work_dir=Path(env.text("WORKER_DIR") or cls.work_dir).absolute(),
            # one prefix for the service and the workers unless told apart
            activity_prefix=env.text("ACTIVITY_PREFIX")
            or env.text("STEPLINE_STATE_MACHINE_PREFIX")
            or cls.activity_prefix,
            heartbeat_seconds=env.number("HEARTBEAT_SECONDS", cls.heartbeat_seconds, 0.1),
            poll_read_timeout_seconds=env.number(
                "WORKER_POLL_READ_TIMEOUT_SECONDS", cls.poll_read_timeout_seconds, 1.0
            ),
            step_timeout_seconds=env.integer(
                "WORKER_STEP_TIMEOUT_SECONDS", cls.step_timeout_seconds, 1, 86_400
            ),
            checkout_timeout_seconds=env.integer(
                "WORKER_CHECKOUT_TIMEOUT_SECONDS", cls.checkout_timeout_seconds, 1, 86_400
            ),
            shutdown_grace_seconds=env.number("WORKER_SHUTDOWN_GRACE_SECONDS", cls.shutdown_grace_seconds),
            step_log_max_bytes=env.integer("STEP_LOG_MAX_BYTES", cls.step_log_max_bytes, 4096, 1 << 30),
            step_log_retention_seconds=env.integer(
                "STEP_LOG_RETENTION_SECONDS", cls.step_log_retention_seconds, 60, 366 * 86_400
            ),
            git_token=env.text("GIT_TOKEN") or env.text("GITHUB_TOKEN"),
            git_token_hosts=tuple(
                h.lower() for h in env.items("WORKER_GIT_TOKEN_HOSTS", ",".join(cls.git_token_hosts))
            ),
            allow_file_urls=env.flag("STEPLINE_ALLOW_LOCAL_REPOSITORIES"),
            secrets=read_secrets(env, env.text("WORKER_SECRETS_FILE")),
            secrets_file=env.text("WORKER_SECRETS_FILE"),
            sandbox=(env.text("WORKER_SANDBOX") or cls.sandbox).lower(),
            step_uid=env.integer("WORKER_STEP_UID", cls.step_uid, 1, 2**31 - 2),
            step_gid=env.integer("WORKER_STEP_GID", cls.step_gid, 1, 2**31 - 2),
            step_max_processes=env.integer("WORKER_STEP_MAX_PROCESSES", cls.step_max_processes, 0, 4_194_304),
            step_path=env.text("WORKER_STEP_PATH") or cls.step_path,
            log_level=env.log_level(cls.log_level),
            blob=read_blob_settings(env, env.region()),
            artifact_max_bytes=env.integer("WORKER_ARTIFACT_MAX_BYTES", cls.artifact_max_bytes, 1, 1 << 40),
            cache_max_bytes=env.integer("WORKER_CACHE_MAX_BYTES", cls.cache_max_bytes, 1, 1 << 40),
            cache_repository_max_bytes=env.integer(
                "WORKER_CACHE_REPOSITORY_MAX_BYTES", cls.cache_repository_max_bytes, 1, 1 << 44
            ),
        )
        config.check(env)
        if check_services:
            check_redis(env, "REDIS_URL", config.redis_url)
            if not env.problems:
                config.check_sandbox(env)
        env.check()
        return config

    def make_sandbox(self) -> Sandbox:
        # the worker's own places stay unseen even where they lie under a mounted system directory
        # the blob store's directory too: other runs' logs, artifacts and caches, wherever it lies
        hidden = [self.work_dir, PROJECT_ROOT, self.blob.directory]
        hidden += [Path(self.secrets_file)] if self.secrets_file else []
        return Sandbox(self.sandbox, self.step_uid, self.step_gid, hidden, self.step_max_processes)

    def check_sandbox(self, env: EnvReader) -> None:
        """A worker that cannot build its steps' sandbox refuses to start (one clear message)."""
        try:
            self.make_sandbox().check(self.work_dir)
        except SandboxUnavailable as exc:
            env.problems.append(
                f"WORKER_SANDBOX={self.sandbox}: cannot build a step's sandbox ({exc.reason}); install "
                "bubblewrap (`make run` does) or, only where the worker already runs in a throwaway VM or "
                f"container, set WORKER_SANDBOX={OFF}"
            )

    def check(self, env: EnvReader) -> None:
        """Add a problem to `env` for every setting that is well-typed but wrong."""
        if not self.pools:
            env.problems.append("WORKER_POOLS is empty (name at least one pool, e.g. build)")
        for entry in self.pools:
            pool = entry.removeprefix(f"{UNTRUSTED}-")
            if not PLACEHOLDER.match(f"${{activity:{pool}}}") or pool == APPROVAL_POOL:
                env.problems.append(
                    f"WORKER_POOLS: {entry!r} is not a build pool (lower-case letters, digits, '-', and "
                    f"'{UNTRUSTED}-<pool>' for untrusted runs; '{APPROVAL_POOL}' is served by the jobs process)"
                )
        if self.sandbox not in MODES:
            env.problems.append(f"WORKER_SANDBOX={self.sandbox!r} is not one of {', '.join(MODES)}")
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", self.activity_prefix):
            env.problems.append(f"ACTIVITY_PREFIX={self.activity_prefix!r} is not 1-40 of A-Za-z0-9_-")
        if UNTRUSTED in self.activity_prefix.split("-"):
            # `a-untrusted` + pool `b` would be prefix `a`'s untrusted activity of `b`, polled as trusted
            env.problems.append(
                f"ACTIVITY_PREFIX={self.activity_prefix!r} may not contain the word {UNTRUSTED}"
            )
        for host in self.git_token_hosts:
            if not HOST_NAME.match(host):
                env.problems.append(f"WORKER_GIT_TOKEN_HOSTS: {host!r} is not a host name")
        if not self.sfn_endpoint_url and self.poll_read_timeout_seconds <= 60:
            env.problems.append(
                "WORKER_POLL_READ_TIMEOUT_SECONDS must be above 60 on AWS (GetActivityTask holds a poll 60 s)"
            )
        try:
            self.work_dir.mkdir(parents=True, exist_ok=True)
            if not os.access(self.work_dir, os.W_OK | os.X_OK):
                env.problems.append(f"WORKER_DIR={self.work_dir} is not writable")
        except OSError as exc:
            env.problems.append(f"WORKER_DIR={self.work_dir} cannot be created: {exc.strerror}")
