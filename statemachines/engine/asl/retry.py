"""Retry and Catch: which retrier or catcher handles an error, and how long a retry waits."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from .fields import MAX_SECONDS

# "States.ALL ... matches any known error name" -- except these, which AWS documents as terminal:
# a retrier or catcher must name them explicitly.
NOT_MATCHED_BY_ALL = frozenset({"States.Runtime", "States.DataLimitExceeded"})


@dataclass(frozen=True)
class Failure:
    """An ASL error on its way through Retry/Catch; a Fail state may leave both fields empty."""

    error: str | None
    cause: str | None

    def error_output(self) -> dict[str, Any]:
        """The `{"Error", "Cause"}` object a catcher passes on (absent fields are omitted)."""
        out: dict[str, Any] = {}
        if self.error is not None:
            out["Error"] = self.error
        if self.cause is not None:
            out["Cause"] = self.cause
        return out


def matches(error_equals: list[str], error: str | None) -> bool:
    """True when an ErrorEquals list handles `error` (exact name, or States.ALL for the rest)."""
    if error is not None and error in error_equals:
        return True
    return "States.ALL" in error_equals and error not in NOT_MATCHED_BY_ALL


def find_handler(handlers: list[dict[str, Any]], error: str | None) -> int | None:
    """Index of the first retrier/catcher whose ErrorEquals handles `error`, in definition order."""
    for index, handler in enumerate(handlers):
        if matches(handler.get("ErrorEquals", []), error):
            return index
    return None


def retry_delay_ms(retrier: dict[str, Any], attempt: int, random: float) -> int | None:
    """Milliseconds before retry number `attempt` (0-based), or None when MaxAttempts is spent.

    "IntervalSeconds ... BackoffRate: the multiplier by which the retry interval increases
    during each attempt"; MaxDelaySeconds caps it; JitterStrategy FULL picks uniformly in [0, d].
    """
    if attempt >= int(retrier.get("MaxAttempts", 3)):
        return None
    try:
        delay = float(retrier.get("IntervalSeconds", 1)) * float(retrier.get("BackoffRate", 2.0)) ** attempt
    except OverflowError:  # 2.0 ** 1100: MaxAttempts may be 99999999
        delay = math.inf
    # deviation: without MaxDelaySeconds AWS documents no cap; past 99999999 s it waits that long
    delay = min(delay, float(retrier.get("MaxDelaySeconds", MAX_SECONDS)))
    if retrier.get("JitterStrategy") == "FULL":
        delay *= random
    return int(delay * 1000)
