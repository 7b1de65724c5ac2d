"""The run index's key layout: which sorted sets a run belongs to, and which one answers a filter.

Every filter of the runs page (repository, branch, pull request, status, and their combinations) is
answered by one sorted set scored by created_at, so a page is one ZREVRANGE: O(log n + page), however
many runs the index holds. A run belongs to one set per *scope* it has:

    stepline:runs                               every run
    stepline:runs:repo:<repo>                   the repository's runs
    stepline:runs:branch:<repo>:<branch>        push runs of a branch (a PR's runs are under pr:)
    stepline:runs:pr:<repo>:<number>            a pull request's runs
    stepline:runs:branch-any:<branch>           push runs of a branch in any repository    (since v2)
    stepline:runs:pr-any:<number>               pull request runs of that number, any repo  (since v2)

and to the same scopes qualified by its current status (moved when the status changes):

    stepline:runs:status:<status>               every run with that status
    stepline:runs:status:<status>:<scope>       e.g. runs:status:FAILED:branch:octo/app:main (since v2)

Git forbids ':' in ref names and GitHub in repository names, so no two scopes share a key. The sets
marked v2 came with the secondary indexes; `service/run_index_backfill.py` adds runs recorded before.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.run_record import RunRecord
from statemachines.run_claims import run_record_key

PREFIX = "stepline:"
ALL_RUNS = f"{PREFIX}runs"
EXECUTIONS = f"{PREFIX}runs:by-execution"
LAYOUT_VERSION = 2
VERSION_KEY = f"{PREFIX}runs:index-version"  # LAYOUT_VERSION once every run is in the v2 sets


def run_key(run_id: str) -> str:
    return run_record_key(run_id)  # workers look for it too (statemachines/run_claims.py)


def audit_key(run_id: str) -> str:
    return f"{run_key(run_id)}:audit"


def status_key(status: str, scope: str | None = None) -> str:
    return f"{PREFIX}runs:status:{status}" + (f":{scope}" if scope else "")


def scope_key(scope: str) -> str:
    return f"{PREFIX}runs:{scope}"


def sha_key(repository: str, sha: str) -> str:
    return f"{PREFIX}runs:sha:{repository}:{sha}"


def open_key(repository: str) -> str:
    return f"{PREFIX}runs:open:{repository}"


def scopes(run: RunRecord) -> list[str]:
    """The filter scopes a run belongs to by its immutable fields (besides every run's)."""
    repo = run["repository"]
    found = [f"repo:{repo}"]
    if run.get("pull_request") is not None:
        found += [f"pr:{repo}:{run['pull_request']}", f"pr-any:{run['pull_request']}"]
    elif run.get("branch"):
        found += [f"branch:{repo}:{run['branch']}", f"branch-any:{run['branch']}"]
    return found


def membership(run: RunRecord) -> list[str]:
    """Every sorted set a run is in with its current status (the open set aside)."""
    own = scopes(run)
    status = run["status"]
    return [
        ALL_RUNS,
        sha_key(run["repository"], run["sha"]),
        *(scope_key(scope) for scope in own),
        status_key(status),
        *(status_key(status, scope) for scope in own),
    ]


def status_sets(run: RunRecord, status: str) -> list[str]:
    """The sets that hold a run because of its status: left when the status changes."""
    return [status_key(status), *(status_key(status, scope) for scope in scopes(run))]


@dataclass(frozen=True)
class Query:
    """Which sorted set answers a filter, and what a listed run must still match (a combination of a
    branch with a pull request: the pull request's set is small, its runs are checked one by one)."""

    key: str
    branch: str | None = None  # set when the key's runs must also have this branch

    def accepts(self, run: RunRecord) -> bool:
        return self.branch is None or run.get("branch") == self.branch


def query(repository: str | None, branch: str | None, pull_request: int | None, status: str | None) -> Query:
    """The smallest set that holds exactly (or, with a branch and a PR, at least) the runs asked for."""
    scope = None
    if pull_request is not None:
        scope = f"pr:{repository}:{pull_request}" if repository else f"pr-any:{pull_request}"
    elif branch is not None:
        scope = f"branch:{repository}:{branch}" if repository else f"branch-any:{branch}"
    elif repository is not None:
        scope = f"repo:{repository}"
    check = branch if pull_request is not None else None
    if status is not None:
        return Query(status_key(status, scope), check)
    return Query(scope_key(scope) if scope else ALL_RUNS, check)


def needs_v2(
    repository: str | None, branch: str | None, pull_request: int | None, status: str | None
) -> bool:
    """Whether a filter's set came with v2 (before the backfill ends such filters scan instead)."""
    if status is not None:
        return any(value is not None for value in (repository, branch, pull_request))
    return repository is None and (branch is not None or pull_request is not None)
