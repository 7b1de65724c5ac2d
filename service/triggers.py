"""GitHub events to triggers: the small normalised record a run starts from, never the raw payload.

`parse_event(event, payload, delivery_id, settings)` dispatches on the X-GitHub-Event header through
EVENT_HANDLERS and returns a Trigger (build, skip or cancel) or Ignored (with the reason). A payload
that is not shaped like GitHub's raises MalformedPayloadError.

Trust is decided here, from the event: a push is trusted (its author can write to the repository); a
pull request from a fork is not; one from the repository itself is, unless
STEPLINE_TRUSTED_PR_AUTHOR_ASSOCIATIONS is set and its author's association is not in it. The decision
and its reason go on the run record; service/runs.py carries it where no pipeline can change it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from service.config import ServiceConfig
from service.errors import MalformedPayloadError

ZERO_SHA = "0" * 40
BUILD, SKIP, CANCEL = "build", "skip", "cancel"
SHA = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?$")
FULL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,100}/[A-Za-z0-9_.-]{1,100}$")
CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SKIP_CI = re.compile(r"\[(skip ci|ci skip)\]", re.IGNORECASE)
MAX_MESSAGE = 2000  # execution input must stay far below Step Functions' 256 KiB
MAX_REF = 255
BUILD_PR_ACTIONS = {"opened", "synchronize", "reopened", "ready_for_review"}

# Events GitHub may send that never start anything, and why (answered 202 "ignored").
IGNORED_EVENTS = {
    "status": "status events are never acted on (Stepline's own statuses would loop)",
    "create": "the matching push event carries the commit",
    "delete": "the matching push event (after = 0000…) cancels the ref's runs",
    # a re-request or an approval button on Stepline's own is acted on: service/check_requests.py
    "check_suite": "only a re-request of Stepline's check suite is acted on",
    "check_run": "only a re-request or an action on Stepline's check run is acted on",
    "workflow_run": "GitHub Actions runs are not Stepline's",
    "workflow_job": "GitHub Actions jobs are not Stepline's",
}


@dataclass(frozen=True)
class PullRequest:
    """The pull-request part of a trigger."""

    number: int
    base_ref: str
    head_ref: str
    head_repository: str | None  # None when the fork is gone
    draft: bool


@dataclass(frozen=True)
class Source:
    """What a run builds and whether it is trusted: the commit, where it comes from, and why."""

    repository: str
    clone_url: str
    private: bool
    ref: str
    branch: str | None
    tag: str | None
    sha: str
    pull_request: PullRequest | None
    fork: bool
    trusted: bool
    trust_reason: str  # why the run is trusted or not, e.g. "pull request from a fork"
    message: str = ""
    author: str = ""


@dataclass(frozen=True, kw_only=True)
class Trigger(Source):
    """What a delivery asks for: build a commit, skip it ([skip ci]) or cancel a ref's open runs.

    A webhook's event makes one (parse_event); a manual or scheduled run's resolved Source makes one too
    (service/manual_runs.py), so every run starts from the same record.
    """

    action: str
    delivery_id: str
    event: str
    before: str
    reason: str = ""
    installation_id: int | None = None  # the GitHub App installation that sent it: statuses post as it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Ignored:
    """A delivery that starts nothing, with the reason given back to GitHub."""

    reason: str


@dataclass(frozen=True)
class TriggerSettings:
    """The settings that decide which events build."""

    build_tags: bool = False
    build_drafts: bool = False
    allow_local_repositories: bool = False
    trusted_pr_author_associations: tuple[str, ...] = ()  # empty: every same-repository PR is trusted

    @classmethod
    def from_config(cls, config: ServiceConfig) -> TriggerSettings:
        return cls(
            config.build_tags,
            config.build_draft_pull_requests,
            config.allow_local_repositories,
            config.trusted_pr_author_associations,
        )


Outcome = Trigger | Ignored


def parse_event(event: str, payload: Any, delivery_id: str, settings: TriggerSettings) -> Outcome:
    """The trigger a delivery of `event` asks for, or why it is ignored."""
    handler = EVENT_HANDLERS.get(event)
    if handler is None:
        return Ignored(IGNORED_EVENTS.get(event, f"{event!r} events are not acted on"))
    if not isinstance(payload, dict):
        raise MalformedPayloadError("the payload must be a JSON object")
    outcome = handler(payload, delivery_id, settings)
    installation = payload.get("installation")
    installation_id = installation.get("id") if isinstance(installation, dict) else None
    if (
        isinstance(outcome, Trigger)
        and isinstance(installation_id, int)
        and not isinstance(installation_id, bool)
    ):
        return replace(outcome, installation_id=installation_id)
    return outcome


def on_push(payload: dict[str, Any], delivery_id: str, settings: TriggerSettings) -> Outcome:
    ref = _ref(payload.get("ref"), "ref")
    repo = _repository(payload, settings)
    if isinstance(repo, Ignored):
        return repo
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None
    if branch is None and tag is None:
        return Ignored(f"{ref} is neither a branch nor a tag")
    deleted = payload.get("deleted") is True or payload.get("after") == ZERO_SHA
    if tag is not None and not settings.build_tags and not deleted:
        return Ignored("tags are not built (STEPLINE_BUILD_TAGS is off)")
    base = Trigger(
        action=BUILD, delivery_id=delivery_id, event="push", repository=repo["repository"],
        clone_url=repo["clone_url"], private=repo["private"], ref=ref, branch=branch, tag=tag, sha="",
        before=_optional_sha(payload.get("before"), "before"), pull_request=None, fork=False, trusted=True,
        trust_reason="push to the repository",
    )  # fmt: skip
    if deleted:
        return replace(base, action=CANCEL, reason=f"{ref} was deleted")
    head = payload.get("head_commit")
    if not isinstance(head, dict):
        return Ignored("the push has no head commit")
    # head_commit.id, not after: for an annotated tag `after` is the tag object, not a commit
    sha = _sha(head.get("id"), "head_commit.id")
    message = _text(head.get("message"), MAX_MESSAGE)
    author = head.get("author")
    name = _text(author.get("name") or author.get("username"), 200) if isinstance(author, dict) else ""
    base = replace(base, sha=sha, message=message, author=name)
    if SKIP_CI.search(message):
        return replace(base, action=SKIP, reason="[skip ci] in the commit message")
    return base


def on_pull_request(payload: dict[str, Any], delivery_id: str, settings: TriggerSettings) -> Outcome:
    action = payload.get("action")
    if not isinstance(action, str):
        raise MalformedPayloadError("pull_request event without a string 'action'")
    pr = payload.get("pull_request")
    if (
        not isinstance(pr, dict)
        or not isinstance(pr.get("head"), dict)
        or not isinstance(pr.get("base"), dict)
    ):
        raise MalformedPayloadError("pull_request event without pull_request.head and .base")
    changes = payload.get("changes")
    retargeted = action == "edited" and isinstance(changes, dict) and isinstance(changes.get("base"), dict)
    if action not in BUILD_PR_ACTIONS and action != "closed" and not retargeted:
        return Ignored(f"pull_request action {action!r} does not start a build")
    draft = pr.get("draft") is True
    if action != "closed" and draft and not settings.build_drafts:
        return Ignored("draft pull requests are not built (STEPLINE_BUILD_DRAFT_PULL_REQUESTS is off)")
    if action == "ready_for_review" and settings.build_drafts:
        return Ignored("the draft was built already (STEPLINE_BUILD_DRAFT_PULL_REQUESTS is on)")
    base = _repository(payload, settings)
    if isinstance(base, Ignored):
        return base
    return _pull_request_trigger(payload, pr, base, delivery_id, settings)


def _pull_request_trigger(
    payload: dict[str, Any],
    pr: dict[str, Any],
    base: dict[str, Any],
    delivery_id: str,
    settings: TriggerSettings,
) -> Outcome:
    number = pr.get("number", payload.get("number"))
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        raise MalformedPayloadError("pull_request.number must be a positive number")
    head, head_repo = pr["head"], pr["head"].get("repo")
    head_name = head_repo.get("full_name") if isinstance(head_repo, dict) else None
    fork = head_name != base["repository"]  # a vanished head repository was a fork
    info = PullRequest(
        number,
        _ref(pr["base"].get("ref"), "base.ref"),
        _ref(head.get("ref"), "head.ref"),
        head_name,
        pr.get("draft") is True,
    )
    clone_url, ref = base["clone_url"], f"refs/pull/{number}/head"
    if isinstance(head_repo, dict):
        # untrusted code comes from the head repository; statuses still go to the base repository
        clone_url, ref = _clone_url(head_repo.get("clone_url"), settings), f"refs/heads/{info.head_ref}"
        if clone_url is None:
            return Ignored("the head repository's clone URL is not accepted")
    user = pr.get("user")
    login = _text(user.get("login"), 200) if isinstance(user, dict) else ""
    action = CANCEL if payload.get("action") == "closed" else BUILD
    trusted, trust_reason = pull_request_trust(fork, pr.get("author_association"), settings)
    return Trigger(
        action=action, delivery_id=delivery_id, event="pull_request", repository=base["repository"],
        clone_url=clone_url, private=base["private"], ref=ref, branch=info.head_ref, tag=None,
        sha=_sha(head.get("sha"), "pull_request.head.sha"), before=_optional_sha(payload.get("before"), "before"),
        pull_request=info, fork=fork, trusted=trusted, trust_reason=trust_reason,
        message=_text(pr.get("title"), MAX_MESSAGE), author=login,
        reason=f"pull request #{number} was closed" if action == CANCEL else "",
    )  # fmt: skip


def pull_request_trust(fork: bool, association: Any, settings: TriggerSettings) -> tuple[bool, str]:
    """(trusted, why): a fork's code is a stranger's; a same-repository PR may be limited by its author."""
    if fork:
        return False, "pull request from a fork"
    trusted_by = settings.trusted_pr_author_associations
    if not trusted_by:
        return True, "pull request from the repository"
    # a missing or unknown association is nobody's: untrusted
    shown = _text(association, 40) or "no author association"
    if association in trusted_by:
        return True, f"pull request from the repository by its {shown}"
    setting = ",".join(trusted_by)
    return False, f"pull request by {shown}, not in STEPLINE_TRUSTED_PR_AUTHOR_ASSOCIATIONS={setting}"


EVENT_HANDLERS: dict[str, Callable[[dict[str, Any], str, TriggerSettings], Outcome]] = {
    "push": on_push,
    "pull_request": on_pull_request,
}


def _repository(payload: dict[str, Any], settings: TriggerSettings) -> dict[str, Any] | Ignored:
    """repository, clone_url and private of the payload's repository (the one statuses go to)."""
    repo = payload.get("repository")
    if not isinstance(repo, dict):
        raise MalformedPayloadError("the payload has no 'repository' object")
    name = repo.get("full_name")
    if not isinstance(name, str) or not FULL_NAME.match(name):
        raise MalformedPayloadError("repository.full_name must be 'owner/name'")
    clone_url = _clone_url(repo.get("clone_url"), settings)
    if clone_url is None:
        return Ignored("file:// clone URLs are accepted only with STEPLINE_ALLOW_LOCAL_REPOSITORIES on")
    return {"repository": name, "clone_url": clone_url, "private": repo.get("private") is True}


def _clone_url(value: Any, settings: TriggerSettings) -> str | None:
    url = _text(value, 2000)
    if url.startswith("https://") or url.startswith("http://"):
        return url
    if url.startswith("file://") and settings.allow_local_repositories:
        return url
    if url.startswith("file://"):
        return None
    raise MalformedPayloadError("clone_url must be an https:// URL")


def _text(value: Any, limit: int) -> str:
    """A string cut to `limit` characters; lone surrogates (valid JSON, not UTF-8) become '?'."""
    if not isinstance(value, str):
        return ""
    text = value.encode("utf-8", "replace").decode("utf-8")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ref(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_REF or CONTROL.search(value):
        raise MalformedPayloadError(
            f"{field} must be a git ref name (no control characters, at most {MAX_REF})"
        )
    return _text(value, MAX_REF)


def _sha(value: Any, field: str) -> str:
    if not isinstance(value, str) or not SHA.match(value):
        raise MalformedPayloadError(f"{field} must be a full hexadecimal commit id")
    return value


def _optional_sha(value: Any, field: str) -> str:
    return "" if value in (None, "") else _sha(value, field)
