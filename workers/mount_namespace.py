"""Start a command in a mount namespace of its own whose `/` is a mount point: `python -m workers.mount_namespace CMD…`.

bubblewrap first makes `/` a slave mount, which fails ("Failed to make / slave") where `/` is not a
mount point: a worker in a chroot (build machines made with debootstrap are). Only then does the
sandbox put this in front of bwrap: in a fresh single-threaded process (unshare(2) refuses a
threaded one), a new mount namespace binds `/` onto an empty directory and chroots into it, so `/`
is a mount point with every path as before; the namespace, and the mount, end with the command.
(Binding `/` onto itself would not do: a process's root stays under a mount made on top of it.)
Where the chroot's directory lies on a shared mount of the host, that bind would propagate to the
host: keep such a chroot's parent mount private (`mount --make-rprivate`).
"""

from __future__ import annotations

import ctypes
import os
import sys
import tempfile
from pathlib import Path

CLONE_NEWNS = 0x00020000
MS_REC = 0x4000
MS_BIND = 0x1000
MS_PRIVATE = 1 << 18


def root_is_a_mount_point() -> bool:
    """Whether `/` (as this process sees it) is a mount point, read off /proc/self/mountinfo."""
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return True  # cannot tell: let bubblewrap say what is wrong
    return any(line.split()[4] == "/" for line in lines if len(line.split()) > 4)


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m workers.mount_namespace COMMAND [ARG...]", file=sys.stderr)
        return 2
    libc = ctypes.CDLL(None, use_errno=True)
    cwd = os.getcwd()
    if libc.unshare(CLONE_NEWNS) != 0:
        return _fail("unshare the mount namespace")
    for line in Path("/proc/self/mountinfo").read_text().splitlines():  # what can be made private, is
        libc.mount(None, line.split()[4].encode(), None, MS_REC | MS_PRIVATE, None)
    # one directory for every command: each binds onto it in a namespace of its own
    target = os.path.join(tempfile.gettempdir(), "stepline-root")
    os.makedirs(target, mode=0o700, exist_ok=True)
    if libc.mount(b"/", target.encode(), None, MS_BIND | MS_REC, None) != 0:
        return _fail("bind / to a mount point")
    os.chroot(target)
    os.chdir(cwd)
    os.execvp(argv[0], argv)  # noqa: S606 - the command line is the caller's, as given
    return 1  # not reached


def _fail(what: str) -> int:
    print(f"mount namespace: cannot {what}: {os.strerror(ctypes.get_errno())}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
