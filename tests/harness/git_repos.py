"""Real git repositories for tests: a bare "remote" served by file:// URL and a working clone to commit in."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test Author",
    "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Author",
    "GIT_COMMITTER_EMAIL": "author@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(*args: str, cwd: Path | None = None) -> str:
    """Run git with a fixed identity and no user config; return stdout stripped."""
    env = {**os.environ, **GIT_ENV}
    result = subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout.strip()


class GitRepo:
    """A bare remote plus a clone; `commit()` writes files and commits, `push()` publishes to the remote."""

    def __init__(self, root: Path, name: str) -> None:
        self.name = name
        self.remote = root / f"{name}.git"
        self.work = root / f"{name}-work"
        git("init", "--bare", "--initial-branch=main", str(self.remote))
        git("init", "--initial-branch=main", str(self.work))
        git("remote", "add", "origin", str(self.remote), cwd=self.work)

    @property
    def url(self) -> str:
        return f"file://{self.remote}"

    def commit(
        self, files: dict[str, str | bytes], message: str = "change", branch: str | None = None
    ) -> str:
        """Write `files` (path -> content), commit them on `branch` (current if None), return the sha."""
        if branch is not None:
            self.checkout(branch)
        for path, content in files.items():
            target = self.work / path
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        git("add", "--all", cwd=self.work)
        git("commit", "--allow-empty", "-q", "-m", message, cwd=self.work)
        return self.head()

    def checkout(self, branch: str, create_from: str | None = None) -> None:
        existing = git("branch", "--list", branch, cwd=self.work)
        if existing:
            git("checkout", "-q", branch, cwd=self.work)
        else:
            args = ["checkout", "-q", "-b", branch] + ([create_from] if create_from else [])
            git(*args, cwd=self.work)

    def head(self) -> str:
        return git("rev-parse", "HEAD", cwd=self.work)

    def push(self, ref: str | None = None, force: bool = False) -> None:
        """Push `ref` (default: the current branch) to the bare remote."""
        ref = ref or git("rev-parse", "--abbrev-ref", "HEAD", cwd=self.work)
        git("push", "-q", *(["--force"] if force else []), "origin", ref, cwd=self.work)

    def tag(self, name: str, annotated: bool = True) -> None:
        git("tag", *(["-a", "-m", name] if annotated else []), name, cwd=self.work)

    def remote_ref(self, ref: str) -> str:
        return git("rev-parse", ref, cwd=self.remote)
