"""Checkouts: a bare mirror per repository cached across tasks, and a fresh work tree per task from it."""

from __future__ import annotations

import fcntl
import hashlib
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from statemachines.contract import Source
from workers.errors import CheckoutFailed
from workers.git_access import GitAccess
from workers.process_group import Cancellation
from workers.shared_clone import write_shared_clone

log = logging.getLogger(__name__)

LOCK_POLL_SECONDS = 0.05
SAFE_REF = re.compile(r"^refs/[A-Za-z0-9._/-]{1,200}$")  # a ref we pass to git as a refspec, nothing else


def mirror_name(source: Source) -> str:
    """A directory name for a repository's mirror: the sanitised name plus a digest of the clone URL.

    Repository names and URLs come from webhooks: they never become paths as they are.
    """
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", source.repository).strip("._-")[:80] or "repository"
    digest = hashlib.sha256(source.clone_url.encode()).hexdigest()[:16]
    return f"{name}-{digest}.git"


def wanted(source: Source) -> list[list[str]]:
    """Refspecs to try in turn: the commit itself, else its pull-request head or its ref.

    Each lands on a ref of the mirror (one per source ref, a flat digest so branch names never
    clash): the next fetch then negotiates from it and brings only new objects, and git's gc
    never prunes what a task may still check out.
    """
    pull = f"refs/pull/{source.pull_request}/head" if source.pull_request is not None else ""
    ref = pull or (source.ref if SAFE_REF.match(source.ref) and ".." not in source.ref else "")
    keep = "refs/stepline/" + hashlib.sha256((ref or source.sha).encode()).hexdigest()[:24]
    wants = [[f"+{source.sha}:{keep}"]]
    if pull:
        wants.insert(0, [f"+{pull}:{keep}"])
    elif ref:
        wants.append([f"+{ref}:{keep}"])
    return wants


class Mirrors:
    """The bare mirrors under `root`; tasks in any slot or worker process share them under file locks."""

    def __init__(self, root: Path, git: GitAccess, timeout_seconds: float = 600) -> None:
        self.root = root
        self.git = git
        self.timeout_seconds = timeout_seconds
        root.mkdir(parents=True, exist_ok=True)

    def path(self, source: Source) -> Path:
        """The mirror of a source's repository (a task's shared clone borrows its objects)."""
        return self.root / mirror_name(source)

    def checkout(self, source: Source, dest: Path, cancellation: Cancellation | None = None) -> str:
        """Make `dest` a fresh work tree of `source.sha`; returns "warm" (no fetch) or "fetched"."""
        self.git.check_url(source.clone_url)
        deadline = time.monotonic() + self.timeout_seconds
        mirror = self.root / mirror_name(source)
        # warm path first, one git process: a commit the mirror lacks fails the checkout, which
        # then fetches. A shared lock: other tasks may check out meanwhile, none may fetch
        if (mirror / "HEAD").exists():
            try:
                with self._lock(mirror, fcntl.LOCK_SH, cancellation, deadline):
                    self._make_tree(mirror, source, dest, cancellation, deadline)
                return "warm"
            except CheckoutFailed:
                if (cancellation is not None and cancellation.is_set) or time.monotonic() > deadline:
                    raise
        with self._lock(mirror, fcntl.LOCK_EX, cancellation, deadline):
            self._fetch(mirror, source, cancellation, deadline)
        with self._lock(mirror, fcntl.LOCK_SH, cancellation, deadline):
            self._make_tree(mirror, source, dest, cancellation, deadline)
        return "fetched"

    @contextmanager
    def _lock(
        self, mirror: Path, mode: int, cancellation: Cancellation | None, deadline: float
    ) -> Iterator[None]:
        """Hold the mirror's lock; waiting for it honours the deadline and the cancellation."""
        # flock locks belong to an open file description: threads and processes exclude each other alike
        with open(mirror.with_suffix(".lock"), "a+") as handle:
            while True:
                try:
                    fcntl.flock(handle, mode | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if (cancellation is not None and cancellation.is_set) or time.monotonic() > deadline:
                        raise CheckoutFailed(
                            "the mirror stayed locked", f"gave up waiting for the lock of {mirror.name}"
                        ) from None
                    time.sleep(LOCK_POLL_SECONDS)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _has_commit(self, mirror: Path, sha: str, cancellation: Cancellation | None, deadline: float) -> bool:
        try:
            args = ["cat-file", "-e", f"{sha}^{{commit}}"]
            self.git.run(args, self.root, cancellation, deadline, git_dir=mirror)
            return True
        except CheckoutFailed:
            return False

    def _fetch(
        self, mirror: Path, source: Source, cancellation: Cancellation | None, deadline: float
    ) -> None:
        """Fetch only what is missing: the commit itself, else its pull-request head or ref."""
        if not (mirror / "HEAD").exists():
            mirror.mkdir(parents=True, exist_ok=True)
            self.git.run(["init", "--quiet", "--bare", str(mirror)], self.root, cancellation, deadline)
        elif self._has_commit(mirror, source.sha, cancellation, deadline):
            return  # another task fetched it while we waited for the lock
        last: CheckoutFailed | None = None
        for refspecs in wanted(source):
            args = ["fetch", "--quiet", "--no-tags", "--no-write-fetch-head", source.clone_url, *refspecs]
            try:
                self.git.run(args, self.root, cancellation, deadline, url=source.clone_url, git_dir=mirror)
            except CheckoutFailed as exc:
                last = exc
                continue
            if self._has_commit(mirror, source.sha, cancellation, deadline):
                return
        raise last or CheckoutFailed(
            "the commit was not found", f"commit {source.sha} is not in {source.repository}"
        )

    def _make_tree(
        self, mirror: Path, source: Source, dest: Path, cancellation: Cancellation | None, deadline: float
    ) -> None:
        # a shared clone borrows the mirror's objects (alternates): fast, and git commands a step
        # runs touch only its own repository, never the mirror's refs
        write_shared_clone(mirror, dest, source.clone_url)
        self.git.run(["checkout", "--quiet", "--detach", source.sha], dest, cancellation, deadline)
