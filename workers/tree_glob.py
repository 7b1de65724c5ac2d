"""Globs over a work tree that never leave it: the tree is walked without following any symlink.

`pathlib.Path.glob` follows a symlinked directory that a `*` matches, so `link/**/x` with `link -> /`
walked the whole machine as the worker's user, and every name it met outside came back as a match
(named in the step's log). Here a symlink is a leaf: it is matched by its own name and its target is
for the caller to judge. A pattern names paths relative to the tree, `*`, `?` and `[…]` within one
name (dot-files too, as pathlib's), `**` for any number of whole names; a matched directory stands
for every entry under it.
"""

from __future__ import annotations

import fnmatch
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

MAX_ENTRIES = 200_000  # entries (files, links, directories) looked at per walk: a million tiny files must not hold a slot for minutes


@dataclass
class Matches:
    """Per pattern, the leaves (files, symlinks, other non-directories) it names, relative and sorted."""

    leaves: dict[str, list[str]] = field(default_factory=dict)
    truncated: bool = False  # the tree had more than MAX_ENTRIES entries; the rest was not looked at


def segments(pattern: str) -> tuple[str, ...]:
    return tuple(part for part in pattern.split("/") if part not in ("", "."))


def matches(parts: tuple[str, ...], pattern: tuple[str, ...]) -> bool:
    """Whether the names `parts` match the pattern's names (`**`: zero or more whole names)."""

    @functools.cache
    def at(i: int, j: int) -> bool:
        if j == len(pattern):
            return i == len(parts)
        if pattern[j] == "**":
            return at(i, j + 1) or (i < len(parts) and at(i + 1, j))
        return i < len(parts) and fnmatch.fnmatchcase(parts[i], pattern[j]) and at(i + 1, j + 1)

    return at(0, 0)


def glob_tree(root: Path, patterns: tuple[str, ...], limit: int = MAX_ENTRIES) -> Matches:
    """The leaves each pattern names: itself, or one of its parent directories, matches the pattern.

    No link is followed: a symlink to a directory is a leaf, never walked into."""
    compiled = {pattern: segments(pattern) for pattern in patterns}
    found = Matches({pattern: [] for pattern in patterns})
    inside: dict[tuple[str, ...], frozenset[str]] = {(): frozenset()}  # directory -> patterns naming it
    seen = 0
    for directory, dirs, files in os.walk(root, followlinks=False):
        base = Path(directory).relative_to(root).parts
        named = inside.pop(base, frozenset())
        linked = [d for d in dirs if os.path.islink(os.path.join(directory, d))]
        dirs[:] = sorted(d for d in dirs if d not in linked)
        seen += len(dirs)  # a million empty directories cost a walk as much as a million files
        if seen > limit:
            found.truncated = True
            return found
        for name in dirs:
            parts = (*base, name)
            inside[parts] = named | {
                p for p, names in compiled.items() if p not in named and matches(parts, names)
            }
        for name in sorted(files + linked):
            seen += 1
            if seen > limit:
                found.truncated = True
                return found
            parts = (*base, name)
            for pattern, names in compiled.items():
                if pattern in named or matches(parts, names):
                    found.leaves[pattern].append("/".join(parts))
    return found
