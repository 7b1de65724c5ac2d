"""Short, readable labels for Choice rules, drawn on the graph's branch edges (`$.branch == "main"`)."""

from __future__ import annotations

import json
from typing import Any

MAX_LABEL = 80

# Comparison operator suffix -> the symbol shown; the prefix (String, Numeric, Timestamp, Boolean) is dropped.
COMPARISONS = {
    "Equals": "==",
    "LessThan": "<",
    "GreaterThan": ">",
    "LessThanEquals": "<=",
    "GreaterThanEquals": ">=",
    "Matches": "matches",
}
TYPE_PREFIXES = ("String", "Numeric", "Timestamp", "Boolean")
TESTS = {
    "IsNull": "is null",
    "IsPresent": "is present",
    "IsNumeric": "is a number",
    "IsString": "is a string",
    "IsBoolean": "is a boolean",
    "IsTimestamp": "is a timestamp",
}


def rule_label(rule: dict[str, Any]) -> str:
    """`$.branch == "main"`, `not ($.x is null)`, `($.a > 1) and ($.b == true)`, or a JSONata Condition."""
    text = _describe(rule)
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _describe(rule: dict[str, Any]) -> str:
    if isinstance(rule.get("Condition"), str):  # JSONata: the expression is the clearest label
        return rule["Condition"].removeprefix("{%").removesuffix("%}").strip()
    for key, word in (("And", "and"), ("Or", "or")):
        if isinstance(rule.get(key), list):
            return f" {word} ".join(f"({_describe(part)})" for part in rule[key] if isinstance(part, dict))
    if isinstance(rule.get("Not"), dict):
        return f"not ({_describe(rule['Not'])})"
    variable = str(rule.get("Variable", "?"))
    for key, value in rule.items():
        label = _comparison(variable, key, value)
        if label:
            return label
    return variable


def _comparison(variable: str, key: str, value: Any) -> str | None:
    if key in TESTS:
        return f"{variable} {TESTS[key]}" if value is not False else f"not ({variable} {TESTS[key]})"
    if not key.startswith(TYPE_PREFIXES):
        return None
    operator = key
    for prefix in TYPE_PREFIXES:
        operator = operator.removeprefix(prefix)
    from_path = operator.endswith("Path")
    symbol = COMPARISONS.get(operator.removesuffix("Path"))
    if symbol is None:
        return None
    shown = str(value) if from_path else json.dumps(value, ensure_ascii=False)
    return f"{variable} {symbol} {shown}"
