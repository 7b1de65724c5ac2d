"""Manual runs through `POST /api/runs` and the New run form: real Redis, real git repositories, the fake GitHub.

No engine here: these tests stop at the queued run and its start job (test_manual_runs_e2e.py runs them).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from rq import Queue

from service.app import create_app
from service.errors import RunRequestError
from service.ref_resolver import RefRequest, parse_ref
from service.run_index import RunIndex
from service.run_inputs import declared_inputs
from tests.harness.ports import free_port
from tests.harness.processes import PROJECT, start_web
from tests.service.dashboard_seed import ADMIN_TOKEN, sign_in, with_users

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PIPELINE = {
    "Comment": "Deploy. concurrency: deploy inputs: environment=staging, version=latest, notes=",
    "StartAt": "Show",
    "States": {"Show": {"Type": "Task", "Resource": "${activity:build}", "End": True, "Parameters": {
        "step": "show", "commands": ["echo $ENVIRONMENT"], "run.$": "$$.Execution.Input",
        "env": {"ENVIRONMENT.$": "$.inputs.environment"}}}},
}  # fmt: skip


@pytest.fixture
def repo(make_repo: Any, fake_github: Any) -> Any:
    """octo/app on GitHub, its clone URL a real local repository with the pipeline on main and a feature branch."""
    repo = make_repo("app")
    repo.main_sha = repo.commit({".stepline/pipeline.asl.json": json.dumps(PIPELINE)}, "add the pipeline")
    repo.push("main")
    repo.tag("v1.0")
    repo.push("v1.0")
    repo.checkout("feature", create_from="main")
    repo.feature_sha = repo.commit({"f.txt": "x"}, "feature work")
    repo.push("feature")
    fake_github.add_repo("octo/app", clone_url=repo.url)
    return repo


@pytest.fixture
def web(service_config: Any) -> Any:
    return create_app(with_users(service_config, allow_local_repositories=True)).test_client()


def post_run(web: Any, body: Any, headers: dict[str, str] | None = None) -> Any:
    return web.post("/api/runs", json=body, headers=ADMIN if headers is None else headers)


def queued_job_ids(redis_client: Any) -> list[str]:
    return Queue("runs", connection=redis_client).get_job_ids()


def test_a_branch_run_from_the_api_is_trusted_audited_and_queued(web, repo, redis_client) -> None:
    token = sign_in(web)
    response = post_run(web, {"repository": "octo/app", "ref": "main", "inputs": {"environment": "prod"}},
                        {"X-CSRF-Token": token})  # fmt: skip
    assert response.status_code == 201, response.json
    body = response.json
    assert (body["sha"], body["trusted"], body["ref"]) == (repo.main_sha, True, "refs/heads/main")
    assert body["url"] == f"/runs/{body['run_id']}"
    run = RunIndex(redis_client).get(body["run_id"])
    assert run["status"] == "QUEUED" and run["event"] == "manual" and run["branch"] == "main"
    assert run["status_reason"] == "started by alice" and run["inputs"] == {"environment": "prod"}
    assert run["execution_input"]["event"] == "manual"
    assert [(e["action"], e["by"]) for e in RunIndex(redis_client).audit(body["run_id"])] == [
        ("started manually", "alice")
    ]
    assert f"run-{body['run_id']}" in queued_job_ids(redis_client)
    listed = web.get("/api/runs").json["runs"]
    assert listed[0]["run_id"] == body["run_id"] and listed[0]["trigger"] == "manual run of main"


def test_tags_and_shas_on_a_branch_are_trusted_a_stray_sha_is_not(web, repo, make_repo) -> None:
    tag = post_run(web, {"repository": "octo/app", "ref": "refs/tags/v1.0"}).json
    assert (tag["sha"], tag["trusted"], tag["ref"]) == (repo.main_sha, True, "refs/tags/v1.0")
    assert (
        post_run(web, {"repository": "octo/app", "ref": "v1.0"}).json["ref"] == "refs/tags/v1.0"
    )  # no such branch
    on_main = post_run(web, {"repository": "octo/app", "ref": repo.main_sha}).json
    assert (on_main["trusted"], on_main["ref"]) == (True, "refs/heads/main")
    # the feature commit is in the repository, but not on main: no trust (and no branch) unless named
    stray = post_run(web, {"repository": "octo/app", "ref": repo.feature_sha}).json
    assert (stray["trusted"], stray["ref"]) == (False, repo.feature_sha)
    assert stray["trust_reason"] == "commit not on the repository's branch main"
    named = post_run(web, {"repository": "octo/app", "ref": repo.feature_sha, "branch": "feature"}).json
    assert (named["trusted"], named["ref"]) == (True, "refs/heads/feature")


def test_a_forks_pull_request_ref_stays_untrusted_whoever_starts_it(web, repo, fake_github) -> None:
    fake_github.add_pull("octo/app", 7, repo.feature_sha, "mallory/app", "evil")
    fake_github.add_pull("octo/app", 8, repo.feature_sha, "octo/app", "feature")
    fork = post_run(web, {"repository": "octo/app", "ref": "refs/pull/7/head"})
    assert fork.status_code == 201, fork.json
    assert (fork.json["trusted"], fork.json["trust_reason"]) == (False, "pull request from a fork")
    own = post_run(web, {"repository": "octo/app", "ref": "refs/pull/8/head"}).json
    assert own["trusted"] is True and own["ref"] == "refs/pull/8/head"


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        ({"repository": "octo/nothing", "ref": "main"}, 404, "GitHub does not know octo/nothing"),
        ({"repository": "octo/app", "ref": "gone"}, 404, "has no branch or tag gone"),
        ({"repository": "octo/app", "ref": "refs/heads/v1.0"}, 404, "has no branch v1.0"),
        ({"repository": "octo/app", "ref": "$(rm -rf ~)"}, 400, "is not a branch or tag name"),
        ({"repository": "octo/app", "ref": "main; rm -rf /"}, 400, "is not a branch or tag name"),
        ({"repository": "octo/app", "ref": "--upload-pack=evil"}, 400, "is not a branch or tag name"),
        ({"repository": "octo/app", "ref": "a" * 40}, 404, "has no commit"),
        ({"repository": "octo/app", "ref": "refs/pull/99/head"}, 404, "no pull request #99"),
        ({"repository": "octo/app", "ref": "refs/remotes/x"}, 400, "only refs/heads/"),
        ({"repository": "../../etc", "ref": "main"}, 400, "must be 'owner/name'"),
        ({"repository": "octo/app"}, 400, "name a branch"),
        ({"repository": "octo/app", "ref": "main", "inputs": {"nope": "x"}}, 400, "declares no such input"),
        ({"repository": "octo/app", "ref": "main", "inputs": {"environment": "a\nb"}}, 400, "one line"),
        ({"repository": "octo/app", "ref": "main", "inputs": ["x"]}, 400, "must be an object"),
        ({"repository": "octo/app", "ref": "main", "branch": "main"}, 400, "only given with a sha"),
        ([1, 2], 400, "must be a JSON object"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_start_nothing(web, repo, redis_client, body, status, words) -> None:
    response = post_run(web, body)
    assert response.status_code == status, response.json
    assert words in response.json["error"]
    assert queued_job_ids(redis_client) == []


def test_starting_a_run_needs_a_user_and_the_csrf_token(web, repo, redis_client) -> None:
    body = {"repository": "octo/app", "ref": "main"}
    assert post_run(web, body, {}).status_code == 401
    sign_in(web)
    assert post_run(web, body, {}).status_code == 400  # a cookie alone: a cross-site form could send it
    assert queued_job_ids(redis_client) == []


def test_the_form_shows_the_declared_inputs_and_starts_the_run(web, repo, redis_client) -> None:
    assert web.get("/runs/new").status_code == 302  # signed out: to the sign-in page
    token = sign_in(web)
    page = web.get("/runs/new?repository=octo/app&ref=main").get_data(as_text=True)
    assert repo.main_sha in page and 'name="input_environment" id="input-environment" value="staging"' in page
    bad = web.get("/runs/new?repository=octo/app&ref=%24(rm%20-rf%20~)")
    assert bad.status_code == 400 and "is not a branch or tag name" in bad.get_data(as_text=True)
    # the form starts the commit it showed, on its branch, even if the branch moved meanwhile
    assert f'name="ref" value="{repo.main_sha}"' in page and 'name="branch" value="main"' in page
    repo.checkout("main")
    repo.commit({"later.txt": "x"}, "a later push")
    repo.push("main")
    form = {"csrf_token": token, "repository": "octo/app", "ref": repo.main_sha, "branch": "main"}
    started = web.post("/runs/new", data={**form, "input_environment": "qa"})
    assert started.status_code == 302
    run_id = started.headers["Location"].rsplit("/", 1)[-1]
    run = RunIndex(redis_client).get(run_id)
    assert (run["inputs"], run["sha"], run["ref"], run["trusted"]) == (
        {"environment": "qa"},
        repo.main_sha,
        "refs/heads/main",
        True,
    )
    assert "started manually" in web.get(f"/runs/{run_id}").get_data(as_text=True)


def test_refs_resolve_through_githubs_api_when_the_clone_url_is_not_local(web, fake_github) -> None:
    main, old, other = "1" * 40, "2" * 40, "3" * 40
    fake_github.add_repo("octo/remote")
    fake_github.add_ref("octo/remote", "heads/main", main, history=(old,))
    fake_github.add_ref("octo/remote", "tags/v2", old)
    assert post_run(web, {"repository": "octo/remote", "ref": "main"}).json["sha"] == main
    assert post_run(web, {"repository": "octo/remote", "ref": "refs/tags/v2"}).json["sha"] == old
    assert post_run(web, {"repository": "octo/remote", "ref": old}).json["trusted"] is True
    assert post_run(web, {"repository": "octo/remote", "ref": other}).json["trusted"] is False
    assert post_run(web, {"repository": "octo/remote", "ref": "v2"}).json["ref"] == "refs/tags/v2"
    assert post_run(web, {"repository": "octo/remote", "ref": "nope"}).status_code == 404


def test_parse_ref_reads_what_people_type() -> None:
    sha = "a" * 40
    assert parse_ref("o/a", "main") == RefRequest("o/a", branch="main", or_tag=True)
    assert parse_ref("o/a", "refs/heads/feature/x") == RefRequest("o/a", branch="feature/x")
    assert parse_ref("o/a", "refs/tags/v1.2") == RefRequest("o/a", tag="v1.2")
    assert parse_ref("o/a", "refs/pull/12/head") == RefRequest("o/a", pull_request=12)
    assert parse_ref("o/a", sha, "release") == RefRequest("o/a", branch="release", sha=sha)
    for bad in ("a..b", "x@{1}", "HEAD~1", "x:y", "end.", "x.lock", "-x", " ", "x y", "ü"):
        with pytest.raises(RunRequestError):
            parse_ref("o/a", bad)


def test_inputs_are_declared_in_the_comment() -> None:
    assert declared_inputs(PIPELINE) == {"environment": "staging", "version": "latest", "notes": ""}
    assert declared_inputs({"Comment": "concurrency: deploy"}) == {}
    assert declared_inputs({"Comment": "Inputs: a=1,b=2; more words"}) == {"a": "1", "b": "2"}


def test_the_command_line_starts_a_run_through_the_api(
    repo, processes, redis_url, fake_github, redis_client
) -> None:
    url = start_web(
        processes, redis_url, GITHUB_API_URL=fake_github.url, GITHUB_TOKEN="test-token", LOG_LEVEL="WARNING",
        STEPLINE_ALLOW_LOCAL_REPOSITORIES="true", STEPLINE_ADMIN_TOKEN=ADMIN_TOKEN,
    )  # fmt: skip

    def client(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "service.run_client", *args]
        env = {"STEPLINE_ADMIN_TOKEN": ADMIN_TOKEN, "PATH": "/usr/bin:/bin"}
        return subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, timeout=60)

    started = client("octo/app", "main", "--input", "environment=cli", "--url", url)
    assert started.returncode == 0, started.stderr
    run = RunIndex(redis_client).get(json.loads(started.stdout)["run_id"])
    assert (run["sha"], run["inputs"], run["status_reason"]) == (
        repo.main_sha,
        {"environment": "cli"},
        "started by admin",
    )
    refused = client("octo/app", "$(rm -rf ~)", "--url", url)
    assert refused.returncode == 1 and "is not a branch or tag name" in refused.stderr
    unknown = client("octo/app", "main", "-i", "nope=1", "--url", url)
    assert unknown.returncode == 1 and "declares no such input" in unknown.stderr
    assert client("octo/app", "main", "--url", f"http://127.0.0.1:{free_port()}").returncode == 3
