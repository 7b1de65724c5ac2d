"""The GitHub App installation that covers a repository, for runs no webhook delivered (manual, scheduled).

A webhook names its installation; a run started from the dashboard, the API or a schedule does not, so
with an App installed in several organisations it had none: its statuses and check runs could not be
posted, and its branch was resolved without credentials (a private repository looked absent). GitHub says
which installation covers a repository (`GET /repos/{owner}/{repo}/installation`, as the App, by JWT); the
answer is kept an hour in Redis (`stepline:github:repository-installation:<repository>`). Without one,
GITHUB_APP_INSTALLATION_ID stands in, as for a webhook's run that carries none.
"""

from __future__ import annotations

import logging

import redis
import requests
from github import Auth, GithubException, GithubIntegration

from service.config import ServiceConfig
from service.github_client import InstallationTokens

log = logging.getLogger(__name__)

KEY = "stepline:github:repository-installation:"
CACHE_SECONDS = 3600
REQUEST_TIMEOUT = 10


def uses_app(config: ServiceConfig) -> bool:
    return bool(config.github_app_id and config.github_app_private_key)


def repository_installation(config: ServiceConfig, client: redis.Redis, repository: str) -> int | None:
    """The installation to act as for `repository`: GitHub's answer, else the configured default, else None."""
    if not uses_app(config):
        return None
    fallback = config.github_app_installation_id or None
    cached = client.get(KEY + repository)
    if cached:
        return int(cached)
    integration = GithubIntegration(
        auth=Auth.AppAuth(config.github_app_id, config.github_app_private_key),
        base_url=config.github_api_url,
        timeout=REQUEST_TIMEOUT,
        retry=None,
    )
    owner, _, name = repository.partition("/")
    try:
        installation_id = int(integration.get_repo_installation(owner, name).id)
    except GithubException as exc:  # 404: the App is not installed there
        log.warning("%s: no App installation found (GitHub answered %s)", repository, exc.status)
        return fallback
    except requests.RequestException as exc:
        log.warning("%s: App installation not asked, GitHub unreachable: %s", repository, exc)
        return fallback
    finally:
        integration.close()
    client.set(KEY + repository, installation_id, ex=CACHE_SECONDS)
    return installation_id


def repository_auth(
    config: ServiceConfig, client: redis.Redis, repository: str, installation_id: int | None = None
) -> Auth.Token | None:
    """How to read `repository` on GitHub: the token, else as the App's installation there, else anonymously.

    Without this a private repository read anonymously looks as if it had no pipeline of its own.
    """
    if config.github_token:
        return Auth.Token(config.github_token)
    installation = installation_id or repository_installation(config, client, repository)
    if installation is None:
        return None
    return Auth.Token(InstallationTokens(config, client).token(installation))
