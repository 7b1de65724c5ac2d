"""A manual or scheduled run's source: repository and branch, tag, sha or pull request -> commit and trust.

GitHub's REST API says what the repository is (clone URL, privacy, default branch) and what a pull
request is; a branch, tag or sha is resolved through the same API (`GET /repos/{o}/{r}/commits/heads/<b>`),
or with git when the repository's clone URL is file:// and STEPLINE_ALLOW_LOCAL_REPOSITORIES is on.

Trust is decided here as the webhook decides it (service/triggers.py), from the source, never the asker:
- a branch or a tag of the repository: trusted (only people who may write to it create them);
- a sha: trusted only when it is in the history of the branch named with it (else the default branch).
  GitHub serves a fork's commits through the parent repository's API, so a bare sha vouches for nothing;
- `refs/pull/<n>/head`: trusted as that pull request's webhook run would be (a fork's never).
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
import requests
from github import Auth, Github, GithubException, GithubRetry, UnknownObjectException

from service.app_installations import repository_auth
from service.config import ServiceConfig
from service.errors import RunRequestError, SourceUnavailableError, UnknownSourceError
from service.schedules import REF_NAME
from service.triggers import FULL_NAME, SHA, PullRequest, Source, TriggerSettings, pull_request_trust

PULL_REF = re.compile(r"^refs/pull/(?P<number>[1-9][0-9]{0,9})/head$")
GIT_TIMEOUT_SECONDS = 20


@dataclass(frozen=True)
class RefRequest:
    """What was asked for: exactly one of branch, tag, sha or pull request (a sha may name its branch)."""

    repository: str
    branch: str | None = None
    tag: str | None = None
    sha: str | None = None
    pull_request: int | None = None
    or_tag: bool = False  # a bare name: a branch, else a tag of that name


def parse_ref(repository: str, ref: str, branch: str | None = None) -> RefRequest:
    """`ref` as a person types it: a branch, `refs/heads/<b>`, `refs/tags/<t>`, `refs/pull/<n>/head` or a sha."""
    if not isinstance(repository, str) or not FULL_NAME.match(repository):
        raise RunRequestError("repository", "must be 'owner/name'")
    if not isinstance(ref, str) or not ref.strip():
        raise RunRequestError("ref", "name a branch, a tag (refs/tags/<t>), a sha or refs/pull/<n>/head")
    ref = ref.strip()
    if branch is not None:
        _check_name("branch", branch)
    if SHA.match(ref):
        return RefRequest(repository, branch=branch, sha=ref)
    if branch is not None:
        raise RunRequestError("branch", "is only given with a sha (the branch the sha must be on)")
    pull = PULL_REF.match(ref)
    if pull:
        return RefRequest(repository, pull_request=int(pull["number"]))
    if ref.startswith("refs/tags/"):
        return RefRequest(repository, tag=_check_name("ref", ref.removeprefix("refs/tags/")))
    if ref.startswith("refs/") and not ref.startswith("refs/heads/"):
        raise RunRequestError("ref", f"{ref[:80]!r}: only refs/heads/, refs/tags/ and refs/pull/<n>/head")
    bare = not ref.startswith("refs/heads/")
    return RefRequest(repository, branch=_check_name("ref", ref.removeprefix("refs/heads/")), or_tag=bare)


def _check_name(field: str, name: str) -> str:
    if not isinstance(name, str) or not REF_NAME.match(name):
        shown = name[:80] if isinstance(name, str) else type(name).__name__
        raise RunRequestError(field, f"{shown!r} is not a branch or tag name")
    return name


class RefResolver:
    """Resolves a RefRequest through GitHub's API (and git, for file:// repositories in development)."""

    def __init__(self, config: ServiceConfig, client: redis.Redis | None = None) -> None:
        self.config = config
        self.settings = TriggerSettings.from_config(config)
        self.redis = client  # with a GitHub App and no token: asks as the repository's installation

    def default_branch(self, repository: str) -> str:
        return str(self._call(repository, lambda gh: gh.get_repo(repository).default_branch))

    def resolve(self, request: RefRequest) -> Source:
        """The source of the request; UnknownSourceError (404) or SourceUnavailableError (503)."""
        return self._call(request.repository, lambda gh: self._resolve(gh, request))

    def _call(self, repository: str, body: Any) -> Any:
        gh: Github | None = None
        try:
            auth = self._auth(repository)
            gh = Github(
                base_url=self.config.github_api_url, auth=auth, timeout=10, retry=GithubRetry(total=2)
            )
            return body(gh)
        except UnknownObjectException:
            raise UnknownSourceError("repository", f"GitHub does not know {repository}") from None
        except GithubException as exc:
            raise SourceUnavailableError(repository, f"GitHub answered {exc.status}") from exc
        except (requests.RequestException, OSError) as exc:
            raise SourceUnavailableError(repository, f"GitHub unreachable: {exc}") from exc
        finally:
            if gh is not None:
                gh.close()

    def _auth(self, repository: str) -> Auth.Token | None:
        if self.redis is None:  # no Redis to keep installation tokens in: the token, if any
            return Auth.Token(self.config.github_token) if self.config.github_token else None
        return repository_auth(self.config, self.redis, repository)

    def _resolve(self, gh: Github, request: RefRequest) -> Source:
        repo = gh.get_repo(request.repository)
        # GitHub's own spelling: a name typed in another case would be a repository of its own to the run
        # index, concurrency groups, caches and statuses
        base: dict[str, Any] = {
            "repository": repo.full_name, "clone_url": repo.clone_url, "private": bool(repo.private),
            "pull_request": None, "fork": False,
        }  # fmt: skip
        if request.pull_request is not None:
            return self._pull_request(repo, request.pull_request, base)
        local = self._local_path(repo.clone_url)
        if request.sha is not None:
            source = self._commit(repo, local, request.sha, request.branch or repo.default_branch, base)
        else:
            try:
                source = self._named(repo, local, request.branch, request.tag, base)
            except UnknownSourceError:
                if not request.or_tag:
                    raise
                try:  # `v1.0` typed bare: the tag, when there is no branch of that name
                    source = self._named(repo, local, None, request.branch, base)
                except UnknownSourceError:
                    raise UnknownSourceError(
                        "ref", f"{repo.full_name} has no branch or tag {request.branch}"
                    ) from None
        message, author = _git_message(local, source.sha) if local else _api_commit(repo, source.sha, "")[1:]
        return replace(source, message=message[:2000], author=author[:200])

    def _named(
        self, repo: Any, local: str | None, branch: str | None, tag: str | None, base: dict[str, Any]
    ) -> Source:
        """The head of a branch, or the commit of a tag: a source the repository's writers made, trusted."""
        kind, name = ("heads", branch) if branch else ("tags", tag)
        what = f"branch {name}" if kind == "heads" else f"tag {name}"
        if local:
            sha = _git_commit(local, f"refs/{kind}/{name}^{{commit}}", what)
        else:
            sha = _api_commit(repo, f"{kind}/{name}", what)[0]
        return Source(
            **base, ref=f"refs/{kind}/{name}", branch=branch, tag=tag, sha=sha, trusted=True,
            trust_reason=f"{what} of the repository",
        )  # fmt: skip

    def _commit(self, repo: Any, local: str | None, sha: str, branch: str, base: dict[str, Any]) -> Source:
        """A sha: trusted, and run as of `branch`, only when it is in that branch's history."""
        if local:
            _git_commit(local, f"{sha}^{{commit}}", f"commit {sha[:12]}")
            on_branch = _git_ok(local, "merge-base", "--is-ancestor", sha, f"refs/heads/{branch}")
        else:
            sha = _api_commit(repo, sha, f"commit {sha[:12]}")[0]
            on_branch = self._api_on_branch(repo, sha, branch)
        if on_branch:
            return Source(
                **base, ref=f"refs/heads/{branch}", branch=branch, tag=None, sha=sha, trusted=True,
                trust_reason=f"commit on the repository's branch {branch}",
            )  # fmt: skip
        # not the branch's: no branch either, so it neither supersedes nor passes for that branch's run
        return Source(
            **base, ref=sha, branch=None, tag=None, sha=sha, trusted=False,
            trust_reason=f"commit not on the repository's branch {branch}",
        )  # fmt: skip

    def _pull_request(self, repo: Any, number: int, base: dict[str, Any]) -> Source:
        try:
            pull = repo.get_pull(number)
        except UnknownObjectException:
            raise UnknownSourceError("ref", f"{base['repository']} has no pull request #{number}") from None
        head_repo = pull.head.repo
        head_name = head_repo.full_name if head_repo is not None else None
        fork = head_name != base["repository"]
        trusted, why = pull_request_trust(fork, pull.raw_data.get("author_association"), self.settings)
        info = PullRequest(number, pull.base.ref, pull.head.ref, head_name, bool(pull.draft))
        fields = {**base, "pull_request": info, "fork": fork}
        # the base repository's refs/pull/<n>/head: it stays when the fork goes
        return Source(
            **fields, ref=f"refs/pull/{number}/head", branch=pull.head.ref, tag=None, sha=pull.head.sha,
            trusted=trusted, trust_reason=why, message=(pull.title or "")[:2000],
            author=(pull.user.login if pull.user else "")[:200],
        )  # fmt: skip

    def _api_on_branch(self, repo: Any, sha: str, branch: str) -> bool:
        try:
            status = repo.compare(branch, sha).status
        except UnknownObjectException:
            raise UnknownSourceError("branch", f"{repo.full_name} has no branch {branch}") from None
        return status in ("identical", "behind")

    def _local_path(self, clone_url: str) -> str | None:
        if clone_url.startswith("file://") and self.config.allow_local_repositories:
            return unquote(urlsplit(clone_url).path)
        return None


def _api_commit(repo: Any, ref: str, what: str) -> tuple[str, str, str]:
    """(sha, message, author) of the commit `ref` names through GitHub's API."""
    try:
        commit = repo.get_commit(ref)
    except UnknownObjectException:
        raise UnknownSourceError("ref", f"{repo.full_name} has no {what or ref}") from None
    except GithubException as exc:
        if exc.status == 422:  # GitHub's answer for a sha or name it cannot resolve
            raise UnknownSourceError("ref", f"{repo.full_name} has no {what or ref}") from None
        raise
    inner = commit.commit
    author = inner.author.name if inner is not None and inner.author is not None else ""
    return commit.sha, (inner.message if inner is not None else "") or "", author or ""


def _git_commit(path: str, revision: str, what: str) -> str:
    done = _git(path, "rev-parse", "--verify", "--quiet", "--end-of-options", revision)
    if done.returncode != 0:
        raise UnknownSourceError("ref", f"the repository has no {what}")
    return done.stdout.strip()


def _git_ok(path: str, *args: str) -> bool:
    return _git(path, *args).returncode == 0


def _git_message(path: str, sha: str) -> tuple[str, str]:
    done = _git(path, "log", "-1", "--format=%an%x00%B", sha)
    author, _, message = done.stdout.partition("\x00")
    return message.strip(), author


def _git(path: str, *args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["git", "-C", path, *args],
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT_SECONDS,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SourceUnavailableError(path, f"git failed: {exc}") from exc
