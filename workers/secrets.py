"""Secrets for trusted steps, scoped to repositories and pools: the WORKER_SECRETS_FILE format.

    # before any section: every trusted step of every repository
    SHARED_NAME=value
    [acme/web]            # trusted steps of acme/web, on any pool
    NPM_TOKEN=value
    [acme/web deploy]     # trusted steps of acme/web on the deploy pool only
    DEPLOY_KEY=value
    [* deploy]            # trusted steps of any repository on the deploy pool

NAME=value lines take the value as written (no quoting, no expansion); a narrower section's value
wins over a wider one's. Untrusted steps get none of them, whatever their scope.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from statemachines.contract import ENV_NAME
from statemachines.settings import EnvReader

ANY = "*"
SECTION = re.compile(r"^\[\s*([^\s\]]+)(?:\s+([a-z0-9][a-z0-9-]{0,39}))?\s*\]\s*(?:#.*)?$")
REPOSITORY = re.compile(r"^(\*|[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)$")


@dataclass(frozen=True)
class Scope:
    """Which trusted steps a group of secrets goes to: a repository (or any) and a pool (or any)."""

    repository: str = ANY
    pool: str = ANY

    def covers(self, repository: str | None, pool: str) -> bool:
        wanted = (ANY,) if repository is None else (ANY, repository.lower())
        return self.repository in wanted and self.pool in (ANY, pool)

    @property
    def rank(self) -> int:
        return (self.repository != ANY) * 2 + (self.pool != ANY)


@dataclass(frozen=True)
class SecretScopes:
    """Every scope of the secrets file with its NAME=value pairs."""

    scopes: tuple[tuple[Scope, tuple[tuple[str, str], ...]], ...] = field(default=())

    def for_step(self, repository: str | None, pool: str) -> dict[str, str]:
        """What one trusted step receives: the wider scopes first, so narrower values win.

        `repository` None: the step's repository is not vouched for, so no repository's own secrets.
        """
        found: dict[str, str] = {}
        for scope, pairs in sorted(self.scopes, key=lambda item: item[0].rank):
            if scope.covers(repository, pool):
                found.update(pairs)
        return found

    def __len__(self) -> int:
        return sum(len(pairs) for _, pairs in self.scopes)


def read_secrets(env: EnvReader, path: str) -> SecretScopes:
    """Parse the secrets file; every problem is added to `env` by line number, never echoing a value."""
    if not path:
        return SecretScopes()
    try:
        text = Path(path).read_text()
    except OSError as exc:
        env.problems.append(f"WORKER_SECRETS_FILE={path} cannot be read: {exc.strerror}")
        return SecretScopes()
    groups: dict[Scope, dict[str, str]] = {Scope(): {}}
    scope = Scope()
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.lstrip().startswith("["):
            header = SECTION.match(line.strip())
            if header is None or not REPOSITORY.match(header.group(1)):
                env.problems.append(
                    f"WORKER_SECRETS_FILE={path} line {number} is not a [owner/repository] or "
                    "[owner/repository pool] section"
                )
                continue
            scope = Scope(header.group(1).lower(), header.group(2) or ANY)
            groups.setdefault(scope, {})
            continue
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not ENV_NAME.match(name) or name.startswith("STEPLINE_"):
            # never echo the line: it may hold a secret
            env.problems.append(f"WORKER_SECRETS_FILE={path} line {number} is not NAME=value")
            continue
        groups[scope][name] = value
    return SecretScopes(tuple((s, tuple(pairs.items())) for s, pairs in groups.items() if pairs))
