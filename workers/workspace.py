"""Task directories under WORKER_DIR/tasks: one per task, removed afterwards, stale ones swept at start."""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.process_group import kill_orphans

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskPlaces:
    """Where one task lives on disk: its checkout, its HOME and TMPDIR, the event file."""

    root: Path

    @property
    def source(self) -> Path:
        return self.root / "src"

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def event_file(self) -> Path:
        return self.root / "event.json"

    @property
    def groups_file(self) -> Path:
        return self.root / "process-groups"

    def record_group(self, pgid: int, marker: str) -> None:
        """Note a step's process group, so a worker that finds this task orphaned can kill it."""
        with self.groups_file.open("a") as groups:
            groups.write(f"{pgid} {marker}\n")


class Workspace:
    """This worker process's task directories: `<WORKER_DIR>/tasks/<pid>/<task>`."""

    def __init__(self, work_dir: Path) -> None:
        self.tasks = work_dir / "tasks"
        self.mine = self.tasks / str(os.getpid())

    def create(self, run: Mapping[str, Any]) -> TaskPlaces:
        """A fresh, empty task directory with its HOME, TMPDIR and the event file (the execution input)."""
        places = TaskPlaces(self.mine / uuid.uuid4().hex[:16])
        for directory in (places.home, places.tmp):
            directory.mkdir(parents=True, mode=0o700)
        places.event_file.write_text(json.dumps(run, indent=2))
        return places

    def remove(self, places: TaskPlaces) -> None:
        remove_tree(places.root)

    def sweep(self) -> int:
        """Clear up after worker processes that are gone (a crash): kill their steps, remove their trees."""
        removed = 0
        for directory in self.tasks.glob("*") if self.tasks.is_dir() else []:
            if directory.name.isdigit() and not _alive(int(directory.name)):
                for groups in directory.glob("*/process-groups"):
                    _kill_recorded(groups)
                remove_tree(directory)
                removed += 1
        return removed


def remove_tree(path: Path) -> None:
    """rm -rf that also removes read-only trees (Go's module cache makes its files read-only)."""

    def make_writable(function: Any, name: str, _exc: Any) -> None:
        try:
            os.chmod(os.path.dirname(name), stat.S_IRWXU)
            os.chmod(name, stat.S_IRWXU)
            function(name)
        except OSError as exc:
            log.warning("cannot remove %s: %s", name, exc)

    if path.exists():
        shutil.rmtree(path, onerror=make_writable)


def _kill_recorded(groups: Path) -> None:
    for line in groups.read_text().splitlines():
        pgid, _, marker = line.partition(" ")
        if pgid.isdigit() and marker:
            killed = kill_orphans(int(pgid), marker)
            if killed:
                log.info("killed %s orphaned processes of a lost worker's step (%s)", killed, marker)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
