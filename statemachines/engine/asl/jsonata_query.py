"""JSONata as AWS Step Functions evaluates it: $states, workflow variables, and AWS's added functions.

Failures are States.QueryEvaluationError with AWS's causes, e.g. "The JSONata expression '1' specified
for the field 'Items' returned an unexpected result type. Expected 'array', but was 'number' for
value: 1"; the interpreter prefixes the "An error occurred while executing the state ..." part.
"""

from __future__ import annotations

import functools
import hashlib
import math
import random
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import jsonata
from jsonata.timebox import Timebox
from jsonata.utils import Utils

from statemachines import nesting

from . import offload
from .errors import StatesError
from .intrinsics import Randomness
from .paths import to_json_text

QUERY_ERROR = "States.QueryEvaluationError"
_TEMPLATE = re.compile(r"^\{%(.*)%\}$", re.DOTALL)
_VARIABLE_NAMES = re.compile(r"\$([^\W\d]\w*)")
_STATES_ANY = re.compile(r"\$states\b")
_STATES_MEMBER = re.compile(r"\$states\s*\.\s*([A-Za-z_]\w*)")
# a pipeline's expression is untrusted: an endless one would hold an engine thread (and the
# request or timer that runs it) forever; past this it fails with D1012 instead. In the engine it
# runs in a worker process that is killed at this limit (offload.py): `re` cannot be interrupted.
EVALUATION_TIMEOUT_MS = 5000


class _Undefined:
    """JSONata's undefined (an expression that selects nothing), distinct from JSON null."""

    def __repr__(self) -> str:
        return "UNDEFINED"


UNDEFINED: Any = _Undefined()


class _Unsupported(Exception):
    """Raised when a result is not JSON (a function, a regex)."""


def is_template(value: Any) -> bool:
    """True for a "{% expression %}" string."""
    return isinstance(value, str) and value.startswith("{%") and value.endswith("%}") and len(value) >= 4


def template_expression(value: str) -> str:
    """The expression inside "{% ... %}"."""
    match = _TEMPLATE.match(value)
    return match.group(1).strip() if match else value


@functools.lru_cache(maxsize=2048)
def compile_jsonata(expr: str) -> tuple[Any, frozenset[str]]:
    """The compiled expression and the $names it mentions; raises ValueError on a syntax error."""
    try:
        compiled = _compile_text(expr)
    except Exception as exc:  # the parser raises JException, and TypeError on some truncated input
        raise ValueError(str(exc) or "syntax error") from exc
    compiled.set_output_convert_nulls(False)  # keep null (NULL_VALUE) apart from undefined (None)
    compiled.set_validate_input(False)  # our inputs are parsed JSON already
    return compiled, frozenset(_VARIABLE_NAMES.findall(expr))


def _compile_text(expr: str) -> Any:
    """jsonata-python's parse of `expr`; a /* comment */ that ends the expression (valid JSONata 2.0.6,
    which AWS runs) makes its tokenizer read past the end, so such an expression is read again with a
    line break after it, which JSONata ignores."""
    try:
        return jsonata.Jsonata(expr)
    except IndexError:
        if not expr.rstrip().endswith("*/"):
            raise
        return jsonata.Jsonata(expr + "\n")


def evaluate_jsonata(
    expr: str,
    states: dict[str, Any],
    variables: dict[str, Any] | None = None,
    rng: Randomness | None = None,
    field: str | None = None,
) -> Any:
    """The JSON value of `expr`, or UNDEFINED; `states` is bound as $states, variables by name."""
    try:
        compiled, names = compile_jsonata(expr)
    except ValueError as exc:
        raise StatesError(QUERY_ERROR, _cause(expr, field, f"is invalid. {exc}")) from None
    run = offload.runner()
    if run is not None:
        return _evaluate_elsewhere(run, expr, names, states, variables, field)
    bindings: dict[str, Any] = {}
    for name in names:
        if name == "states":
            bindings["states"] = states
        elif variables is not None and name in variables:
            bindings[name] = Utils.NULL_VALUE if variables[name] is None else variables[name]
        elif name in _FUNCTIONS:
            bindings[name] = jsonata.Jsonata.JLambda(functools.partial(_FUNCTIONS[name], rng))
        elif name in ("now", "millis"):
            _bind_clock(bindings, name, states)
    # jsonata-python's higher-order functions ($map, $sort...) find "the current expression" in a
    # thread-local that compiling sets; a cached expression must claim it back before evaluating.
    jsonata.Jsonata.CURRENT.jsonata = compiled
    # a Timebox per evaluation, in its bindings: compiled expressions are cached and shared by threads
    limits = jsonata.Jsonata.Frame(None)
    Timebox(limits, EVALUATION_TIMEOUT_MS)
    bindings.update(limits.bindings)
    try:
        result = compiled.evaluate(None, bindings)
    except StatesError:
        raise
    except Exception as exc:  # JException and Python errors from built-in functions alike
        code = getattr(exc, "error", None)  # JSONata's error code (T1006, D3030...), as AWS shows it
        text = str(exc) or type(exc).__name__  # MemoryError says nothing else
        message = f"{code}: {text}" if isinstance(code, str) and not text.startswith(code) else text
        raise StatesError(
            QUERY_ERROR, _cause(expr, field, f"threw an error during evaluation. {message}")
        ) from None
    if result is None:
        return UNDEFINED
    try:
        return _to_json(result)
    except _Unsupported:
        raise StatesError(QUERY_ERROR, _cause(expr, field, "returned an unsupported result type.")) from None


def _evaluate_elsewhere(
    run: offload.Runner,
    expr: str,
    names: frozenset[str],
    states: dict[str, Any],
    variables: dict[str, Any] | None,
    field: str | None,
) -> Any:
    """evaluate_jsonata in a worker process (see offload.py), sent only the data `expr` can reach.

    deviation: $random() and $uuid() draw from the worker's own randomness, not the injected one.
    """
    request = {
        "kind": "jsonata",
        "expr": expr,
        "field": field,
        "states": _states_used(expr, names, states),
        "variables": {name: variables[name] for name in names if variables and name in variables},
    }
    try:
        reply = run(request)
    except offload.EvaluationTimeout as exc:
        what = f"threw an error during evaluation. {timeout_message(exc.limit_ms)}"
        raise query_error(expr, field, what) from None
    except offload.EvaluationFailed as exc:
        raise query_error(expr, field, f"threw an error during evaluation. {exc.reason}") from None
    if "error" in reply:
        name, cause = reply["error"]
        raise StatesError(name, cause)
    return UNDEFINED if reply.get("undefined") else reply["value"]


def timeout_message(limit_ms: int) -> str:
    """JSONata's own D1012 text, for an evaluation whose worker was killed at the limit."""
    return f"D1012: Evaluation timeout after {limit_ms} milliseconds. Check for infinite loop"


def _states_used(expr: str, names: frozenset[str], states: dict[str, Any]) -> dict[str, Any]:
    """The members of $states that `expr` can read: inputs and context objects are up to 256 KiB each."""
    wanted: set[str] = set()
    if "now" in names or "millis" in names:
        wanted.add("context")  # the clock functions read the state's entry time from it
    if "states" in names:
        members = _STATES_MEMBER.findall(expr)
        if len(members) != len(_STATES_ANY.findall(expr)):  # $states used whole: send it whole
            return states
        wanted.update(members)
    return {key: value for key, value in states.items() if key in wanted}


def _bind_clock(bindings: dict[str, Any], name: str, states: dict[str, Any]) -> None:
    """$now() and $millis() read the state's entry time, keeping the core deterministic.

    deviation: AWS reads its wall clock at evaluation; ours is the time the state was entered.
    """
    context = states.get("context")
    state = context.get("State") if isinstance(context, dict) else None
    entered = state.get("EnteredTime") if isinstance(state, dict) else None
    if not isinstance(entered, str):
        return  # no context: JSONata's own wall-clock functions answer
    if name == "now":
        bindings["now"] = jsonata.Jsonata.JLambda(lambda *args: entered)
    else:
        try:
            millis = int(datetime.fromisoformat(entered.replace("Z", "+00:00")).timestamp() * 1000)
        except ValueError:
            return
        bindings["millis"] = jsonata.Jsonata.JLambda(lambda *args: millis)


def resolve_template(
    value: Any,
    states: dict[str, Any],
    variables: dict[str, Any] | None = None,
    rng: Randomness | None = None,
    field: str | None = None,
) -> Any:
    """`value` with every "{% %}" string inside it evaluated (Arguments, Output, Assign, Items, ...).

    An expression that yields nothing fails the state, as AWS does. `field` names where the value
    sits; a member of an object is named by its path below it ("Output/name", "Assign/var"), the
    way EvaluationFailedEventDetails' location names "the location of the field in the state".
    """
    if isinstance(value, str):
        if not is_template(value):
            return value
        expr = template_expression(value)
        result = evaluate_jsonata(expr, states, variables, rng, field)
        if result is UNDEFINED:
            raise StatesError(QUERY_ERROR, _cause(expr, field, "returned nothing (undefined)."))
        return result
    if isinstance(value, dict):
        return {
            key: resolve_template(item, states, variables, rng, member_field(field, key))
            for key, item in value.items()
        }
    if isinstance(value, list):
        # deviation: how AWS names an element of an array in the location is not documented; the
        # array's own field is named
        return [resolve_template(item, states, variables, rng, field) for item in value]
    return value


def member_field(field: str | None, key: str) -> str:
    """The location of `key` inside the object at `field`: "Output/name", or the key alone at the top."""
    return f"{field}/{key}" if field else key


def evaluate_condition(
    expr: Any, states: dict[str, Any], variables: dict[str, Any] | None = None, rng: Randomness | None = None
) -> bool:
    """A JSONata Choice `Condition` ("{% ... %}" or a bare expression); it must yield a boolean."""
    if isinstance(expr, bool):
        return expr
    expression = template_expression(expr) if isinstance(expr, str) else str(expr)
    result = evaluate_jsonata(expression, states, variables, rng, "Condition")
    if result is UNDEFINED:
        raise StatesError(QUERY_ERROR, _cause(expression, "Condition", "returned nothing (undefined)."))
    return bool(require_type(result, "boolean", expression, "Condition"))


def require_type(value: Any, expected: str, expr: str, field: str) -> Any:
    """`value` when it has JSON type `expected` ('array', 'boolean', 'number', ...), else AWS's error."""
    actual = json_type(value)
    if actual != expected:
        raise StatesError(
            QUERY_ERROR,
            _cause(
                expr,
                field,
                f"returned an unexpected result type. Expected '{expected}', but was '{actual}' "
                f"for value: {to_json_text(value)}",
            ),
        )
    return value


def json_type(value: Any) -> str:
    """The JSON type name AWS uses in its messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def query_error(expr: str, field: str | None, what: str) -> StatesError:
    """States.QueryEvaluationError with AWS's cause: "The JSONata expression '<expr>' ... <what>"."""
    return StatesError(QUERY_ERROR, _cause(expr, field, what))


def _cause(expr: str, field: str | None, what: str) -> str:
    where = f" specified for the field '{field}'" if field else ""
    return f"The JSONata expression '{expr}'{where} {what}"


def _to_json(value: Any) -> Any:
    # Below the top level, None is a null that came from the input (JSONata drops undefined itself).
    if value is Utils.NULL_VALUE or value is None:
        return None
    if isinstance(value, bool | str):
        return value
    if isinstance(value, float):
        # JSONata numbers are doubles: 3.0 prints as 3, as AWS prints it.
        if math.isfinite(value) and value.is_integer() and abs(value) < 2**53:
            return int(value)
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, dict):
        return {key: _to_json(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_to_json(item) for item in value]
    raise _Unsupported()


# --- the functions AWS adds to JSONata ---------------------------------------------------------


def _arg(value: Any) -> Any:
    return None if value is Utils.NULL_VALUE else value


def _partition(rng: Randomness | None, array: Any, size: Any) -> list[Any]:
    array, size = _arg(array), _arg(size)
    if not isinstance(array, list) or isinstance(size, bool) or not isinstance(size, int | float) or size < 1:
        raise ValueError("Invalid arguments in $partition")
    size = int(size)
    return [list(array[i : i + size]) for i in range(0, len(array), size)]


def _range(rng: Randomness | None, start: Any, end: Any, step: Any = None) -> Any:
    """AWS's $range: arguments truncated to integers, both ends inclusive, JSONata sequence results."""
    numbers = [_arg(start), _arg(end), _arg(step)]
    for index, number in enumerate(numbers, 1):
        if isinstance(number, bool) or not isinstance(number, int | float | None):
            raise ValueError(f'T0410: Argument {index} of function "range" does not match function signature')
    if any(number is None for number in numbers):
        return None  # an undefined argument gives undefined, as JSONata functions do
    first, last, by = (math.trunc(number) for number in numbers)
    if by == 0 or (by > 0 and first > last) or (by < 0 and first < last):
        return None  # an empty sequence is undefined in JSONata
    count = (last - first) // by + 1
    if count > _RANGE_LIMIT:
        # deviation: AWS has no documented cap; a huge range would only exhaust memory here.
        raise ValueError(f"$range would produce {count} items; the limit is {_RANGE_LIMIT}")
    return first if count == 1 else list(range(first, last + (1 if by > 0 else -1), by))


_RANGE_LIMIT = 100_000


_HASHES = {"MD5": "md5", "SHA-1": "sha1", "SHA-256": "sha256", "SHA-384": "sha384", "SHA-512": "sha512"}


def _hash(rng: Randomness | None, value: Any, algorithm: Any = "SHA-256") -> str:
    value, algorithm = _arg(value), _arg(algorithm)
    if not isinstance(value, str) or algorithm not in _HASHES:
        raise ValueError("Invalid arguments in $hash")
    return hashlib.new(_HASHES[algorithm], value.encode()).hexdigest()


def _random(rng: Randomness | None, seed: Any = None) -> float:
    seed = _arg(seed)
    if seed is not None:
        # deviation: a seed gives a repeatable value, not the value AWS's generator gives.
        return random.Random(seed).random()
    if rng is None:
        raise ValueError("no randomness source was injected")
    return rng.random()


def _uuid(rng: Randomness | None) -> str:
    if rng is None:
        raise ValueError("no randomness source was injected")
    return rng.uuid()


def _parse(rng: Randomness | None, text: Any) -> Any:
    text = _arg(text)
    if not isinstance(text, str):
        raise ValueError("Invalid arguments in $parse")
    parsed = nesting.loads(text)
    return Utils.NULL_VALUE if parsed is None else parsed


def _no_eval(rng: Randomness | None, *args: Any) -> Any:
    raise ValueError("The $eval function is not supported by Step Functions; use $parse")


_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "partition": _partition,
    "range": _range,
    "hash": _hash,
    "random": _random,
    "uuid": _uuid,
    "parse": _parse,
    "eval": _no_eval,
}
