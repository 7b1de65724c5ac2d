"""Fixtures every test may use: a real Redis, a fake GitHub, git repositories, Stepline processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from service.app import create_app
from service.config import ServiceConfig
from tests.harness.blob_servers import blob_settings, moto_s3  # noqa: F401 - fixtures
from tests.harness.fake_github import FakeGitHub
from tests.harness.git_repos import GitRepo
from tests.harness.processes import ManagedProcess, start_engine
from tests.harness.redis_server import RedisServer

WEBHOOK_SECRET = "test-webhook-secret"


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the whole session; tests that kill it must restart it (see `restart()`)."""
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    """The session Redis, flushed before each test so tests never see each other's keys."""
    if redis_server.process is None or redis_server.process.poll() is not None:
        redis_server.start()
    redis_server.flush()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str, redis_server: RedisServer):
    client = redis_server.client()
    yield client
    client.close()


@pytest.fixture(scope="session")
def fake_github_server() -> Iterator[FakeGitHub]:
    server = FakeGitHub().start()
    yield server
    server.stop()


@pytest.fixture
def fake_github(fake_github_server: FakeGitHub) -> FakeGitHub:
    """The fake GitHub REST API, emptied before each test."""
    fake_github_server.reset()
    return fake_github_server


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[[str], GitRepo]:
    """Factory of real git repositories (bare remote + working clone) in this test's temp dir."""

    def make(name: str = "app") -> GitRepo:
        return GitRepo(tmp_path / "git", name)

    (tmp_path / "git").mkdir()
    return make


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Callable[..., ManagedProcess]]:
    """Start subprocesses that are always stopped (SIGKILL at worst) when the test ends."""
    started: list[ManagedProcess] = []
    log_dir = tmp_path / "logs"
    log_dir.mkdir()

    def start(name: str, args: list[str], env: dict[str, str]) -> ManagedProcess:
        process = ManagedProcess(name, args, env, log_dir).start()
        started.append(process)
        return process

    yield start
    for process in reversed(started):
        process.stop(timeout=5)


@pytest.fixture
def service_config(redis_url: str, fake_github: FakeGitHub) -> ServiceConfig:
    """The web/jobs settings pointing at the test Redis and the fake GitHub."""
    return ServiceConfig(
        redis_url=redis_url,
        webhook_secret=WEBHOOK_SECRET,
        github_token="test-token",
        github_api_url=fake_github.url,
        public_url="http://stepline.test",
    )


@pytest.fixture
def app(service_config: ServiceConfig):
    flask_app = create_app(service_config)
    flask_app.config["TESTING"] = True
    return flask_app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def sfn_engine(redis_url: str, processes: Callable[..., ManagedProcess]) -> str:
    """The local Step Functions engine (`python -m statemachines.engine`) over the test Redis; its endpoint URL."""
    return start_engine(processes, redis_url)
