"""How one context's update reaches GitHub: a check run (a GitHub App), a commit status (a token), or both.

STEPLINE_GITHUB_REPORTING chooses: `checks` (the default) posts check runs whenever Stepline acts as a
GitHub App for the update (it has an installation), commit statuses otherwise; `statuses` always posts
commit statuses; `both` posts a check run and a commit status (for branch protection that requires
statuses). The publisher (service/publisher.py) calls `post` and handles every failure alike.
"""

from __future__ import annotations

import redis

from service.check_runs import GitHubChecks
from service.config import ServiceConfig
from service.github_client import GitHubStatuses
from service.status_contexts import StatusUpdate

CHECKS, STATUSES, BOTH = "checks", "statuses", "both"


class GitHubReporting:
    """The status poster and the check-run poster behind one `post`."""

    def __init__(self, config: ServiceConfig, redis_client: redis.Redis) -> None:
        self.config = config
        self.statuses = GitHubStatuses(config, redis_client)
        self.checks = GitHubChecks(redis_client, config.public_url, config.status_prefix)
        self.tokens = self.statuses.tokens

    @property
    def enabled(self) -> bool:
        return self.statuses.enabled

    def installation_of(self, update: StatusUpdate) -> int | None:
        return self.statuses.installation_of(update)

    def uses_checks(self, update: StatusUpdate) -> bool:
        """Check runs need a GitHub App installation: a plain token can only post statuses."""
        return self.config.github_reporting != STATUSES and self.installation_of(update) is not None

    def uses_statuses(self, update: StatusUpdate) -> bool:
        return self.config.github_reporting != CHECKS or not self.uses_checks(update)

    def post(self, update: StatusUpdate) -> None:
        """Raises PyGithub's GithubException, a requests error or NoInstallationError when not taken."""
        if self.uses_checks(update):
            self.checks.post(self.statuses.client(self.installation_of(update)), update)
        if self.uses_statuses(update):
            self.statuses.post(update)

    def unchanged(self, update: StatusUpdate, posted: StatusUpdate | None) -> bool:
        """True when posting `update` after `posted` would change nothing GitHub shows."""
        if not update.same_post(posted):
            return False
        if self.uses_checks(update) and posted is not None:
            # a check run moves queued -> in_progress -> completed on the same words, and each run has its own
            return bool(posted.order[:4] == update.order[:4]) and posted.outcome == update.outcome
        return True
