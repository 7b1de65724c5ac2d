"""Start Stepline's processes (as the Procfile does) as subprocesses on free ports, and stop or kill them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests

from tests.harness.ports import free_port, wait_for_port

PROJECT = Path(__file__).resolve().parents[2]


class ManagedProcess:
    """One child process with its output in a log file; `kill()` is SIGKILL to its whole process group."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.args = args
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> ManagedProcess:
        full_env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        log = open(self.log_path, "ab")  # closed below: the child keeps its own descriptor
        self.process = subprocess.Popen(
            self.args, cwd=PROJECT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        return self

    def wait_http(self, url: str, timeout: float = 20.0) -> ManagedProcess:
        """Wait until `url` answers (any HTTP status); fail with the process's log if it died first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                requests.get(url, timeout=1)
                return self
            except requests.RequestException:
                time.sleep(0.05)
        raise TimeoutError(f"{self.name} did not answer {url} in {timeout}s:\n{self.log()}")

    def wait_port(self, port: int, timeout: float = 20.0) -> ManagedProcess:
        wait_for_port(port, timeout)
        return self

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def signal(self, sig: int) -> None:
        if self.process is not None and self.process.poll() is None:
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        """SIGKILL the process and its children at once, as a crash or OOM would."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL if it does not exit in `timeout` seconds; returns the exit code."""
        if self.process is None:
            return None
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
        return self.process.returncode


def python_module(module: str, *args: str) -> list[str]:
    """The command line that runs `python -m module` with this interpreter (the project's virtualenv)."""
    return [sys.executable, "-m", module, *args]


def start_engine(start: Callable[..., ManagedProcess], redis_url: str, **env: str) -> str:
    """`python -m statemachines.engine` on a free port over `redis_url` (via the `processes` fixture); its URL."""
    port = free_port()
    settings = {"ENGINE_PORT": str(port), "REDIS_URL": redis_url, "LOG_LEVEL": "WARNING", **env}
    url = f"http://127.0.0.1:{port}"
    start("engine", python_module("statemachines.engine"), settings).wait_http(url + "/")
    return url


def start_web(start: Callable[..., ManagedProcess], redis_url: str, **env: str) -> str:
    """`python -m service` (gunicorn, one worker) on a free port, answering /healthz; its URL."""
    port = free_port()
    settings = {"PORT": str(port), "REDIS_URL": redis_url, "GITHUB_WEBHOOK_SECRET": "test-webhook-secret"}
    url = f"http://127.0.0.1:{port}"
    start("web", python_module("service"), {**settings, "WEB_CONCURRENCY": "1", **env}).wait_http(
        url + "/healthz"
    )
    return url
