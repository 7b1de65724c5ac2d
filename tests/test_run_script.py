"""`scripts/run` (what `make run` starts): the example pipelines run to their end, nothing local is open.

Each run here has a project root of its own (this checkout's code, its own `data/`, no `.env`) and free
ports, so it never touches the data, settings or ports of a `make run` in this checkout.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
import redis
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from statemachines.catalog import load_pipeline, shipped_pipelines
from statemachines.contract import APPROVAL_POOL, UNTRUSTED, activity_pools
from tests.harness.ports import free_port
from tests.harness.processes import PROJECT, ManagedProcess

pytestmark = pytest.mark.slow

# What web and jobs hold (webhooks, sign-in, statuses as the GitHub App) and a worker must not
SERVICE_SECRETS = (
    "GITHUB_WEBHOOK_SECRET",
    "STEPLINE_ADMIN_TOKEN",
    "SECRET_KEY",
    "STEPLINE_USERS",
    "GITHUB_APP_PRIVATE_KEY",
    "GITHUB_APP_PRIVATE_KEY_FILE",
)
AWS_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
# what a shell may have set for another Stepline must not leak into these; the worker logs its pools at INFO
CLEAN_ENV = {
    **{name: "" for name in ("REDIS_URL", "SFN_ENDPOINT_URL", "ENGINE_ACCESS_KEYS", *AWS_KEYS)},
    "LOG_LEVEL": "INFO",
}


@dataclass
class Stepline:
    """One `scripts/run` and where it answers."""

    root: Path
    run: ManagedProcess
    web_url: str
    engine_url: str
    redis_port: int

    def secret(self, name: str) -> str:
        return (self.root / "data" / name).read_text().strip()

    def engine_key(self) -> tuple[str, str]:
        key_id, _, secret = self.secret("engine-access-keys").partition(":")
        return key_id, secret


def make_root(root: Path) -> Path:
    """A project root running this checkout's code, with a `data/` (and `.env`) of its own."""
    root.mkdir()
    for name in ("service", "workers", "statemachines", "scripts", ".venv", "Procfile"):
        (root / name).symlink_to(PROJECT / name)
    return root


def free_ports() -> dict[str, str]:
    return {name: str(free_port()) for name in ("PORT", "ENGINE_PORT", "REDIS_PORT")}


def start_run(root: Path, log_dir: Path, ports: dict[str, str], env: dict[str, str]) -> Stepline:
    """`scripts/run` in `root` on `ports`, once web, engine, worker and jobs have all started."""
    run = ManagedProcess(
        "run", [str(root / "scripts" / "run")], {**CLEAN_ENV, **ports, **env}, log_dir
    ).start()
    stepline = Stepline(
        root,
        run,
        f"http://127.0.0.1:{ports['PORT']}",
        f"http://127.0.0.1:{ports['ENGINE_PORT']}",
        int(ports["REDIS_PORT"]),
    )
    run.wait_http(stepline.web_url + "/healthz", timeout=60)
    wait_for_log(run, "slots on pools")  # the worker
    wait_for_log(run, "Listening on")  # rq in jobs
    return stepline


def wait_for_log(run: ManagedProcess, text: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while text not in run.log():
        run.check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {text!r} in the log of scripts/run:\n{run.log()}")
        time.sleep(0.1)


@pytest.fixture(scope="module")
def stepline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stepline]:
    """`make run` with every secret a process may hold set or generated, started once for this module."""
    base = tmp_path_factory.mktemp("make-run")
    (base / "worker-secrets").write_text("DEPLOY_KEY=deploy-secret\n")
    (base / "app-key.pem").write_text("-----BEGIN RSA PRIVATE KEY-----\nkey\n-----END RSA PRIVATE KEY-----\n")
    env = {
        "GITHUB_WEBHOOK_SECRET": "",  # generated into data/webhook-secret
        "STEPLINE_ADMIN_TOKEN": "admin-token",
        "SECRET_KEY": "cookie-key",
        "STEPLINE_USERS": "alice:pbkdf2:sha256:1000$salt$0123",
        "GITHUB_TOKEN": "github-token",
        "GITHUB_APP_ID": "1",
        "GITHUB_APP_PRIVATE_KEY": "app-key-text",
        "GITHUB_APP_PRIVATE_KEY_FILE": str(base / "app-key.pem"),
        "WORKER_SECRETS_FILE": str(base / "worker-secrets"),
        "WORKER_POOLS": "",
    }
    log_dir = base / "logs"
    log_dir.mkdir()
    stepline = start_run(make_root(base / "stepline"), log_dir, free_ports(), env)
    yield stepline
    stepline.run.stop(timeout=15)


def redis_answer(port: int, command: bytes) -> bytes:
    """Redis's first answer line to an inline command, as any client on the machine would get it."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(command + b"\r\n")
        return connection.makefile("rb").readline()


def sfn_client(stepline: Stepline, key_id: str, secret: str):
    return boto3.session.Session().client(
        "stepfunctions",
        endpoint_url=stepline.engine_url,
        region_name="us-east-1",
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        config=Config(retries={"max_attempts": 1}),
    )


def process_environments(stepline: Stepline, module: str) -> list[dict[str, str]]:
    """The starting environment (/proc/<pid>/environ) of every `python -m <module>` under scripts/run."""
    found = []
    for pid in descendants(stepline.run.process.pid):  # type: ignore[union-attr]
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
            raw = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:  # it ended meanwhile
            continue
        if argv[-2:] == [b"-m", module.encode()]:
            found.append(dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item))
    assert found, f"no `python -m {module}` runs under scripts/run"
    return found


def process_command_lines(stepline: Stepline) -> list[bytes]:
    lines = []
    for pid in descendants(stepline.run.process.pid):  # type: ignore[union-attr]
        try:
            lines.append(Path(f"/proc/{pid}/cmdline").read_bytes())
        except OSError:
            continue
    return lines


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):  # it ended meanwhile
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def served_pools(stepline: Stepline) -> set[str]:
    return set(stepline.run.log().split("slots on pools ", 1)[1].split()[0].split(","))


def test_the_worker_of_make_run_serves_every_pool_the_examples_use(stepline):
    # release.asl.json and approval.asl.yaml deploy on `deploy`: with no worker for it they never end
    used = {pool for name in shipped_pipelines() for pool in activity_pools(load_pipeline(name)[1])}
    assert used - {APPROVAL_POOL} <= served_pools(stepline)
    assert f"{UNTRUSTED}-build" in served_pools(stepline)  # forks' pull requests


def test_the_redis_of_make_run_refuses_clients_without_its_password(stepline):
    password = stepline.secret("redis-password")
    assert len(password) >= 32
    assert redis_answer(stepline.redis_port, b"PING").startswith(b"-NOAUTH")
    assert redis_answer(stepline.redis_port, b"AUTH guess").startswith(b"-WRONGPASS")
    assert redis.Redis(port=stepline.redis_port, password=password).ping()
    assert requests.get(stepline.web_url + "/healthz", timeout=10).json()["redis"] == "reachable"
    # a command line is readable by every user of the machine
    assert not [line for line in process_command_lines(stepline) if password.encode() in line]


def test_the_engine_of_make_run_answers_only_signed_calls(stepline):
    key_id, secret = stepline.engine_key()
    # the worker and the jobs process (approvals) create their activities with signed calls
    wait_for_log(stepline.run, "pool build: polling activity")
    wait_for_log(stepline.run, "approval poller: polling")
    activities = sfn_client(stepline, key_id, secret).list_activities()["activities"]
    assert {"stepline-build", f"stepline-{APPROVAL_POOL}"} <= {activity["name"] for activity in activities}
    unsigned = requests.post(
        stepline.engine_url + "/",
        data=b"{}",
        headers={
            "X-Amz-Target": "AWSStepFunctions.ListActivities",
            "Content-Type": "application/x-amz-json-1.0",
        },
        timeout=10,
    )
    assert unsigned.status_code == 403
    assert "MissingAuthenticationTokenException" in unsigned.json()["__type"]
    for wrong, error in [
        (("SLNOSUCHKEY000000000", secret), "UnrecognizedClientException"),
        ((key_id, "0" * 40), "InvalidSignatureException"),
    ]:
        with pytest.raises(ClientError) as refused:
            sfn_client(stepline, *wrong).list_activities()
        assert refused.value.response["Error"]["Code"] == error


def test_the_secrets_make_run_generates_are_readable_by_their_owner_only(stepline):
    for name in ("redis-password", "engine-access-keys", "webhook-secret"):
        assert (stepline.root / "data" / name).stat().st_mode & 0o777 == 0o600, name
    assert re.fullmatch(r"[A-Z0-9]{20}:[0-9a-f]{40}", stepline.secret("engine-access-keys"))
    assert not list((stepline.root / "data").glob("*.new"))
    assert (stepline.root / "data" / "redis").stat().st_mode & 0o777 == 0o700  # the append-only file


def test_each_process_of_make_run_starts_with_only_the_settings_it_needs(stepline):
    key_id, secret = stepline.engine_key()
    clients = process_environments(stepline, "workers") + process_environments(stepline, "service")
    clients += process_environments(stepline, "service.jobs")
    for env in clients:  # they sign their calls to the engine, and hold the Redis password
        assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == (key_id, secret)
        assert stepline.secret("redis-password") in env["REDIS_URL"]
    for env in process_environments(stepline, "workers"):
        assert env["WORKER_SECRETS_FILE"]
        assert {*SERVICE_SECRETS, "ENGINE_ACCESS_KEYS"}.isdisjoint(env)
    for env in process_environments(stepline, "statemachines.engine"):
        assert env["ENGINE_ACCESS_KEYS"] == f"{key_id}:{secret}"
        assert {*SERVICE_SECRETS, *AWS_KEYS, "GITHUB_TOKEN", "WORKER_SECRETS_FILE"}.isdisjoint(env)
    for module in ("service", "service.jobs"):
        for env in process_environments(stepline, module):
            assert env["GITHUB_WEBHOOK_SECRET"] == stepline.secret("webhook-secret")
            assert all(env[name] for name in SERVICE_SECRETS)
            assert {"ENGINE_ACCESS_KEYS", "WORKER_SECRETS_FILE"}.isdisjoint(env)


def test_the_log_of_make_run_shows_no_secret(stepline):
    log = stepline.run.log()
    assert "Stepline dashboard" in log and "slots on pools" in log
    for name in ("redis-password", "engine-access-keys", "webhook-secret"):
        assert stepline.secret(name) not in log, name
    assert stepline.engine_key()[1] not in log


@pytest.mark.parametrize(
    ("given", "engine_keys", "client_key"),
    [
        (
            {"ENGINE_ACCESS_KEYS": "KEYONE:secret1,KEYTWO:secret2"},
            "KEYONE:secret1,KEYTWO:secret2",
            "KEYONE:secret1",
        ),
        ({"AWS_ACCESS_KEY_ID": "AKIDOWN", "AWS_SECRET_ACCESS_KEY": "own"}, "AKIDOWN:own", "AKIDOWN:own"),
    ],
)
def test_make_run_uses_the_keys_the_user_set(tmp_path, given, engine_keys, client_key):
    root = make_root(tmp_path / "stepline")
    ports = free_ports()
    run = ManagedProcess(
        "run", [str(root / "scripts" / "run"), "engine", "worker"], {**CLEAN_ENV, **ports, **given}, tmp_path
    ).start()
    try:
        wait_for_log(run, "slots on pools")
        stepline = Stepline(
            root, run, "", f"http://127.0.0.1:{ports['ENGINE_PORT']}", int(ports["REDIS_PORT"])
        )
        for env in process_environments(stepline, "statemachines.engine"):
            assert env["ENGINE_ACCESS_KEYS"] == engine_keys
        for env in process_environments(stepline, "workers"):
            assert f"{env['AWS_ACCESS_KEY_ID']}:{env['AWS_SECRET_ACCESS_KEY']}" == client_key
        assert not (root / "data" / "engine-access-keys").exists()
    finally:
        run.stop(timeout=15)


def test_make_run_with_a_copy_of_env_example_runs_as_without_it(tmp_path):
    root = make_root(tmp_path / "stepline")
    settings = (PROJECT / ".env.example").read_text()
    ports = free_ports()
    for name, port in ports.items():  # only the ports are this test's
        settings = re.sub(rf"^{name}=.*$", f"{name}={port}", settings, flags=re.MULTILINE)
    (root / ".env").write_text(settings)
    (tmp_path / "logs").mkdir()
    stepline = start_run(root, tmp_path / "logs", ports, {})
    try:
        assert requests.get(stepline.web_url + "/healthz", timeout=10).status_code == 200
        assert served_pools(stepline) == {"build", f"{UNTRUSTED}-build", "deploy"}
        assert "activities" in sfn_client(stepline, *stepline.engine_key()).list_activities()
        assert redis_answer(stepline.redis_port, b"PING").startswith(b"-NOAUTH")
    finally:
        stepline.run.stop(timeout=15)


def test_sigterm_to_make_run_alone_stops_every_process_and_redis(tmp_path):
    ports = free_ports()
    (tmp_path / "logs").mkdir()
    stepline = start_run(make_root(tmp_path / "stepline"), tmp_path / "logs", ports, {})
    script = stepline.run.process
    assert script is not None
    script.terminate()  # the script alone, not its process group
    try:
        assert script.wait(timeout=30) != 0
        for port in ports.values():
            with pytest.raises(OSError):
                socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
    finally:  # what the script left behind, if anything
        with contextlib.suppress(ProcessLookupError):
            os.killpg(script.pid, signal.SIGKILL)


# What people paste into .env: a password hash from `python -m service.dashboard.auth hash` ($ in it), values with
# spaces, `#` and quotes. A variable of the environment wins over .env, as with honcho and python-dotenv.
PASTED_HASH = (
    "alice:pbkdf2:sha256:600000$Zk3vQ8$0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e0d9c8b7a6f5e4d3c2b1a0f9e"
)
DOTENV = f"""# pasted as they came
STEPLINE_USERS={PASTED_HASH}
STEPLINE_TEST_DOLLARS=a$b ${{HOME}} $$
STEPLINE_TEST_SPACES=two  words
STEPLINE_TEST_COMMENT=value # a comment
STEPLINE_TEST_HASH=a#b
STEPLINE_TEST_DOUBLE="say \\"hi\\" # not a comment"
STEPLINE_TEST_SINGLE='$literal "as written"'
export STEPLINE_TEST_EXPORTED=yes
STEPLINE_TEST_WINNER=from .env
"""
EXPECTED = {
    "STEPLINE_USERS": PASTED_HASH,
    "STEPLINE_TEST_DOLLARS": "a$b ${HOME} $$",
    "STEPLINE_TEST_SPACES": "two  words",
    "STEPLINE_TEST_COMMENT": "value",
    "STEPLINE_TEST_HASH": "a#b",
    "STEPLINE_TEST_DOUBLE": 'say "hi" # not a comment',
    "STEPLINE_TEST_SINGLE": '$literal "as written"',
    "STEPLINE_TEST_EXPORTED": "yes",
    "STEPLINE_TEST_WINNER": "from the environment",
}


def test_env_is_read_as_data_and_the_environment_wins(tmp_path):
    root = make_root(tmp_path / "stepline")
    ports = free_ports()
    (root / ".env").write_text(DOTENV + "".join(f"{name}=1\n" for name in ports))  # the environment's win
    (tmp_path / "logs").mkdir()
    stepline = start_run(root, tmp_path / "logs", ports, {"STEPLINE_TEST_WINNER": "from the environment"})
    try:
        for web in process_environments(stepline, "service"):
            assert {name: web.get(name) for name in EXPECTED} == EXPECTED
    finally:
        stepline.run.stop(timeout=15)


def test_status_links_of_make_run_use_the_url_it_prints(tmp_path):
    ports = free_ports()
    (tmp_path / "logs").mkdir()
    stepline = start_run(
        make_root(tmp_path / "stepline"), tmp_path / "logs", ports, {"STEPLINE_PUBLIC_URL": ""}
    )
    try:
        assert f"Stepline dashboard: {stepline.web_url}/" in stepline.run.log()
        # honcho gives jobs a PORT of its own: the links it posts must still open the web process
        for module in ("service", "service.jobs"):
            for env in process_environments(stepline, module):
                assert env["STEPLINE_PUBLIC_URL"] == stepline.web_url, module
    finally:
        stepline.run.stop(timeout=15)
    # Ctrl-C, as a terminal sends it (SIGINT to the whole foreground process group): a clean stop, exit 0,
    # so `make run` ends without "make: *** [run] Error 130/143"
    (tmp_path / "logs-again").mkdir()
    stepline = start_run(make_root(tmp_path / "again"), tmp_path / "logs-again", free_ports(), {})
    stepline.run.signal(signal.SIGINT)
    assert stepline.run.process is not None
    assert stepline.run.process.wait(timeout=30) == 0, stepline.run.log()
