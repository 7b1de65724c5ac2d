"""How the worker runs git: which clone URLs it accepts, an isolated config, and credentials never in argv."""

from __future__ import annotations

import base64
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

from workers.errors import CheckoutFailed
from workers.process_group import Cancellation, ProcessGroup

log = logging.getLogger(__name__)

TOKEN_USER = "x-access-token"  # noqa: S105 - a user name, not a secret: what GitHub expects as the user name beside an app or personal token


class GitAccess:
    """Runs git with a clean environment; the token reaches git only through GIT_CONFIG_* variables.

    The token is set as an `http.<url>.extraHeader` scoped to the configured hosts, so it never
    appears in a URL, in argv (the process list), in a log or in a step's environment.
    """

    def __init__(
        self,
        home: Path,
        token: str = "",
        token_hosts: Sequence[str] = ("github.com",),
        allow_file_urls: bool = False,
        path: str = "/usr/local/bin:/usr/bin:/bin",
    ) -> None:
        self.home = home
        self.token = token
        self.token_hosts = tuple(token_hosts)
        self.allow_file_urls = allow_file_urls
        self.path = path
        home.mkdir(parents=True, exist_ok=True)

    def check_url(self, url: str) -> None:
        """Raise CheckoutFailed unless `url` is one git may fetch: https (file:// only in development)."""
        parts = urlsplit(url)
        if url.startswith("-") or any(ord(c) < 32 for c in url):
            raise CheckoutFailed("the clone URL is not valid", f"clone URL {url!r} is not valid")
        if parts.scheme == "https" and parts.hostname and "@" not in parts.netloc:
            return
        if parts.scheme == "file" and self.allow_file_urls and parts.path.startswith("/"):
            return
        why = "credentials in the URL" if "@" in parts.netloc else f"scheme {parts.scheme or 'none'!r}"
        raise CheckoutFailed(
            "the clone URL is not allowed",
            f"clone URL {url!r} is not allowed ({why}): only https:// URLs without credentials"
            + ("" if self.allow_file_urls else " (file:// needs STEPLINE_ALLOW_LOCAL_REPOSITORIES)"),
        )

    def environment(self, url: str | None = None, local: bool = False) -> dict[str, str]:
        """git's whole environment: nothing inherited, no prompts, only the allowed transports.

        `local`: the command reads our own mirror by path (a clone from it), never the network.
        """
        env = {
            "PATH": self.path,
            "HOME": str(self.home),
            "LC_ALL": "C",
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_TERMINAL_PROMPT": "0",
            "GIT_ALLOW_PROTOCOL": "file" if local else ("https:file" if self.allow_file_urls else "https"),
        }
        # gc runs inside the fetch that triggers it, so under the mirror's lock, never detached
        config = [("gc.autoDetach", "false"), ("advice.detachedHead", "false"), ("protocol.version", "2")]
        if self.allow_file_urls or local:
            config.append(("protocol.file.allow", "always"))
        host = (urlsplit(url).hostname or "").lower() if url else ""
        if self.token and url and url.startswith("https://") and host in self.token_hosts:
            basic = base64.b64encode(f"{TOKEN_USER}:{self.token}".encode()).decode()
            config.append((f"http.https://{host}/.extraHeader", f"Authorization: Basic {basic}"))
        env["GIT_CONFIG_COUNT"] = str(len(config))
        for index, (key, value) in enumerate(config):
            env[f"GIT_CONFIG_KEY_{index}"] = key
            env[f"GIT_CONFIG_VALUE_{index}"] = value
        return env

    def run(
        self,
        args: list[str],
        cwd: Path,
        cancellation: Cancellation | None = None,
        deadline: float | None = None,
        url: str | None = None,
        git_dir: Path | None = None,
        local: bool = False,
    ) -> str:
        """Run `git args…` (on `git_dir`, never a repository found above `cwd`); return stdout.

        Raises CheckoutFailed with git's last error lines.
        """
        prefix = ["git", f"--git-dir={git_dir}"] if git_dir else ["git"]
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            group = ProcessGroup([*prefix, *args], cwd, self.environment(url, local), stdout=out, stderr=err)
            outcome, code = group.wait(deadline, cancellation)
            out.seek(0)
            err.seek(0)
            stdout = out.read(1 << 20).decode("utf-8", "replace")
            stderr = err.read(1 << 16).decode("utf-8", "replace").strip()
        if outcome == "exited" and code == 0:
            return stdout
        what = f"git {args[0]}"
        if outcome == "timed_out":
            raise CheckoutFailed(f"{what} timed out", f"{what} ran out of time ({self._redact(stderr)})")
        if outcome != "exited":
            raise CheckoutFailed(f"{what} was cancelled", f"{what} was cancelled ({outcome})")
        tail = "\n".join(self._redact(stderr).splitlines()[-8:])
        raise CheckoutFailed(f"{what} failed (exit {code})", f"{what} failed with exit code {code}:\n{tail}")

    def _redact(self, text: str) -> str:
        return text.replace(self.token, "***") if self.token else text
