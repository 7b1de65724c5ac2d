"""PyGithub clients that post commit statuses: a token or a GitHub App installation, and no hidden waits.

PyGithub's defaults are set aside on purpose: it sleeps a second between writes (in a forked rq job that
throttles nothing) and retries POSTs through urllib3 without a backoff we control. Here `retry=None` and
no spacing: a failed post raises, the rq job is retried with exponential backoff, and a rate-limit
answer defers the job (service/publisher.py) instead of holding a worker asleep.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

import redis
from github import Auth, Github, GithubIntegration

from service.config import ServiceConfig
from service.errors import NoInstallationError
from service.status_contexts import StatusUpdate

log = logging.getLogger(__name__)

REQUEST_TIMEOUT = 10  # seconds; GitHub answers a status POST in well under a second
TOKEN_KEY = "stepline:github:installation-token:"  # noqa: S105 - a Redis key prefix, not a secret
# Installation tokens live an hour; take a new one this long before, so no post races the expiry.
TOKEN_REFRESH_MARGIN = 5 * 60


class InstallationTokens:
    """GitHub App installation tokens, cached in Redis so every rq job (a forked process) shares them."""

    def __init__(
        self, config: ServiceConfig, redis_client: redis.Redis, clock: Callable[[], float] = time.time
    ) -> None:
        self.config = config
        self.redis = redis_client
        self.clock = clock

    def token(self, installation_id: int) -> str:
        """A token valid for at least TOKEN_REFRESH_MARGIN more seconds: cached, or made from a new JWT."""
        cached = self.redis.get(f"{TOKEN_KEY}{installation_id}")
        if cached:
            entry = json.loads(cached)
            if entry["expires_at"] - self.clock() > TOKEN_REFRESH_MARGIN:
                return str(entry["token"])
        return self._refresh(installation_id)

    def forget(self, installation_id: int) -> None:
        """Drop a token GitHub refused (revoked, or the App's key was rotated)."""
        self.redis.delete(f"{TOKEN_KEY}{installation_id}")

    def _refresh(self, installation_id: int) -> str:
        auth = Auth.AppAuth(self.config.github_app_id, self.config.github_app_private_key)
        integration = GithubIntegration(
            auth=auth,
            base_url=self.config.github_api_url,
            timeout=REQUEST_TIMEOUT,
            retry=None,
            seconds_between_requests=0,
            seconds_between_writes=0,
        )
        access = integration.get_access_token(installation_id)
        expires_at = access.expires_at.timestamp() if access.expires_at else self.clock() + 3600
        entry = {"token": access.token, "expires_at": expires_at}
        ttl = max(1, int(expires_at - self.clock()))
        self.redis.set(f"{TOKEN_KEY}{installation_id}", json.dumps(entry), ex=ttl)
        log.info("github installation %s: new token, valid until %s", installation_id, int(expires_at))
        return access.token


class GitHubStatuses:
    """Posts one commit status; raises PyGithub's GithubException or a requests error on failure."""

    def __init__(self, config: ServiceConfig, redis_client: redis.Redis) -> None:
        self.config = config
        self.tokens = InstallationTokens(config, redis_client)

    @property
    def enabled(self) -> bool:
        """False in development without credentials: statuses are then only recorded in Redis."""
        return bool(self.config.github_token or self.uses_app)

    @property
    def uses_app(self) -> bool:
        return bool(self.config.github_app_id and self.config.github_app_private_key)

    def installation_of(self, update: StatusUpdate) -> int | None:
        """The App installation to post as: the run's (from its webhook), else the configured default."""
        if not self.uses_app:
            return None
        return update.installation_id or self.config.github_app_installation_id or None

    def post(self, update: StatusUpdate) -> None:
        client = self._client(self.installation_of(update))
        # lazy: no GET of the repository or the commit, the status POST is the one request
        commit = client.get_repo(update.repository).get_commit(update.sha)
        commit.create_status(
            update.state,
            target_url=update.target_url,
            description=update.description,
            context=update.context,
        )

    def client(self, installation_id: int | None) -> Github:
        """A client as the installation (else with the token); NoInstallationError without either."""
        return self._client(installation_id)

    def _client(self, installation_id: int | None) -> Github:
        if self.uses_app and installation_id:
            auth = Auth.Token(self.tokens.token(installation_id))
        elif self.config.github_token:
            auth = Auth.Token(self.config.github_token)
        else:
            raise NoInstallationError(self.config.github_app_id)
        return Github(
            base_url=self.config.github_api_url,
            auth=auth,
            timeout=REQUEST_TIMEOUT,
            retry=None,
            seconds_between_requests=0,
            seconds_between_writes=0,
            lazy=True,
        )
