"""The bodies of the States.* intrinsic functions, with AWS's argument rules (Java rounding, caps)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import random
import re
from collections.abc import Callable
from typing import Any, Protocol

from statemachines import nesting


class Randomness(Protocol):
    """What intrinsics need from the injected id source (the interpreter's `ids`)."""

    def random(self) -> float: ...

    def uuid(self) -> str: ...


class IntrinsicArgumentError(ValueError):
    """Raised by a function body when its arguments are not what AWS accepts."""


def _round(value: Any) -> int:
    """Java's Math.round, as AWS rounds numeric intrinsic arguments: half up, towards +infinity."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise IntrinsicArgumentError()
    return math.floor(value + 0.5)


def _require(condition: bool) -> None:
    if not condition:
        raise IntrinsicArgumentError()


class FormatTemplate(str):
    """A States.Format template written as a literal: its \\{ \\} \\' \\\\ escapes are still in it."""


def unescape(template: str) -> str:
    """A string literal's value: each backslash escape (\\' \\{ \\} \\\\) gives its character."""
    return re.sub(r"\\(.)", r"\1", template)


def _format_value(value: Any) -> str:
    """How AWS (Java) prints a value inside States.Format: strings raw, objects as Map.toString."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "[" + ", ".join(_format_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key}={_format_value(item)}" for key, item in value.items()) + "}"
    return json.dumps(value)


def _format(args: list[Any], rng: Randomness) -> str:
    template = args[0]
    _require(isinstance(template, str))
    if isinstance(template, FormatTemplate):
        # Split on unescaped {} only; escaped braces stay literal.
        pieces = [unescape(piece) for piece in _split_placeholders(template)]
    else:
        pieces = template.split("{}")
    _require(len(pieces) == len(args))
    out = [pieces[0]]
    for value, piece in zip(args[1:], pieces[1:], strict=True):
        out.append(_format_value(value))
        out.append(piece)
    return "".join(out)


def _split_placeholders(template: str) -> list[str]:
    pieces, current, pos = [], [], 0
    while pos < len(template):
        if template[pos] == "\\":
            current.append(template[pos : pos + 2])
            pos += 2
        elif template.startswith("{}", pos):
            pieces.append("".join(current))
            current, pos = [], pos + 2
        else:
            current.append(template[pos])
            pos += 1
    pieces.append("".join(current))
    return pieces


def _string_to_json(args: list[Any], rng: Randomness) -> Any:
    _require(isinstance(args[0], str))
    try:
        return nesting.loads(args[0]) if args[0].strip() else None
    except ValueError:
        raise IntrinsicArgumentError() from None


def _array_partition(args: list[Any], rng: Randomness) -> list[Any]:
    array, size = args[0], _round(args[1])
    _require(isinstance(array, list) and size > 0)
    return [array[i : i + size] for i in range(0, len(array), size)]


def _array_range(args: list[Any], rng: Randomness) -> list[int]:
    start, end, step = (_round(arg) for arg in args)
    _require(step != 0)
    _require(max(0, (end - start) // step + 1) <= 1000)  # AWS's cap, checked before building anything
    return list(range(start, end + (1 if step > 0 else -1), step))


def _array_get_item(args: list[Any], rng: Randomness) -> Any:
    array, index = args
    _require(isinstance(array, list) and isinstance(index, int) and not isinstance(index, bool))
    _require(0 <= index < len(array))
    return array[index]


def _array_unique(args: list[Any], rng: Randomness) -> list[Any]:
    _require(isinstance(args[0], list))
    seen: set[str] = set()
    unique = []
    for item in args[0]:
        key = json.dumps(item, sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    return unique


def _array_contains(args: list[Any], rng: Randomness) -> bool:
    _require(isinstance(args[0], list))
    wanted = json.dumps(args[1], sort_keys=True)
    return any(json.dumps(item, sort_keys=True) == wanted for item in args[0])


def _base64_encode(args: list[Any], rng: Randomness) -> str:
    _require(isinstance(args[0], str) and len(args[0]) <= 10000)
    return base64.b64encode(args[0].encode()).decode()


def _base64_decode(args: list[Any], rng: Randomness) -> str:
    _require(isinstance(args[0], str) and len(args[0]) <= 10000)
    # padding ends a whole 4-character group (Java's decoder refuses "YWJj="; Python's ignores it)
    _require("=" not in args[0] or len(args[0]) % 4 == 0)
    try:
        return base64.b64decode(args[0], validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise IntrinsicArgumentError() from None


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(args: list[Any], rng: Randomness) -> str:
    data, algorithm = args
    _require(isinstance(data, str) and len(data) <= 10000 and algorithm in _HASHES)
    return hashlib.new(_HASHES[algorithm], data.encode()).hexdigest()


def _json_merge(args: list[Any], rng: Randomness) -> dict[str, Any]:
    first, second, deep = args
    # AWS only supports the shallow mode: the third argument must be false.
    _require(isinstance(first, dict) and isinstance(second, dict) and deep is False)
    return {**first, **second}


def _math_random(args: list[Any], rng: Randomness) -> int:
    start, end = _round(args[0]), _round(args[1])
    _require(start < end)
    if len(args) == 3:
        # deviation: AWS's seeded generator is Java's; a seed gives a repeatable value, not AWS's value.
        return random.Random(_round(args[2])).randrange(start, end)
    return start + math.floor(rng.random() * (end - start))


def _math_add(args: list[Any], rng: Randomness) -> int:
    return _round(args[0]) + _round(args[1])


def _string_split(args: list[Any], rng: Randomness) -> list[str]:
    text, delimiters = args
    _require(isinstance(text, str) and isinstance(delimiters, str))
    # AWS splits on any of the delimiter's characters and drops empty pieces.
    if not delimiters:
        return [text] if text else []
    return [piece for piece in re.split("[" + re.escape(delimiters) + "]", text) if piece]


FUNCTIONS: dict[str, Callable[[list[Any], Randomness], Any]] = {
    "States.Format": _format,
    "States.StringToJson": _string_to_json,
    "States.JsonToString": lambda args, rng: json.dumps(args[0], separators=(",", ":"), ensure_ascii=False),
    "States.Array": lambda args, rng: list(args),
    "States.ArrayPartition": _array_partition,
    "States.ArrayContains": _array_contains,
    "States.ArrayRange": _array_range,
    "States.ArrayGetItem": _array_get_item,
    "States.ArrayLength": lambda args, rng: len(args[0]) if isinstance(args[0], list) else _fail(),
    "States.ArrayUnique": _array_unique,
    "States.Base64Encode": _base64_encode,
    "States.Base64Decode": _base64_decode,
    "States.Hash": _hash,
    "States.JsonMerge": _json_merge,
    "States.MathRandom": _math_random,
    "States.MathAdd": _math_add,
    "States.StringSplit": _string_split,
    "States.UUID": lambda args, rng: rng.uuid(),
}

# (least, most) arguments; None = any number.
ARITY: dict[str, tuple[int, int | None]] = {
    "States.Format": (1, None),
    "States.StringToJson": (1, 1),
    "States.JsonToString": (1, 1),
    "States.Array": (0, None),
    "States.ArrayPartition": (2, 2),
    "States.ArrayContains": (2, 2),
    "States.ArrayRange": (3, 3),
    "States.ArrayGetItem": (2, 2),
    "States.ArrayLength": (1, 1),
    "States.ArrayUnique": (1, 1),
    "States.Base64Encode": (1, 1),
    "States.Base64Decode": (1, 1),
    "States.Hash": (2, 2),
    "States.JsonMerge": (3, 3),
    "States.MathRandom": (2, 3),
    "States.MathAdd": (2, 2),
    "States.StringSplit": (2, 2),
    "States.UUID": (0, 0),
}


def _fail() -> Any:
    raise IntrinsicArgumentError()
