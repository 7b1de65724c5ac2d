"""Choice rules: JSONPath comparison operators and JSONata Conditions, evaluated as AWS does."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .errors import StatesError
from .jsonata_query import evaluate_condition
from .paths import PathNotFound, read_path, to_json_text

_TIMESTAMP = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$")


def parse_timestamp(value: Any) -> datetime | None:
    """An RFC 3339 timestamp ("2016-03-14T01:59:00Z", offsets and fractions allowed), else None."""
    if not isinstance(value, str):
        return None
    match = _TIMESTAMP.match(value)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        tz = UTC
        if zone != "Z":
            sign = 1 if zone[0] == "+" else -1
            tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
        micros = int((fraction or "0")[:6].ljust(6, "0"))
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micros, tz)
    except ValueError:  # month 13, hour 25, offset out of range
        return None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _string_matches(value: str, pattern: str) -> bool:
    """StringMatches: '*' matches any run of characters; '\\*' and '\\\\' are literal.

    The pattern is literal pieces between stars: the first must begin the value, the last end it,
    and each other is found leftmost after the one before (leftmost is never worse for a star), in
    linear time. A regex of `.*`s backtracked for hours on `*a*a*a*a*a*a*b` over a long input.
    """
    pieces, current, pos = [], [], 0
    while pos < len(pattern):
        char = pattern[pos]
        if char == "\\" and pos + 1 < len(pattern):
            current.append(pattern[pos + 1])
            pos += 2
            continue
        if char == "*":
            pieces.append("".join(current))
            current = []
        else:
            current.append(char)
        pos += 1
    pieces.append("".join(current))
    if len(pieces) == 1:
        return value == pieces[0]
    first, *middle, last = pieces
    start, end = len(first), len(value) - len(last)
    if end < start or not value.startswith(first) or not value.endswith(last):
        return False
    for piece in middle:
        found = value.find(piece, start, end)
        if found < 0:
            return False
        start = found + len(piece)
    return True


_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "LessThan": lambda a, b: a < b,
    "GreaterThan": lambda a, b: a > b,
    "LessThanEquals": lambda a, b: a <= b,
    "GreaterThanEquals": lambda a, b: a >= b,
}


def _compare(kind: str, relation: str, value: Any, operand: Any) -> bool:
    """One comparison; a value or operand of the wrong type makes it false, as AWS does."""
    if kind == "String":
        ok = isinstance(value, str) and isinstance(operand, str)
        if ok and relation != "Equals":
            # AWS compares Java strings: by UTF-16 code unit, which differs from code points above U+FFFF.
            value, operand = value.encode("utf-16-be"), operand.encode("utf-16-be")
    elif kind == "Numeric":
        ok = _is_number(value) and _is_number(operand)
    elif kind == "Boolean":
        ok = isinstance(value, bool) and isinstance(operand, bool)
    else:  # Timestamp
        value, operand = parse_timestamp(value), parse_timestamp(operand)
        ok = value is not None and operand is not None
    return ok and _ORDER[relation](value, operand)


_TYPE_TESTS: dict[str, Callable[[Any], bool]] = {
    "IsNull": lambda v: v is None,
    "IsNumeric": _is_number,
    "IsString": lambda v: isinstance(v, str),
    "IsBoolean": lambda v: isinstance(v, bool),
    "IsTimestamp": lambda v: parse_timestamp(v) is not None,
}

# Every data-test operator name -> (kind, relation); "...Path" forms take the operand from a path.
COMPARISONS: dict[str, tuple[str, str]] = {
    f"{kind}{relation}": (kind, relation)
    for kind in ("String", "Numeric", "Timestamp")
    for relation in _ORDER
} | {"BooleanEquals": ("Boolean", "Equals")}
OPERATORS = (
    set(COMPARISONS)
    | {f"{name}Path" for name in COMPARISONS}
    | set(_TYPE_TESTS)
    | {"IsPresent", "StringMatches"}
)


def evaluate_choice_rule(
    rule: dict[str, Any], data: Any, context: Any = None, variables: dict[str, Any] | None = None
) -> bool:
    """True when the JSONPath choice rule (or boolean expression of rules) matches `data`."""
    if not isinstance(rule, dict):
        raise StatesError("States.Runtime", f"Invalid choice rule: {to_json_text(rule)}")
    if "And" in rule:
        return all(evaluate_choice_rule(r, data, context, variables) for r in rule["And"])
    if "Or" in rule:
        return any(evaluate_choice_rule(r, data, context, variables) for r in rule["Or"])
    if "Not" in rule:
        return not evaluate_choice_rule(rule["Not"], data, context, variables)
    variable = rule.get("Variable")
    operator = next((key for key in rule if key in OPERATORS), None)
    if operator is None or not isinstance(variable, str):
        raise StatesError("States.Runtime", f"Invalid choice rule: {to_json_text(rule)}")
    try:
        value = read_path(variable, data, context, variables)
    except PathNotFound:
        if operator == "IsPresent":
            return rule[operator] is False
        raise StatesError(
            "States.Runtime",
            f"Invalid path '{variable}': The choice state's condition path references an invalid value.",
        ) from None
    operand = rule[operator]
    if operator == "IsPresent":
        return operand is True
    if operator in _TYPE_TESTS:
        return _TYPE_TESTS[operator](value) is operand
    if operator == "StringMatches":
        return isinstance(value, str) and isinstance(operand, str) and _string_matches(value, operand)
    if operator.endswith("Path"):
        operator = operator[: -len("Path")]
        try:
            operand = read_path(operand, data, context, variables)
        except PathNotFound:
            raise StatesError(
                "States.Runtime",
                f"Invalid path '{operand}': The choice state's condition path references an invalid value.",
            ) from None
    kind, relation = COMPARISONS[operator]
    return _compare(kind, relation, value, operand)


__all__ = ["COMPARISONS", "OPERATORS", "evaluate_choice_rule", "evaluate_condition", "parse_timestamp"]
