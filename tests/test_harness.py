"""The harness itself: Redis kill/restart keeps data, git repos push, the fake GitHub speaks to PyGithub."""

from __future__ import annotations

import pytest
from github import Auth, Github, GithubException, GithubRetry

from tests.harness.git_repos import git


def test_redis_survives_sigkill_with_append_only_file(redis_server, redis_client):
    redis_client.set("kept", "yes")
    redis_client.execute_command("BGREWRITEAOF")
    redis_client.close()
    import time

    time.sleep(1.2)  # appendfsync everysec: let the write reach the disk as a running server would
    redis_server.restart()
    assert redis_server.client().get("kept") == b"yes"


def test_git_repo_commits_and_pushes_branches(make_repo):
    repo = make_repo("widgets")
    first = repo.commit({"README.md": "hello\n"}, "first")
    repo.push("main")
    repo.checkout("feature/x")
    second = repo.commit({"a.txt": "a"}, "second")
    repo.push("feature/x")
    assert repo.remote_ref("main") == first
    assert repo.remote_ref("feature/x") == second
    assert git("cat-file", "-t", first, cwd=repo.remote) == "commit"
    assert repo.url.startswith("file://")


def _github(base_url: str, retry=None) -> Github:
    return Github(base_url=base_url, auth=Auth.Token("t0ken"), retry=retry, seconds_between_writes=0)


@pytest.mark.parametrize("prefix", ["", "/api/v3"])
def test_pygithub_posts_and_reads_statuses(fake_github, prefix):
    fake_github.add_repo("octo/app")
    gh = _github(fake_github.url + prefix)
    commit = gh.get_repo("octo/app").get_commit("a" * 40)
    commit.create_status("pending", target_url="http://x/run/1", description="queued", context="stepline/ci")
    commit.create_status("success", description="passed in 3s", context="stepline/ci")
    assert [s.state for s in commit.get_statuses()] == ["success", "pending"]
    assert commit.get_combined_status().state == "success"
    posts = fake_github.requests("POST", "/statuses/")
    assert len(posts) == 2 and posts[0].headers["authorization"] == "token t0ken"
    assert posts[0].path.startswith(prefix + "/repos/octo/app/statuses/")


def test_injected_502_is_seen_and_retried(fake_github):
    fake_github.add_repo("octo/app")
    fake_github.fail_next(1, status=502)
    with pytest.raises(GithubException) as failure:
        _github(fake_github.url).get_repo("octo/app")
    assert failure.value.status == 502
    fake_github.fail_next(1, status=502)
    retrying = _github(fake_github.url, retry=GithubRetry(total=2, backoff_factor=0.01))
    assert retrying.get_repo("octo/app").full_name == "octo/app"
    assert len(fake_github.requests("GET", "/repos/octo/app")) == 3


def test_rate_limit_answer_carries_retry_after(fake_github):
    fake_github.add_repo("octo/app")
    fake_github.rate_limit_next(1, status=403, retry_after=1)
    with pytest.raises(GithubException) as failure:
        _github(fake_github.url).get_repo("octo/app")
    assert failure.value.status == 403
    assert failure.value.headers["retry-after"] == "1"
    fake_github.rate_limit_next(1, status=403, retry_after=1)
    retrying = _github(
        fake_github.url, retry=GithubRetry(total=2, backoff_factor=0.01, secondary_rate_wait=1)
    )
    assert retrying.get_repo("octo/app").name == "app"


def test_contents_and_installation_tokens(fake_github):
    fake_github.add_repo("octo/app")
    fake_github.add_file("octo/app", "abc123", ".stepline/pipeline.asl.json", '{"StartAt": "A"}')
    repo = _github(fake_github.url).get_repo("octo/app")
    assert (
        repo.get_contents(".stepline/pipeline.asl.json", ref="abc123").decoded_content == b'{"StartAt": "A"}'
    )
    with pytest.raises(GithubException) as missing:
        repo.get_contents(".stepline/pipeline.asl.json", ref="other")
    assert missing.value.status == 404
