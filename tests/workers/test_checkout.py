"""Checkouts from real git repositories: cached mirrors, fresh trees, locks, URL policy, credentials."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from statemachines.contract import Source
from tests.harness.git_repos import git
from tests.harness.ports import free_port
from workers.checkout import Mirrors, mirror_name
from workers.errors import CheckoutFailed
from workers.git_access import GitAccess


@pytest.fixture
def mirrors(tmp_path: Path) -> Mirrors:
    access = GitAccess(tmp_path / "git-home", allow_file_urls=True)
    return Mirrors(tmp_path / "mirrors", access, timeout_seconds=60)


def source_of(repo, sha: str, **fields) -> Source:
    return Source(repository=f"octo/{repo.name}", clone_url=repo.url, sha=sha, **fields)


def test_cold_then_warm_checkout_of_a_commit(make_repo, mirrors, tmp_path):
    repo = make_repo("app")
    first = repo.commit({"README.md": "one\n"})
    repo.push("main")
    assert mirrors.checkout(source_of(repo, first, ref="refs/heads/main"), tmp_path / "t1") == "fetched"
    assert (tmp_path / "t1" / "README.md").read_text() == "one\n"
    assert git("rev-parse", "HEAD", cwd=tmp_path / "t1") == first
    assert mirrors.checkout(source_of(repo, first), tmp_path / "t2") == "warm"
    second = repo.commit({"README.md": "two\n"})
    repo.push("main")
    assert mirrors.checkout(source_of(repo, second), tmp_path / "t3") == "fetched"
    assert (tmp_path / "t3" / "README.md").read_text() == "two\n"
    assert git("remote", "get-url", "origin", cwd=tmp_path / "t3") == repo.url


def test_a_pull_request_head_is_fetched_from_refs_pull(make_repo, mirrors, tmp_path):
    repo = make_repo("app")
    repo.commit({"a": "1"})
    repo.push("main")
    repo.checkout("feature", create_from="main")
    head = repo.commit({"a": "2"})
    git("push", "-q", "origin", "feature:refs/pull/7/head", cwd=repo.work)
    source = source_of(repo, head, ref="refs/pull/7/head", pull_request=7)
    assert mirrors.checkout(source, tmp_path / "pr") == "fetched"
    assert (tmp_path / "pr" / "a").read_text() == "2"


def test_an_unknown_commit_fails_the_checkout(make_repo, mirrors, tmp_path):
    repo = make_repo("app")
    repo.commit({"a": "1"})
    repo.push("main")
    with pytest.raises(CheckoutFailed) as failure:
        mirrors.checkout(source_of(repo, "1" * 40, ref="refs/heads/main"), tmp_path / "t")
    assert failure.value.error_name == "Stepline.CheckoutFailed"


def test_concurrent_checkouts_of_one_repository(make_repo, mirrors, tmp_path):
    repo = make_repo("app")
    shas = []
    for number in range(4):
        shas.append(repo.commit({"n.txt": str(number)}))
    repo.push("main")
    results: dict[int, str] = {}
    errors: list[BaseException] = []

    def check_out(index: int) -> None:
        try:
            mirrors.checkout(source_of(repo, shas[index % 4]), tmp_path / f"tree{index}")
            results[index] = (tmp_path / f"tree{index}" / "n.txt").read_text()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=check_out, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert results == {i: str(i % 4) for i in range(8)}
    assert len(list((tmp_path / "mirrors").glob("*.git"))) == 1


def test_file_urls_need_the_development_setting(make_repo, tmp_path):
    repo = make_repo("app")
    sha = repo.commit({"a": "1"})
    repo.push("main")
    strict = Mirrors(tmp_path / "m", GitAccess(tmp_path / "h"))
    with pytest.raises(CheckoutFailed, match="not allowed"):
        strict.checkout(source_of(repo, sha), tmp_path / "t")


@pytest.mark.parametrize(
    "url",
    [
        "http://github.com/octo/app.git",
        "https://user:pw@github.com/o/a.git",
        "--upload-pack=touch x",
        "ext::sh -c id",
    ],
)
def test_unsafe_clone_urls_are_refused(url, tmp_path):
    with pytest.raises(CheckoutFailed):
        GitAccess(tmp_path / "h", allow_file_urls=True).check_url(url)


def test_repository_names_never_become_paths_unsanitised():
    for name in ["../../etc/passwd", "..", "/abs/olute", "a/../../b", "octo/app"]:
        directory = mirror_name(Source(name, "https://github.com/x.git", "a" * 40))
        assert "/" not in directory and not directory.startswith(".") and directory.endswith(".git")


def test_the_token_reaches_git_only_through_its_environment(tmp_path):
    access = GitAccess(tmp_path / "h", token="s3cr3t-token", token_hosts=["github.com"])
    env = access.environment("https://github.com/octo/app.git")
    headers = [v for k, v in env.items() if k.startswith("GIT_CONFIG_VALUE_") and "Authorization" in v]
    assert len(headers) == 1 and "s3cr3t-token" not in headers[0]  # base64, in an http header
    keys = [v for k, v in env.items() if k.startswith("GIT_CONFIG_KEY_")]
    assert "http.https://github.com/.extraHeader" in keys  # scoped to the token's host
    assert "Authorization" not in str(access.environment("https://evil.example/octo/app.git"))
    assert "s3cr3t-token" not in " ".join(env.values())


def test_the_token_is_never_in_gits_argv(tmp_path):
    # a stand-in git on PATH records exactly what the worker hands it
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "git").write_text('#!/bin/sh\necho "$@" > "$HOME/argv"\nenv > "$HOME/env"\n')
    (fake / "git").chmod(0o755)
    access = GitAccess(tmp_path / "home", token="s3cr3t-token", path=f"{fake}:/usr/bin:/bin")
    access.run(
        ["fetch", "https://github.com/octo/app.git", "abc"], tmp_path, url="https://github.com/octo/app.git"
    )
    argv = (tmp_path / "home" / "argv").read_text()
    env = (tmp_path / "home" / "env").read_text()
    assert "fetch https://github.com/octo/app.git abc" in argv and "s3cr3t" not in argv
    assert "s3cr3t-token" not in env and "Authorization: Basic" in env  # only as git's own config
    assert "GIT_TERMINAL_PROMPT=0" in env and "STEPLINE_TEST" not in env


def test_a_warm_mirror_serves_https_repositories_without_file_urls(make_repo, tmp_path):
    # production settings (no file:// clone URLs): the tree still comes from the local mirror
    repo = make_repo("app")
    sha = repo.commit({"a": "prod"})
    repo.push("main")
    source = Source("octo/app", "https://github.com/octo/app.git", sha, "refs/heads/main")
    mirror = tmp_path / "mirrors" / mirror_name(source)
    git("init", "--quiet", "--bare", str(mirror))
    git("fetch", "--quiet", repo.url, f"+{sha}:refs/stepline/seeded", cwd=mirror)
    strict = Mirrors(tmp_path / "mirrors", GitAccess(tmp_path / "h"))
    assert strict.checkout(source, tmp_path / "t") == "warm"
    assert (tmp_path / "t" / "a").read_text() == "prod"


def test_an_unreachable_https_remote_fails_fast_with_git_s_reason(tmp_path):
    strict = Mirrors(
        tmp_path / "mirrors", GitAccess(tmp_path / "h", token="t0ken", token_hosts=["127.0.0.1"])
    )
    source = Source("octo/app", f"https://127.0.0.1:{free_port()}/octo/app.git", "a" * 40, "refs/heads/main")
    with pytest.raises(CheckoutFailed) as failure:
        strict.checkout(source, tmp_path / "t")
    assert "git fetch failed" in failure.value.reason and "t0ken" not in failure.value.cause
    assert "127.0.0.1" in failure.value.cause  # git's own words: what could not be reached
