"""Events to triggers, from GitHub's recorded payloads and from hostile ones."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.errors import MalformedPayloadError
from service.triggers import BUILD, CANCEL, SKIP, Ignored, Trigger, TriggerSettings, parse_event
from tests.service.github_events import fixture

DEFAULT = TriggerSettings()


def parse(event: str, name_or_payload, settings: TriggerSettings = DEFAULT):
    payload = fixture(name_or_payload) if isinstance(name_or_payload, str) else name_or_payload
    return parse_event(event, payload, "delivery-1", settings)


def test_branch_push_builds_the_head_commit():
    trigger = parse("push", "push/branch-push.drone-go-scm.json")
    assert isinstance(trigger, Trigger) and trigger.action == BUILD
    payload = fixture("push/branch-push.drone-go-scm.json")
    assert trigger.sha == payload["head_commit"]["id"]
    assert (trigger.repository, trigger.branch, trigger.tag) == ("Codertocat/Hello-World", "master", None)
    assert trigger.ref == "refs/heads/master" and trigger.before == payload["before"]
    assert trigger.trusted and not trigger.fork and trigger.pull_request is None
    assert trigger.clone_url == payload["repository"]["clone_url"]


def test_new_branch_push_builds():
    trigger = parse("push", "push/new-branch-initial-push.octokit.json")
    assert isinstance(trigger, Trigger) and trigger.action == BUILD and trigger.before == "0" * 40


def test_tags_build_only_when_configured_and_use_head_commit_not_after():
    assert isinstance(parse("push", "push/tag-created.drone-go-scm.json"), Ignored)
    payload = fixture("push/tag-created.drone-go-scm.json")
    payload["after"] = "f" * 40  # an annotated tag: `after` is the tag object
    trigger = parse("push", payload, TriggerSettings(build_tags=True))
    assert isinstance(trigger, Trigger) and trigger.tag == "v0.0.1" and trigger.branch is None
    assert trigger.sha == payload["head_commit"]["id"]


@pytest.mark.parametrize("name", ["push/branch-deleted.drone-go-scm.json", "push/tag-deleted.octokit.json"])
def test_deleted_refs_cancel_and_build_nothing(name):
    trigger = parse("push", name)
    assert isinstance(trigger, Trigger) and trigger.action == CANCEL and trigger.sha == ""
    assert "deleted" in trigger.reason


@pytest.mark.parametrize("marker", ["[skip ci]", "[ci skip]", "[SKIP CI]"])
def test_skip_ci_in_the_head_commit_message_skips(marker):
    payload = fixture("push/branch-push.drone-go-scm.json")
    payload["head_commit"]["message"] = f"Fix docs {marker}\n\nbody"
    trigger = parse("push", payload)
    assert isinstance(trigger, Trigger) and trigger.action == SKIP and "skip ci" in trigger.reason


@pytest.mark.parametrize(
    "name",
    [
        "pull_request/opened.octokit.json",
        "pull_request/synchronize.cogni.json",
        "pull_request/opened.cogni.json",
    ],
)
def test_pull_request_builds_the_head_sha_with_statuses_on_the_base(name):
    payload = fixture(name)
    trigger = parse("pull_request", payload)
    assert isinstance(trigger, Trigger) and trigger.action == BUILD
    pr = payload["pull_request"]
    assert trigger.sha == pr["head"]["sha"] and trigger.repository == payload["repository"]["full_name"]
    assert trigger.pull_request is not None and trigger.pull_request.number == pr["number"]
    assert (
        trigger.pull_request.base_ref == pr["base"]["ref"]
        and trigger.pull_request.head_ref == pr["head"]["ref"]
    )
    assert trigger.trusted and not trigger.fork


def test_fork_pull_request_is_untrusted_and_clones_the_fork():
    payload = fixture("pull_request/opened-from-fork.reallyfastci.json")
    trigger = parse("pull_request", payload)
    assert isinstance(trigger, Trigger) and trigger.fork and not trigger.trusted
    assert trigger.repository == "ailisp/gcbapp-buildconfig-example"
    assert trigger.clone_url == payload["pull_request"]["head"]["repo"]["clone_url"]
    assert trigger.pull_request is not None
    assert trigger.pull_request.head_repository == "byao1276/gcbapp-buildconfig-example"


def test_pull_request_whose_fork_is_gone_clones_refs_pull_from_the_base():
    payload = fixture("pull_request/opened-from-fork.reallyfastci.json")
    payload["pull_request"]["head"]["repo"] = None
    trigger = parse("pull_request", payload)
    assert isinstance(trigger, Trigger) and trigger.fork and not trigger.trusted
    assert trigger.clone_url == payload["repository"]["clone_url"]
    assert trigger.ref == f"refs/pull/{payload['number']}/head"


MAINTAINERS = TriggerSettings(trusted_pr_author_associations=("OWNER", "MEMBER", "COLLABORATOR"))


@pytest.mark.parametrize("settings", [DEFAULT, MAINTAINERS])
def test_a_fork_pull_request_is_untrusted_whatever_its_author(settings):
    payload = fixture("pull_request/opened-from-fork.reallyfastci.json")
    payload["pull_request"]["author_association"] = "OWNER"  # even the owner's fork runs a stranger's code
    trigger = parse("pull_request", payload, settings)
    assert isinstance(trigger, Trigger) and not trigger.trusted
    assert trigger.trust_reason == "pull request from a fork"


@pytest.mark.parametrize(
    ("association", "trusted"),
    [("OWNER", True), ("MEMBER", True), ("COLLABORATOR", True), ("CONTRIBUTOR", False),
     ("FIRST_TIME_CONTRIBUTOR", False), ("NONE", False), (None, False)],
)  # fmt: skip
def test_same_repository_pull_requests_are_trusted_by_their_authors_association(association, trusted):
    payload = fixture("pull_request/opened.octokit.json")  # a recorded OWNER's pull request
    payload["pull_request"]["author_association"] = association
    trigger = parse("pull_request", payload, MAINTAINERS)
    assert isinstance(trigger, Trigger) and not trigger.fork and trigger.trusted is trusted
    if not trusted:
        assert trigger.trust_reason == (
            f"pull request by {association or 'no author association'}, "
            "not in STEPLINE_TRUSTED_PR_AUTHOR_ASSOCIATIONS=OWNER,MEMBER,COLLABORATOR"
        )
    # without the setting every same-repository pull request is trusted, as is every push
    assert parse("pull_request", payload).trusted
    push = parse("push", "push/branch-push.drone-go-scm.json", MAINTAINERS)
    assert push.trusted and push.trust_reason == "push to the repository"


def test_closed_pull_request_cancels():
    trigger = parse("pull_request", "pull_request/closed-unmerged.octokit.json")
    assert isinstance(trigger, Trigger) and trigger.action == CANCEL and trigger.pull_request is not None


@pytest.mark.parametrize(
    "name",
    [
        "pull_request/labeled.octokit.json",
        "pull_request/converted_to_draft.octokit.json",
        "pull_request/edited-body.drone-go-scm.json",
    ],
)
def test_other_pull_request_actions_are_ignored(name):
    assert isinstance(parse("pull_request", name), Ignored)


def test_drafts_follow_the_setting():
    payload = fixture("pull_request/opened.octokit.json")
    payload["pull_request"]["draft"] = True
    assert isinstance(parse("pull_request", payload), Ignored)
    assert isinstance(parse("pull_request", payload, TriggerSettings(build_drafts=True)), Trigger)
    ready = fixture("pull_request/ready_for_review.octokit.json")
    assert isinstance(parse("pull_request", ready), Trigger)
    assert isinstance(parse("pull_request", ready, TriggerSettings(build_drafts=True)), Ignored)


@pytest.mark.parametrize(
    ("event", "name"),
    [
        ("status", "status/status.octokit.json"), ("create", "create/tag.octokit.json"),
        ("delete", "delete/branch.drone-go-scm.json"), ("check_suite", "check_suite/requested.octokit.json"),
        ("workflow_run", "workflow_run/completed.octokit.json"), ("issues", "issues/opened.octokit.json"),
        ("installation", "installation/created.octokit.json"),
    ],
)  # fmt: skip
def test_events_not_acted_on_are_ignored_with_a_reason(event, name):
    outcome = parse(event, name)
    assert isinstance(outcome, Ignored) and outcome.reason


def test_status_events_are_never_acted_on_even_when_shaped_like_a_push():
    assert isinstance(parse("status", "push/branch-push.drone-go-scm.json"), Ignored)


def test_file_clone_urls_need_the_development_setting():
    payload = fixture("push/branch-push.drone-go-scm.json")
    payload["repository"]["clone_url"] = "file:///tmp/app.git"
    assert isinstance(parse("push", payload), Ignored)
    assert isinstance(parse("push", payload, TriggerSettings(allow_local_repositories=True)), Trigger)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.pop("repository"),
        lambda p: p.update(repository="octo/app"),
        lambda p: p["repository"].update(full_name="../../etc"),
        lambda p: p["repository"].update(clone_url="ssh://evil/x"),
        lambda p: p.update(ref=["refs/heads/x"]),
        lambda p: p.update(ref="refs/heads/a\nb"),
        lambda p: p["head_commit"].update(id="$(reboot)"),
        lambda p: p.update(before=12),
    ],
)
def test_malformed_pushes_raise_a_clear_error(mutate):
    payload = fixture("push/branch-push.drone-go-scm.json")
    mutate(payload)
    with pytest.raises(MalformedPayloadError):
        parse("push", payload)


def test_hostile_branch_names_and_messages_are_kept_as_data_and_bounded():
    payload = fixture("push/branch-push.drone-go-scm.json")
    payload["ref"] = "refs/heads/$(rm -rf /);`id`|ünï/😀"
    payload["head_commit"]["message"] = "$(curl evil) `id`; rm -rf /\n\ud800" + "x" * 100_000
    trigger = parse("push", payload)
    assert isinstance(trigger, Trigger)
    assert trigger.branch == "$(rm -rf /);`id`|ünï/😀"
    assert trigger.message.startswith("$(curl evil) `id`; rm -rf /\n?") and len(trigger.message) <= 2000
    json.dumps(trigger.to_dict()).encode("utf-8")  # storable and sendable as UTF-8


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=30,
    )
)
def test_arbitrary_json_never_crashes_the_parser(value):
    base = fixture("push/branch-push.drone-go-scm.json")
    for key in ("ref", "head_commit", "repository", "after"):
        payload = copy.deepcopy(base)
        payload[key] = value
        try:
            outcome = parse("push", payload)
        except MalformedPayloadError:
            continue
        assert isinstance(outcome, Trigger | Ignored)


def test_a_github_app_delivery_carries_its_installation_into_the_run():
    from service.runs import new_run

    payload = fixture("push/branch-push.drone-go-scm.json")
    payload["installation"] = {"id": 4242, "node_id": "x"}
    trigger = parse("push", payload)
    assert isinstance(trigger, Trigger) and trigger.installation_id == 4242
    assert new_run(trigger, "hook-1")["installation_id"] == 4242
    plain = parse("push", "push/branch-push.drone-go-scm.json")
    assert isinstance(plain, Trigger) and plain.installation_id is None
    payload["installation"] = {"id": "4242"}  # not a number: ignored, never trusted as one
    assert parse("push", payload).installation_id is None
