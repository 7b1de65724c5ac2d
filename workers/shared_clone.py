"""A task's work tree that borrows a mirror's objects, written without `git clone`.

`git clone --shared --no-checkout` then `checkout` and `remote set-url` were three git processes
on every warm checkout; the repository they leave is a handful of small files, which this writes
directly, so one `git checkout` remains. The result is what that clone left: an unborn HEAD that
the checkout detaches at the commit, the mirror's objects as alternates (sandbox.prepare points
them at the mirror's inside path), `origin` at the clone URL, no refs of the mirror's.
"""

from __future__ import annotations

from pathlib import Path

CONFIG = """[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = false
\tlogallrefupdates = true
[remote "origin"]
\turl = {url}
\tfetch = +refs/heads/*:refs/remotes/origin/*
"""


def config_value(text: str) -> str:
    """`text` as a quoted git config value (a URL may hold `#`, `;` or quotes)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_shared_clone(mirror: Path, dest: Path, clone_url: str) -> None:
    """Make `dest` an empty repository whose objects come from `mirror` (any earlier one replaced)."""
    git_dir = dest / ".git"
    for sub in ("objects/info", "objects/pack", "refs/heads", "refs/tags"):
        (git_dir / sub).mkdir(parents=True, exist_ok=True)
    (git_dir / "objects" / "info" / "alternates").write_text(f"{(mirror / 'objects').resolve()}\n")
    (git_dir / "config").write_text(CONFIG.format(url=config_value(clone_url)))
    # unborn, as a clone of a mirror without branches leaves it: the checkout starts from nothing
    (git_dir / "HEAD").write_text("ref: refs/heads/main\n")
