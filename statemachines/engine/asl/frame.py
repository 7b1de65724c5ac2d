"""The persisted frame: one thread of control (the top level, a Parallel branch or a Map iteration).

Keys are short because the service writes the execution state on every transition; they are stored
as they are here, so renaming one breaks every execution already running (runtime.py tells the tree).
"""

from __future__ import annotations

from typing import Any, NotRequired, Required, TypedDict

# "in" is a keyword: the functional form is the only way to name the key as it is stored
Frame = TypedDict(
    "Frame",
    {
        "id": Required[str],
        "p": Required[str],  # program: "" for the top level, else the branch's or processor's path
        "s": Required[str],  # the state it is in
        "in": Required[Any],  # that state's input
        "v": Required[dict[str, Any]],  # its own variables (Assign); outer scopes are its ancestors'
        "l": Required[int],  # its last history event id: the next event's previousEventId
        "up": NotRequired[str],  # the parent frame's id (absent at the top level)
        "k": NotRequired[int],  # its slot in the parent: branch or iteration index
        "e": NotRequired[int],  # the StateEntered event id
        "t": NotRequired[int],  # when it entered the state (epoch ms)
        "x": NotRequired[dict[str, Any]],  # the current state's working data (retries, Map progress, ...)
        "tok": NotRequired[str],  # the task token it waits on
        "tm": NotRequired[dict[str, str]],  # timer kind -> timer id
        "kids": NotRequired[dict[str, str]],  # Parallel/Map: slot -> child frame id
        "ph": NotRequired[str],  # "halted" or "failed" once stopped (kept for redrive)
    },
)
