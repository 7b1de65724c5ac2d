"""Artifacts on the worker: collect a step's declared files safely and upload them; restore what a step needs.

Both run as the worker's user while no process of the step is alive (before its commands, after its
process group ended), so nothing moves under them; still every path is checked after resolving it: a
match that resolves outside the work tree (a symlink to /etc, to the mirror, to another task) or that
is no regular file is refused with a line in the step's log, and a restore never writes through a
symlink the checkout put in the way.
"""

from __future__ import annotations

import fnmatch
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from statemachines.artifacts import ArtifactStore, blob_key
from statemachines.blob_store import Stop
from statemachines.errors import BlobMissing, TransferStopped
from statemachines.step_outputs import artifact_pattern_problem, relative_pattern_problem
from workers.tree_glob import MAX_ENTRIES, glob_tree

Say = Callable[[str], None]  # a line into the step's log
MAX_FILES = 1000
MAX_MATCHES = 10_000  # files examined per pattern
MAX_REFUSALS_SAID = 20


@dataclass
class Collected:
    files: list[tuple[str, Path, int]] = field(default_factory=list)  # (path in the tree, real path, size)
    refused: list[str] = field(default_factory=list)


def collect(root: Path, patterns: tuple[str, ...], max_bytes: int, say: Say) -> Collected:
    """The regular files the globs name inside `root`, within `max_bytes` in all; refusals said in the log.

    The tree is walked without following links (workers/tree_glob.py): a symlink is judged by where it
    resolves, and a refusal names only the link, never what lies beyond it on the worker's machine."""
    found = Collected()
    real_root = root.resolve()
    chosen: dict[str, tuple[Path, int]] = {}

    def refuse(reason: str) -> None:
        found.refused.append(reason)
        if len(found.refused) <= MAX_REFUSALS_SAID:
            say(f"[stepline] artifact refused: {reason}")

    wanted = []
    for pattern in patterns:
        if problem := artifact_pattern_problem(pattern):
            refuse(problem)
        else:
            wanted.append(pattern)
    matched = glob_tree(root, tuple(wanted))
    if matched.truncated:
        say(
            f"[stepline] artifacts: the work tree has over {MAX_ENTRIES} entries; only the first were looked at"
        )
    for pattern in wanted:
        names = matched.leaves[pattern]
        if not names:
            say(f"[stepline] artifacts: nothing matches {pattern!r}")
        for relative in names[:MAX_MATCHES]:
            path = root / relative
            if path.is_symlink():
                try:
                    real = path.resolve(strict=True)
                except (OSError, RuntimeError):  # dangling, or a loop (pathlib's RuntimeError)
                    refuse(f"{relative} is a broken symlink")
                    continue
                if not real.is_relative_to(real_root):
                    refuse(f"{relative} is a symlink leaving the work tree")
                    continue
            else:
                real = path
            try:
                info = real.stat()
            except OSError as exc:
                refuse(f"{relative} cannot be read ({exc.strerror})")
                continue
            if not stat.S_ISREG(info.st_mode):
                refuse(f"{relative} is not a regular file")
                continue
            chosen[relative] = (real, info.st_size)
    if len(found.refused) > MAX_REFUSALS_SAID:
        say(f"[stepline] artifacts: {len(found.refused) - MAX_REFUSALS_SAID} more refused")
    total = 0
    for relative, (real, size) in sorted(chosen.items()):
        if total + size > max_bytes or len(found.files) >= MAX_FILES:
            refuse(
                f"{relative} ({size} bytes) is over the step's limit of {max_bytes} bytes, {MAX_FILES} files"
            )
            continue
        total += size
        found.files.append((relative, real, size))
    return found


def upload(
    artifacts: ArtifactStore,
    found: Collected,
    run_id: str,
    step: str,
    attempt: int,
    trusted: bool,
    stop: Stop | None = None,
) -> dict[str, Any]:
    """Store the files as blobs and list them in the run's index; the entry recorded.

    `stop` is asked between files and chunks: TransferStopped then, and nothing is listed."""
    files = []
    for relative, real, size in found.files:
        key = blob_key(run_id, step, relative, trusted)
        _check(stop, key)
        artifacts.store.put_file(key, real, stop)
        files.append({"path": relative, "size": size, "key": key})
    # the reasons the log said, and how many in all: a step's tree can hold a refusal per entry it has
    refused = found.refused[:MAX_REFUSALS_SAID]
    entry = {"trusted": trusted, "attempt": attempt, "files": files, "refused": refused}
    entry["refused_count"] = len(found.refused)
    artifacts.record(run_id, step, entry)
    return entry


def restore(
    artifacts: ArtifactStore,
    run_id: str,
    needs: tuple[str, ...],
    trusted: bool,
    root: Path,
    say: Say,
    stop: Stop | None = None,
) -> int:
    """Put the artifacts of the needed steps of this run into the work tree; how many files.

    `stop` is asked between files and chunks: TransferStopped then."""
    listing = artifacts.listing(run_id)
    placed = 0
    for pattern in needs:
        steps = [step for step in listing if fnmatch.fnmatchcase(step, pattern)]
        if not steps:
            say(f"[stepline] needs {pattern}: no step of this run kept artifacts by that name")
        for step in steps:
            entry = listing[step]
            if trusted and entry.get("trusted") is not True:
                say(f"[stepline] needs {step}: its artifacts come from an untrusted run; not handed over")
                continue
            here = 0
            for item in entry.get("files") or []:
                target = _safe_target(root, str(item["path"]))
                if target is None:
                    say(f"[stepline] needs {step}: {item['path']} not placed: the work tree has a link there")
                    continue
                _check(stop, str(item["key"]))
                try:
                    artifacts.store.get_file(str(item["key"]), target, stop)
                except BlobMissing:
                    say(f"[stepline] needs {step}: {item['path']} is no longer stored (retention)")
                    continue
                here += 1
            placed += here
            say(f"[stepline] needs {step}: {here} artifact(s) placed in the work tree")
    return placed


def _check(stop: Stop | None, key: str) -> None:
    if stop is not None and stop():  # S3 asks only once bytes moved: an empty file would not
        raise TransferStopped(key, "stopped")


def _safe_target(root: Path, relative: str) -> Path | None:
    """Where a file may be written under `root` without following a link; parents made; None: refused."""
    if relative_pattern_problem(relative, "path") or relative.startswith("~"):
        return None
    here = root
    for part in relative.split("/")[:-1]:
        here = here / part
        if here.is_symlink() or (here.exists() and not here.is_dir()):
            return None
        here.mkdir(exist_ok=True)
    target = here / relative.split("/")[-1]
    if target.is_symlink() or (target.exists() and not target.is_file()):
        return None
    target.unlink(missing_ok=True)
    return target
