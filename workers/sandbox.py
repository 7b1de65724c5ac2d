"""The sandbox a step's commands run in: bubblewrap namespaces, a user that is not the worker's, only its own files.

Inside, a step sees the system read-only (/usr, /etc and the top-level links into /usr), its own
work tree, HOME and /tmp (writable, under /stepline), the event file and its repository's mirror
(read-only, for the objects its shared clone borrows), a private /proc of its own PID namespace and a
minimal /dev. It does not see the worker, other tasks, other mirrors, WORKER_DIR, the project's files
or the secrets file: those are simply not mounted, and any of them that lies under a mounted system
directory is covered. An untrusted step gets a network namespace of its own with only a loopback
device: no route to the machine's Redis, engine or web process, nor anywhere else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from workers.errors import SandboxUnavailable
from workers.mount_namespace import root_is_a_mount_point

BUBBLEWRAP = "bubblewrap"
OFF = "off"
MODES = (BUBBLEWRAP, OFF)
INSIDE = Path("/stepline")  # where a task's own directories appear to its step
SYSTEM_DIRS = ("/usr", "/etc")  # read-only; everything else of the host is absent
SYSTEM_LINKS = (
    "/bin",
    "/sbin",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
)  # links into /usr on merged-usr systems
CHECK_SECONDS = 20
# What the dynamic loader and glibc read from the environment (glibc's "unsecure" variables, but TMPDIR):
# bwrap and setpriv run as root, so these never reach them; the step gets them from `env`, unprivileged.
LOADER_VARIABLES = frozenset(
    {
        "GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH",
        "MALLOC_TRACE", "NIS_PATH", "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TZDIR",
    }
)  # fmt: skip


def is_loader_variable(name: str) -> bool:
    return name.startswith(("LD_", "MALLOC_")) or name in LOADER_VARIABLES


@dataclass(frozen=True)
class StepPaths:
    """A task's directories as its step sees them (HOME, TMPDIR, the work tree, the event file)."""

    source: Path
    home: Path
    tmp: Path
    event_file: Path


class Sandbox:
    """Wraps a step's command line in bubblewrap (or not, when the mode is `off`)."""

    def __init__(
        self, mode: str, uid: int, gid: int, hidden: Iterable[Path] = (), max_processes: int = 0
    ) -> None:
        self.mode = mode
        self.uid = uid
        self.gid = gid
        # RLIMIT_NPROC of the step user (all its steps at once): a fork bomb stops there, not at the machine
        self.max_processes = max_processes
        # a worker that is root drops to the step user inside the sandbox; one that is not runs the
        # step as itself (a user namespace maps it), isolated by the namespaces alone
        self.switch_user = os.geteuid() == 0
        self.hidden = tuple(Path(path).absolute() for path in hidden)
        # found once, by the worker's own PATH: a step's environment (its PATH) never picks what runs as root
        self.bwrap, self.setpriv, self.env, self.prlimit = (
            shutil.which(name) or name for name in ("bwrap", "setpriv", "env", "prlimit")
        )
        # a worker in a chroot: bwrap needs `/` to be a mount point, so each sandbox first gets one
        self.prefix: list[str] = []
        if self.switch_user and not root_is_a_mount_point():
            self.prefix = [sys.executable, "-I", str(Path(__file__).with_name("mount_namespace.py"))]

    @property
    def enabled(self) -> bool:
        return self.mode != OFF

    def paths(self, source: Path, home: Path, tmp: Path, event_file: Path) -> StepPaths:
        if not self.enabled:
            return StepPaths(source, home, tmp, event_file)
        return StepPaths(INSIDE / "src", INSIDE / "home", Path("/tmp"), INSIDE / "event.json")  # noqa: S108

    def prepare(self, writable: Sequence[Path], mirror: Path | None) -> None:
        """Hand the task's writable directories to the step user; point the clone at the mirror's inside path."""
        if not self.enabled:
            return
        if mirror is not None:
            alternates = writable[0] / ".git" / "objects" / "info" / "alternates"
            if alternates.exists():
                alternates.write_text(f"{INSIDE / 'mirror' / 'objects'}\n")
        if not self.switch_user:
            return
        for directory in writable:
            _chown_tree(directory, self.uid, self.gid)

    def wrap(
        self,
        args: Sequence[str],
        source: Path,
        home: Path,
        tmp: Path,
        event_file: Path,
        mirror: Path | None,
        network: bool,
        env: Mapping[str, str] | None = None,
    ) -> tuple[list[str], dict[str, str]]:
        """The command line that runs `args` with `env` in the sandbox of one task, and the environment to
        start it with (`args` and `env` themselves when off)."""
        env = dict(env or {})
        if not self.enabled:
            return list(args), env
        outside = {name: value for name, value in env.items() if not is_loader_variable(name)}
        loader = [f"{name}={value}" for name, value in env.items() if is_loader_variable(name)]
        line = [
            *self.prefix,
            self.bwrap,
            "--die-with-parent",
            "--new-session",
            "--unshare-ipc",
            "--unshare-pid",
        ]
        line += ["--unshare-uts", "--hostname", "stepline", "--unshare-cgroup-try"]
        if not network:
            line.append("--unshare-net")
        if not self.switch_user:
            line += ["--unshare-user", "--uid", str(os.geteuid()), "--gid", str(os.getegid())]
        line += _system_mounts()
        line += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/dev/shm"]  # noqa: S108 - inside the sandbox
        line += ["--perms", "0755", "--dir", str(INSIDE)]
        line += ["--bind", str(source), str(INSIDE / "src"), "--bind", str(home), str(INSIDE / "home")]
        line += ["--bind", str(tmp), "/tmp", "--ro-bind", str(event_file), str(INSIDE / "event.json")]  # noqa: S108
        if mirror is not None:
            line += ["--ro-bind", str(mirror), str(INSIDE / "mirror")]
        line += self._covers()
        line += ["--chdir", str(INSIDE / "src"), "--"]
        if self.switch_user:
            # limits set while still root, enforced once setpriv has dropped the capabilities; no core
            # dumps: a crashing step leaves no copy of its memory (secrets included) on disk
            limits = [f"--nproc={self.max_processes}"] if self.max_processes else []
            line += [self.prlimit, *limits, "--core=0", "--"]
            line += [self.setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups"]
            line += ["--inh-caps=-all", "--bounding-set=-all", "--"]
        if loader:
            line += [self.env, *loader]
        return line + list(args), outside

    def _covers(self) -> list[str]:
        """Cover what must stay unseen but lies under a mounted system directory (a project in /usr/local)."""
        covers: list[str] = []
        for path in self.hidden:
            if not any(path == Path(d) or Path(d) in path.parents for d in SYSTEM_DIRS) or not path.exists():
                continue
            covers += ["--tmpfs", str(path)] if path.is_dir() else ["--ro-bind", "/dev/null", str(path)]
        return covers

    def check(self, scratch: Path) -> None:
        """Build a sandbox once, as a step would get it; raise SandboxUnavailable with the reason if it fails."""
        if not self.enabled:
            return
        if not os.path.isabs(self.bwrap):
            raise SandboxUnavailable("bwrap is not installed")
        if self.switch_user and not os.path.isabs(self.setpriv):
            raise SandboxUnavailable("setpriv (util-linux) is not installed")
        root = Path(tempfile.mkdtemp(prefix="sandbox-check-", dir=scratch))
        source, home, tmp = (root / name for name in ("src", "home", "tmp"))
        for directory in (source, home, tmp):
            directory.mkdir()
        (root / "event.json").write_text("{}")
        try:
            self.prepare([source, home, tmp], None)
            uid = self.uid if self.switch_user else os.geteuid()
            probe = f'test -w . && test -w /tmp && test "$(id -u)" = {uid}'
            line, env = self.wrap(
                ["sh", "-c", probe],
                source,
                home,
                tmp,
                root / "event.json",
                None,
                False,
                {"PATH": "/usr/bin:/bin"},
            )
            done = subprocess.run(line, capture_output=True, timeout=CHECK_SECONDS, check=False, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise SandboxUnavailable(str(exc)) from None
        finally:
            shutil.rmtree(root, ignore_errors=True)
        if done.returncode != 0:
            said = done.stderr.decode("utf-8", "replace").strip() or f"exit status {done.returncode}"
            raise SandboxUnavailable(said[:500])


def _system_mounts() -> list[str]:
    mounts: list[str] = []
    for directory in SYSTEM_DIRS:
        mounts += ["--ro-bind", directory, directory]
    for link in SYSTEM_LINKS:
        if os.path.islink(link):
            mounts += ["--symlink", os.readlink(link), link]
        elif os.path.isdir(link):
            mounts += ["--ro-bind", link, link]
    return mounts


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    os.lchown(top, uid, gid)
    for base, dirs, files in os.walk(top):
        for name in dirs + files:
            os.lchown(os.path.join(base, name), uid, gid)
