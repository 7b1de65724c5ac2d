"""What `stepline run` takes from its environment, read in this one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class CliConfig:
    """The user's search path, where the cache goes by default, and the environment git runs in."""

    path: str  # where redis-server, git and bwrap are found, for us and for the run's processes
    cache_dir: Path  # snapshot repositories and the worker's mirrors (`--cache-dir` overrides it)
    # git runs as the user runs it (their identity, excludes, attributes) on their working copy
    git_environment: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CliConfig:
        environ = dict(os.environ if environ is None else environ)
        return cls(
            path=os.pathsep.join(os.get_exec_path(environ)),
            cache_dir=Path.home() / ".cache" / "stepline",
            git_environment=environ,
        )
