"""A working copy as a commit a worker can fetch: uncommitted and untracked changes included, nothing of it touched.

The commit is written into a snapshot repository of our own (`<cache>/snapshots/<name>-<digest>.git`,
one per working copy, so the worker's mirror of it stays warm from run to run) whose alternates
point at the working copy's object store: only the changed files' blobs and the new trees are
written, and only there. `git add -A` runs on a private GIT_INDEX_FILE (a copy of the user's index,
so unchanged files are not hashed again): the user's index, stash list, refs and objects stay as
they were. A working copy without changes runs its HEAD commit itself.

Each run holds a ref of its own in the snapshot repository (`refs/stepline-run/<run_id>`, released
at the end): the worker fetches an advertised tip, and runs of one working copy never race on a ref.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from stepline.errors import LocalRunError, NotARepository

RUN_REF = "refs/stepline-run/"
IDENTITY = {
    "GIT_AUTHOR_NAME": "stepline run",
    "GIT_AUTHOR_EMAIL": "stepline-run@localhost",
    "GIT_COMMITTER_NAME": "stepline run",
    "GIT_COMMITTER_EMAIL": "stepline-run@localhost",
}
REMOTE_NAME = re.compile(r"[:/]([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(\.git)?/?$")


@dataclass(frozen=True)
class Snapshot:
    """The commit a local run builds and where a worker fetches it from."""

    top: Path  # the working copy's top-level directory
    repository: str  # owner/name from the origin remote, else local/<directory>
    clone_url: str  # file:// URL of the snapshot repository
    sha: str
    parent: str  # HEAD's sha, or "" in a repository without commits
    branch: str  # the checked-out branch, "" when detached
    dirty: bool  # whether the working copy differs from HEAD (sha is then a snapshot commit)
    git_dir: Path  # the snapshot repository
    git: Git = field(repr=False, compare=False)

    def release(self, run_id: str) -> None:
        """Drop the run's ref; the objects stay for the next run's fetch to skip."""
        self.git(
            ["--git-dir", str(self.git_dir), "update-ref", "-d", RUN_REF + run_id], self.top, check=False
        )


def take_snapshot(directory: Path, cache: Path, run_id: str, environ: Mapping[str, str]) -> Snapshot:
    """Commit the working copy of `directory` into its snapshot repository under `cache`.

    `environ` is the user's environment: git reads their settings (excludes, attributes) through it.
    """
    git = Git(environ)
    if not directory.is_dir():
        raise NotARepository(str(directory), "no such directory")
    top = Path(git(["rev-parse", "--show-toplevel"], directory, what=str(directory)))
    objects = Path(git(["rev-parse", "--path-format=absolute", "--git-path", "objects"], top))
    index = Path(git(["rev-parse", "--path-format=absolute", "--git-path", "index"], top))
    parent = git(["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], top, check=False)
    branch = git(["symbolic-ref", "--quiet", "--short", "HEAD"], top, check=False)
    repository = _repository_name(git, top)
    git_dir = cache / "snapshots" / _snapshot_name(repository, top)
    _ensure_snapshot_repository(git, git_dir, objects)
    with tempfile.TemporaryDirectory(prefix="stepline-index-") as scratch:
        private_index = Path(scratch) / "index"
        if index.exists():
            shutil.copyfile(index, private_index)  # its stat data spares hashing unchanged files again
        env = {
            "GIT_INDEX_FILE": str(private_index),
            "GIT_OBJECT_DIRECTORY": str(git_dir / "objects"),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": str(objects),
        }
        git(["add", "--all", "--", "."], top, env)
        tree = git(["write-tree"], top, env)
        head_tree = git(["rev-parse", "--verify", "--quiet", "HEAD^{tree}"], top, env, check=False)
        dirty = tree != head_tree
        sha = parent
        if dirty:
            message = f"stepline run: the working copy of {top}" + (f" on {parent[:12]}" if parent else "")
            args = ["commit-tree", tree, "-m", message] + (["-p", parent] if parent else [])
            sha = git(args, top, env | IDENTITY)
    git(["--git-dir", str(git_dir), "update-ref", RUN_REF + run_id, sha], top)
    return Snapshot(top, repository, f"file://{git_dir}", sha, parent, branch, dirty, git_dir, git)


def _ensure_snapshot_repository(git: Git, git_dir: Path, objects: Path) -> None:
    if not (git_dir / "HEAD").exists():
        git_dir.parent.mkdir(parents=True, exist_ok=True)
        git(["init", "--quiet", "--bare", str(git_dir)], git_dir.parent)
    # written every run (the working copy may have moved its object store: a new clone in its place),
    # by rename, so a run of the same working copy fetching at this instant never reads it half-written
    alternates = git_dir / "objects" / "info" / "alternates"
    alternates.parent.mkdir(parents=True, exist_ok=True)
    fresh = alternates.with_name(f"alternates.{os.getpid()}")
    fresh.write_text(f"{objects}\n")
    fresh.replace(alternates)


def _repository_name(git: Git, top: Path) -> str:
    """owner/name as the server would call it (from the origin remote), else local/<directory name>."""
    url = git(["config", "--get", "remote.origin.url"], top, check=False)
    match = REMOTE_NAME.search(urlsplit(url).path if "://" in url else url) if url else None
    if match and match.group(1) not in ("", ".", ".."):
        return f"{match.group(1)}/{match.group(2)}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", top.name).strip(".-") or "repository"
    return f"local/{name}"


def _snapshot_name(repository: str, top: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", repository).strip("._-")[:60] or "repository"
    return f"{name}-{hashlib.sha256(str(top).encode()).hexdigest()[:12]}.git"


class Git:
    """Runs git as the user does (their environment: identity, excludes, attributes), on paths we name.

    `environ` holds none of the variables that point git at a repository (stepline/config.py).
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = {**environ, "GIT_TERMINAL_PROMPT": "0"}

    def __call__(
        self,
        args: list[str],
        cwd: Path,
        env: dict[str, str] | None = None,
        check: bool = True,
        what: str = "",
    ) -> str:
        try:
            done = subprocess.run(
                ["git", *args], cwd=cwd, env={**self.environ, **(env or {})}, capture_output=True, text=True,
                check=False,
            )  # fmt: skip
        except FileNotFoundError:
            raise LocalRunError("git is not installed") from None
        if done.returncode != 0 and check:
            said = done.stderr.strip().splitlines()[-1:] or [f"exit status {done.returncode}"]
            if what:
                raise NotARepository(what, said[0])
            raise LocalRunError(f"git {args[0]} failed in {cwd}: {said[0]}")
        return done.stdout.strip()
