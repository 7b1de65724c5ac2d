"""Succeed: ends its frame (the execution, a branch or an iteration) successfully."""

from __future__ import annotations

from .state_base import State


class SucceedState(State):
    """A terminal state; its output is its input after InputPath/OutputPath (or JSONata Output)."""

    type_name = "Succeed"
    has_parameters = False
