"""The Step Functions client of a local run: on the run's own engine, signed with the run's own key."""

from __future__ import annotations

from typing import Any

from statemachines.sfn_client import make_sfn_client
from stepline.stack import LocalStack


def make_client(stack: LocalStack, read_timeout: float) -> Any:
    """A client of the stack's engine; `read_timeout` above the engine's long poll for GetActivityTask."""
    key_id, secret = stack.access_key
    return make_sfn_client(
        stack.region,
        stack.engine_url,
        read_timeout=read_timeout,
        connect_timeout=5,
        attempts=3,
        access_key_id=key_id,
        secret_access_key=secret,
        user_agent="stepline-run",
    )
