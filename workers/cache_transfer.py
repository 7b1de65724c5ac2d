"""A step's cache on the worker: its key from the template, restore before the commands, save after a success.

The tar that packs or unpacks a cache runs in the step's own sandbox, as the step's user: a hostile
archive (links out, `..`, absolute names) or a hostile tree (a `.venv` that links to /etc) can reach no
more than the step itself could. The worker only moves the archive between the blob store and a file of
the task directory the step never sees.
"""

from __future__ import annotations

import hashlib
import platform
import re
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

from statemachines.blob_store import Stop
from statemachines.caches import CacheStore, Hit, Scope
from statemachines.step_outputs import CacheSpec
from workers.errors import CacheRefused
from workers.process_group import SHUTDOWN, Cancellation, ProcessGroup
from workers.tree_glob import glob_tree

Say = Callable[[str], None]
Wrap = Callable[[list[str], Mapping[str, str]], tuple[list[str], Mapping[str, str]]]
PLACEHOLDER = re.compile(r"\{(branch|os|arch|step|hash:[^{}]+)\}")
TAR_SECONDS = 1800
CHUNK = 1 << 20


def render_key(template: str, root: Path, ref: str, step: str) -> str:
    """The key a template names for this checkout: {branch}, {os}, {arch}, {step}, {hash:<glob>}."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        if name == "branch":
            return re.sub(r"[^A-Za-z0-9._-]", "-", ref.removeprefix("refs/heads/"))
        if name == "os":
            return platform.system().lower()
        if name == "arch":
            return platform.machine().lower()
        if name == "step":
            return re.sub(r"[^A-Za-z0-9._-]", "-", step)
        return hash_files(root, name.removeprefix("hash:"))

    return PLACEHOLDER.sub(value, template)


def hash_files(root: Path, pattern: str) -> str:
    """sha256 over the regular files inside the work tree the glob matches (names and contents), as
    GitHub's hashFiles; a link leaving the tree, broken or looping counts as nothing, and no link is
    walked through (workers/tree_glob.py): the checkout is the fork's, its links may point anywhere."""
    if pattern.startswith("/") or ".." in pattern.split("/"):
        return "none"
    digest = hashlib.sha256()
    real_root = root.resolve()
    matched = False
    for relative in sorted(glob_tree(root, (pattern,)).leaves[pattern], key=lambda name: name.split("/")):
        try:
            real = (root / relative).resolve(strict=True)
            if not real.is_relative_to(real_root) or not real.is_file():
                continue
            content = real.read_bytes()
        except (OSError, RuntimeError):  # pathlib's RuntimeError: a symlink loop
            continue
        matched = True
        digest.update(relative.encode("utf-8", "surrogateescape") + b"\0")
        digest.update(content)
    return digest.hexdigest() if matched else "none"


def members(spec: CacheSpec, source: Path, home: Path) -> list[str]:
    """The cache's paths that exist, as tar names relative to the task directory (src/…, home/…)."""
    found = []
    for path in spec.paths:
        inside, base, top = (path[2:], home, "home") if path.startswith("~/") else (path, source, "src")
        candidate = base / inside
        if candidate.is_symlink() or candidate.exists():
            found.append(f"{top}/{inside.rstrip('/')}")
    return found


def unpack(wrap: Wrap, env: Mapping[str, str], archive: Path, base: Path, cancellation: Cancellation) -> None:
    """Extract `archive` under `base` (the task directory as the step sees it), in the sandbox."""
    line, start_env = wrap(["tar", "-x", "-f", "-", "-C", str(base)], env)
    with archive.open("rb") as stdin, tempfile.TemporaryFile() as said:
        group = ProcessGroup(
            line, archive.parent, start_env, stdout=subprocess.DEVNULL, stderr=said, stdin=stdin
        )
        outcome, code = group.wait(time.monotonic() + TAR_SECONDS, cancellation)
        _check_tar(outcome, code, said)


def pack(
    wrap: Wrap,
    env: Mapping[str, str],
    names: list[str],
    base: Path,
    archive: Path,
    limit: int,
    cancellation: Cancellation,
) -> int:
    """Pack `names` under `base` into `archive`, in the sandbox; its size. Stops at `limit` bytes."""
    line, start_env = wrap(["tar", "-c", "-f", "-", "-C", str(base), "--", *names], env)
    size = 0
    problem: list[str] = []  # the copier's: over the limit, or the worker's disk failed
    with archive.open("wb") as out, tempfile.TemporaryFile() as said:
        group = ProcessGroup(line, archive.parent, start_env, stdout=subprocess.PIPE, stderr=said)
        pipe = group.process.stdout
        assert pipe is not None

        def copy() -> None:  # a thread: the wait below must see a cancellation while tar writes
            nonlocal size
            try:
                while chunk := pipe.read(CHUNK):
                    size += len(chunk)
                    if size > limit:
                        problem.append(f"the cache is over the limit of {limit} bytes")
                        break
                    out.write(chunk)
                else:
                    return
            except OSError as exc:
                problem.append(f"the archive could not be written: {exc}")
            group.kill()  # tar would block on a pipe nobody reads

        copier = threading.Thread(target=copy, daemon=True)
        copier.start()
        outcome, code = group.wait(time.monotonic() + TAR_SECONDS, cancellation)
        copier.join(timeout=60)  # the group is dead: its pipe ends once the rest is read
        if copier.is_alive():
            raise CacheRefused("tar's output did not end after tar did")
        pipe.close()
        if problem:
            raise CacheRefused(problem[0])
        _check_tar(outcome, code, said)
    return size


def _check_tar(outcome: str, code: int | None, said: IO[bytes]) -> None:
    """CacheRefused unless tar exited 0: stopped with its task, out of time, or what it said."""
    if outcome == "timed_out":
        raise CacheRefused(f"tar ran longer than {TAR_SECONDS}s and was killed")
    if outcome == SHUTDOWN:
        raise CacheRefused("tar killed: the worker is shutting down")
    if outcome != "exited":
        raise CacheRefused("tar killed: the step was stopped")
    if code != 0:
        said.seek(0)
        text = said.read()[-2000:].decode("utf-8", "replace").strip()
        raise CacheRefused(text[-500:] or f"tar: {code}")


def restore(
    caches: CacheStore,
    scope: Scope,
    key: str,
    restore_keys: tuple[str, ...],
    archive: Path,
    say: Say,
    unpack_to: Callable[[Path], None],
    stop: Stop | None = None,
) -> Hit | None:
    """Find the cache (key, else restore keys) and unpack it; the hit, or None on a miss."""
    hit = caches.find(scope, key, restore_keys)
    if hit is None:
        say(
            f"[stepline] cache: no cache for key {key}"
            + (f" nor {', '.join(restore_keys)}*" if restore_keys else "")
        )
        return None
    caches.fetch(scope, hit, archive, stop)
    unpack_to(archive)
    how = "its key" if hit.exact else f"restore key (saved as {hit.key})"
    say(f"[stepline] cache: restored {hit.size} bytes by {how}")
    return hit
