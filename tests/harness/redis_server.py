"""A private redis-server for the tests: free port, temp dir, append-only, killable and restartable."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.harness.ports import free_port, wait_for_port


class RedisServer:
    """One redis-server process; `kill()` is SIGKILL and `restart()` reuses the same data dir and port."""

    def __init__(self, data_dir: Path, *extra_args: str, port: int | None = None) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError(
                "redis-server is not installed: run `make test` (it installs it) or apt-get install it"
            )
        self.data_dir = data_dir
        self.port = port or free_port()
        self.extra_args = list(extra_args)  # e.g. "--appendfsync", "always" for fault tests
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = ["redis-server", "--bind", "127.0.0.1", "--port", str(self.port), "--dir", str(self.data_dir)]
        args += ["--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--loglevel", "warning"]
        args += self.extra_args
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_port(self.port)
        client = self.client()
        for _ in range(200):  # the port opens before the AOF is loaded
            try:
                client.ping()
                break
            except redis.BusyLoadingError:
                time.sleep(0.02)
        client.close()
        return self

    def client(self, **kwargs) -> redis.Redis:
        return redis.Redis.from_url(self.url, **kwargs)

    def flush(self) -> None:
        client = self.client()
        client.flushall()
        client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would: whatever is not in the append-only file is lost."""
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()
