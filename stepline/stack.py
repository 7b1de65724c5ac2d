"""The private stack of one local run: redis-server, the engine and a worker, each in its own process group.

Nothing of it is shared or left behind: Redis listens on a free loopback port with a password made
for this run (a trusted step has the machine's network), keeps nothing on disk, the engine answers
on a free loopback port and only calls signed with a key made for this run, and each process gets an environment built here
(never the user's: no WORKER_SECRETS_FILE, no GitHub token, no AWS profile). `stop()` ends them
worker first (it fails its running steps and kills their sandboxes), then the engine, then Redis:
SIGTERM to each process group, SIGKILL to what is left after a grace period. Should `stepline run`
itself be killed, each process gets SIGTERM from the kernel (PR_SET_PDEATHSIG): Redis and the
engine end at once, the worker once it has given up reporting its cancelled steps (about 40 s).
Processes are started before the command starts any thread, as `preexec_fn` needs.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from stepline.errors import StackFailed

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STOP_SECONDS = {"worker": 15.0, "engine": 5.0, "redis-server": 5.0}
LOG_TAIL_LINES = 20
PR_SET_PDEATHSIG = 1  # linux/prctl.h
# what boto3 would otherwise read from the user's home: profiles, credentials, instance metadata
NO_AWS_PROFILE = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    """A loopback port nothing listens on now (the engine fails clearly in the rare race for it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LocalStack:
    """Starts and stops the run's processes; their output goes to log files in `root`."""

    def __init__(self, root: Path, path: str) -> None:
        self.root = root
        self.path = path  # PATH for the processes: where redis-server, git and bwrap are found
        self.redis_port = free_port()
        self.redis_password = secrets.token_hex(32)
        self.redis_url = f"redis://:{self.redis_password}@127.0.0.1:{self.redis_port}/0"
        self.engine_port = free_port()
        self.engine_url = f"http://127.0.0.1:{self.engine_port}"
        self.access_key = ("SL" + secrets.token_hex(9).upper(), secrets.token_hex(20))
        self.region = "us-east-1"
        self.blob_dir = root / "blobs"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def start_redis(self) -> None:
        server = shutil.which("redis-server", path=self.path)
        if server is None:
            raise StackFailed("redis-server", "it is not installed (`make run` installs it)")
        # the password goes in on stdin, never in argv (every user of the machine can read a command line)
        args = [server, "-", "--bind", "127.0.0.1", "--port", str(self.redis_port), "--dir", str(self.root)]
        args += ["--save", "", "--appendonly", "no", "--loglevel", "warning"]
        self._start("redis-server", args, {"PATH": self.path}, stdin=f"requirepass {self.redis_password}\n")

    def wait_redis(self, timeout: float = 10.0) -> None:
        """Until Redis answers an authenticated PING."""
        hello = f"AUTH {self.redis_password}\r\nPING\r\n".encode()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive("redis-server")
            try:
                with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1) as sock:
                    sock.sendall(hello)
                    answer = b""
                    while b"\r\n" not in answer.partition(b"\r\n")[2] and (chunk := sock.recv(64)):
                        answer += chunk  # "+OK" then "+PONG", or -LOADING while it starts
                    if answer.endswith(b"+PONG\r\n"):
                        return
            except OSError:
                pass
            time.sleep(0.005)
        raise StackFailed("redis-server", f"no answer on port {self.redis_port} in {timeout:.0f}s")

    def start_engine(self) -> None:
        key_id, secret = self.access_key
        settings = {
            "ENGINE_HOST": "127.0.0.1",
            "ENGINE_PORT": str(self.engine_port),
            "ENGINE_ACCESS_KEYS": f"{key_id}:{secret}",
            "ENGINE_ID": f"stepline-run-{os.getpid()}",
            "REDIS_URL": self.redis_url,
            "AWS_REGION": self.region,
            "LOG_LEVEL": "WARNING",
        }
        self._start("engine", self._python("statemachines.engine"), self._python_env(settings))

    def wait_engine(self, timeout: float = 30.0) -> None:
        """Until the engine accepts connections on its port."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive("engine")
            try:
                with socket.create_connection(("127.0.0.1", self.engine_port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.01)
        raise StackFailed("engine", f"nothing listens on port {self.engine_port} after {timeout:.0f}s")

    def start_worker(self, pools: list[str], work_dir: Path, slots: int) -> None:
        """`python -m workers` as the server runs it: bubblewrap, its step user, file:// clones allowed."""
        if shutil.which("bwrap", path=self.path) is None:  # said here, not as the worker's settings problem
            raise StackFailed(
                "worker",
                "bubblewrap, the sandbox every step runs in, is not installed "
                "(`sudo apt-get install bubblewrap`; `make run` installs it)",
            )
        key_id, secret = self.access_key
        settings = {
            **self.client_settings(),
            "AWS_ACCESS_KEY_ID": key_id,
            "AWS_SECRET_ACCESS_KEY": secret,
            "WORKER_POOLS": ",".join(pools),
            "WORKER_SLOTS": str(slots),
            "WORKER_DIR": str(work_dir),
            "WORKER_SANDBOX": "bubblewrap",
            "STEPLINE_ALLOW_LOCAL_REPOSITORIES": "true",  # the snapshot repository is a file:// URL
            # finished logs (and build outputs) go to a directory of this run, gone with it
            "STEPLINE_BLOB_STORE": "directory",
            "STEPLINE_BLOB_DIR": str(self.blob_dir),
            "LOG_LEVEL": "WARNING",
        }
        self._start("worker", self._python("workers"), self._python_env(settings))

    def sfn_client(self, read_timeout: float) -> Any:
        """A Step Functions client of this stack's engine, signed with the run's own key.

        `read_timeout` above the engine's long poll for GetActivityTask.
        """
        # boto3 loads with the first client, after the processes started: the engine boots meanwhile
        from statemachines.sfn_client import make_sfn_client

        key_id, secret = self.access_key
        return make_sfn_client(
            self.region,
            self.engine_url,
            read_timeout=read_timeout,
            connect_timeout=5,
            attempts=3,
            access_key_id=key_id,
            secret_access_key=secret,
            user_agent="stepline-run",
        )

    def client_settings(self) -> dict[str, str]:
        return {"REDIS_URL": self.redis_url, "SFN_ENDPOINT_URL": self.engine_url, "AWS_REGION": self.region}

    def check_alive(self, name: str) -> None:
        """Raise StackFailed with the tail of its output when the process has exited."""
        process = self.processes.get(name)
        if process is not None and process.poll() is not None:
            raise StackFailed(name, f"exited with status {process.returncode}\n{self.log_tail(name)}")

    def log_tail(self, name: str) -> str:
        path = self.root / f"{name}.log"
        lines = path.read_text(errors="replace").splitlines() if path.exists() else []
        return "\n".join(lines[-LOG_TAIL_LINES:])

    def describe_processes(self) -> str:
        """Each process's state and the tail of its output (for a run that failed for the stack's sake)."""
        parts = []
        for name, process in self.processes.items():
            state = "running" if process.poll() is None else f"exited with status {process.returncode}"
            parts.append(f"--- {name} ({state}):\n{self.log_tail(name)}".rstrip())
        return "\n".join(parts)

    def stop(self) -> None:
        """Stop every process, the worker first; SIGKILL to a process group that outstays its grace period."""
        for name in ("worker", "engine", "redis-server"):
            self._stop(name)

    def stop_worker(self) -> None:
        self._stop("worker")

    def _stop(self, name: str) -> None:
        process = self.processes.pop(name, None)
        if process is None:
            return
        _signal_group(process, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_SECONDS[name])
        except subprocess.TimeoutExpired:
            _signal_group(process, signal.SIGKILL)
            process.wait(timeout=10)
        _signal_group(process, signal.SIGKILL)  # anything of the group that outlived its leader

    def _python(self, module: str) -> list[str]:
        return [sys.executable, "-m", module]

    def _python_env(self, settings: dict[str, str]) -> dict[str, str]:
        base = {"PATH": self.path, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
        return {**base, **NO_AWS_PROFILE, **settings}

    def _start(self, name: str, args: list[str], env: dict[str, str], stdin: str = "") -> None:
        with open(self.root / f"{name}.log", "ab") as log:
            # a session of its own: Ctrl-C reaches only us, and we stop the whole group in order
            process = subprocess.Popen(
                args, cwd=self.root, env=env, stdin=subprocess.PIPE, stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=_end_with_parent,
            )  # fmt: skip
        self.processes[name] = process
        assert process.stdin is not None
        with process.stdin:
            process.stdin.write(stdin.encode())


def _end_with_parent() -> None:
    """In the child, before exec: SIGTERM when `stepline run` dies, even by SIGKILL (Linux's PDEATHSIG)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == 1:  # the parent died before prctl: end now rather than never
        os.kill(os.getpid(), signal.SIGTERM)


def _signal_group(process: subprocess.Popen[bytes], number: int) -> None:
    try:
        os.killpg(process.pid, number)
    except (ProcessLookupError, PermissionError):
        pass
