"""What `stepline run` takes from its environment, read in this one place."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

# What points git at a repository, an index or objects (git's own "local_repo_env" list, config aside).
# Run from a git hook (pre-push, say), GIT_DIR and GIT_INDEX_FILE would steer every git command to
# the hook's repository and index; we always name the repository by its path instead.
REPOSITORY_VARIABLES = frozenset(
    {
        "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_COMMON_DIR", "GIT_PREFIX", "GIT_IMPLICIT_WORK_TREE", "GIT_SHALLOW_FILE", "GIT_GRAFT_FILE",
    }
)  # fmt: skip


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
            git_environment={k: v for k, v in environ.items() if k not in REPOSITORY_VARIABLES},
        )


def forget_repository_variables() -> None:
    """Drop REPOSITORY_VARIABLES from this process's environment, for the git commands of code we call.

    The server's pipeline reader (service/pipeline_source.py) runs git with the process's environment.
    """
    for name in REPOSITORY_VARIABLES:
        os.environ.pop(name, None)
