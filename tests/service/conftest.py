"""Fixtures of the service's end-to-end tests that run pipelines: the processes and a TCP gate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.service.run_stack import Gate, Stack, start_stack


@pytest.fixture
def gate() -> Iterator[Gate]:
    found = Gate()
    yield found
    found.opened.set()  # a step still waiting ends, so its worker stops promptly
    found.server.close()


@pytest.fixture
def run_stack(service_config, redis_url, redis_client, fake_github, processes, tmp_path) -> Stack:
    """Engine, jobs process and one build worker (real sandbox) over the test Redis; see run_stack.py."""
    return start_stack(service_config, redis_url, redis_client, fake_github, processes, tmp_path)
